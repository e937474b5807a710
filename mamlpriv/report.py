"""Stored membership cells (see :mod:`mamlpriv.cells`) as table rows with uncertainty.

One row per cell and game: the cell's coordinates (dataset, attack, ways, shots, stage,
inner loop), the test metrics at the validation threshold, a Wilson 95% interval of the
accuracy and a stratified-bootstrap 95% interval of the AUC, computed from the stored
per-trial records, and the learning accuracy of the attacked snapshot when it is known.
"""

from __future__ import annotations

import statistics

from .cells import LearningCell, MembershipCell, shape_key
from .defenses import confident_area, spec_key
from .metrics import auc_ci95, auc_diff_ci95, diff_ci95, wilson_ci95


def _scores(result: dict) -> tuple[list[float], list[bool]]:
    recs = result["records"]
    return [r["score"] for r in recs], [r["member"] for r in recs]


def membership_rows(records: list[dict], games=("paper", "strict"), n_boot: int = 500) -> list[dict]:
    """``records``: runner records of :class:`~mamlpriv.cells.MembershipCell` cells."""
    rows = []
    for rec in records:
        c, res = rec["config"], rec["result"]
        cell = MembershipCell.from_config(c)
        learning = {h["iteration"]: h["test_acc"] for h in res.get("learning", [])}
        for game in games:
            if game not in res:
                continue
            r = res[game]
            m, n = r["metrics"], len(r["records"])
            correct = sum(int(x["prediction"] == x["member"]) for x in r["records"])
            acc_lo, acc_hi = wilson_ci95(correct, n)
            auc_lo, auc_hi = auc_ci95(*_scores(r), n_boot=n_boot, seed=0)
            rows.append(
                {
                    "dataset": cell.dataset,
                    "attack": cell.target,
                    "game": game,
                    "ways": cell.ways,
                    "shots": cell.shots,
                    "inner_lr": cell.maml.inner_lr,
                    "inner_steps": cell.maml.inner_steps,
                    "order": "first" if cell.maml.first_order else "second",
                    "stage": r["stage"],
                    "attack_lr": r.get("attack", c["attack"])["lr"],
                    "trials": n,
                    "accuracy": m["accuracy"],
                    "accuracy_lo": acc_lo,
                    "accuracy_hi": acc_hi,
                    "recall": m["recall"],
                    "precision": m["precision"],
                    "auc": m["auc"],
                    "auc_lo": auc_lo,
                    "auc_hi": auc_hi,
                    "tpr_at_1pct_fpr": m["tpr_at_1pct_fpr"],
                    "learning_acc": learning.get(r["stage"]),
                    "profile": rec.get("shown", rec.get("profile")),
                }
            )
    return rows


def compare(a: dict, b: dict, n_boot: int = 1000) -> dict:
    """Difference of two stored game results (``record["result"][game]``), a minus b:
    accuracy with its normal 95% half-width, AUC with its bootstrap 95% interval."""
    na, nb = len(a["records"]), len(b["records"])
    d_acc, h_acc = diff_ci95(a["metrics"]["accuracy"], na, b["metrics"]["accuracy"], nb)
    d_auc, lo, hi = auc_diff_ci95(*_scores(a), *_scores(b), n_boot=n_boot, seed=0)
    return {
        "accuracy_diff": d_acc,
        "accuracy_diff_ci95": h_acc,
        "auc_diff": d_auc,
        "auc_diff_lo": lo,
        "auc_diff_hi": hi,
    }


# ----- the paper's qualitative claims, decided by a stated rule -------------------------
# Each returns (verdict, explanation); the verdict is None when there are fewer than
# MIN_POINTS distinct values of x (too few points to speak of a trend).

MIN_POINTS = 3


def _too_few(rows: list[dict], x: str) -> str | None:
    n = len({r[x] for r in rows})
    return None if n >= MIN_POINTS else f"only {n} value(s) of {x}: at least {MIN_POINTS} needed"


def verdict_flat(rows: list[dict], x: str, y: str = "accuracy", tolerance: float = 0.10) -> tuple[bool | None, str]:
    """Claim "y is roughly flat in x": holds when max - min of y over x is at most
    ``tolerance``."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted((r[x], r[y]) for r in rows)
    spread = max(v for _, v in vals) - min(v for _, v in vals)
    text = ", ".join(f"{k}: {v:.2f}" for k, v in vals)
    return spread <= tolerance, f"{text} (spread {spread:.2f}, rule: at most {tolerance:.2f})"


def verdict_decreasing(rows: list[dict], x: str, y: str = "accuracy") -> tuple[bool | None, str]:
    """Claim "y falls as x grows": holds when y at the largest x is below y at the
    smallest x by more than the 95% half-width of the difference."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted(rows, key=lambda r: r[x])
    first, last = vals[0], vals[-1]
    d, h = diff_ci95(first[y], first["trials"], last[y], last["trials"])
    text = ", ".join(f"{r[x]}: {r[y]:.2f}" for r in vals)
    return d > h, f"{text} (first minus last {d:+.2f} ± {h:.2f})"


def verdict_best_at(rows: list[dict], x: str, where: str, y: str = "accuracy") -> tuple[bool | None, str]:
    """Claim "y is best at the start" (``where="first"``) or "best strictly inside the
    range" (``where="inside"``) of x; the best is the largest y (earliest on ties)."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted(rows, key=lambda r: r[x])
    best = max(range(len(vals)), key=lambda i: (vals[i][y], -i))
    ok = best == 0 if where == "first" else 0 < best < len(vals) - 1
    text = ", ".join(f"{r[x]}: {r[y]:.2f}" for r in vals)
    # how clearly: the claimed place against the best of the places the claim excludes
    claimed = [vals[0]] if where == "first" else vals[1:-1]
    excluded = vals[1:] if where == "first" else [vals[0], vals[-1]]
    top_in = max(claimed, key=lambda r: r[y])
    top_out = max(excluded, key=lambda r: r[y])
    d, h = diff_ci95(top_in[y], top_in["trials"], top_out[y], top_out["trials"])
    clear = "resolved" if abs(d) > h else "not resolved"
    return ok, (
        f"{text} (best at {vals[best][x]}; best {'first' if where == 'first' else 'inside'} minus best "
        f"{'later' if where == 'first' else 'at the ends'} {d:+.2f} ± {h:.2f}, {clear} by the trials)"
    )


# ----- defences: attack and learning under noise -----------------------------------------


def _learning_by_defence(learning_records: list[dict]) -> dict[tuple, list[dict]]:
    """Results of the learning cells grouped by (dataset, defence)."""
    out: dict[tuple, list[dict]] = {}
    for r in learning_records:
        cell = LearningCell.from_config(r["config"])
        spec = cell.noise.to_json() if cell.noise is not None else None
        out.setdefault((cell.dataset, spec_key(spec)), []).append(r["result"])
    return out


def _mean_acc(results: list[dict]) -> float | None:
    return statistics.fmean(x["test_acc"] for x in results) if results else None


def _defence_row(rec: dict, learning: dict[tuple, list[dict]]) -> dict:
    """One attack cell beside the learning runs under the same defence."""
    cell = MembershipCell.from_config(rec["config"])
    spec = cell.noise.to_json() if cell.noise is not None else None
    lrn = learning.get((cell.dataset, spec_key(spec)), [])
    base = learning.get((cell.dataset, spec_key(None)), [])
    m = rec["result"]["paper"]["metrics"]
    return {
        "dataset": cell.dataset,
        "attack": cell.target,
        "location": cell.noise.label if cell.noise is not None else "none",
        "level": cell.noise.level if cell.noise is not None else 0.0,
        "attack_accuracy": m["accuracy"],
        "attack_auc": m["auc"],
        "learning_accuracy": _mean_acc(lrn),
        "baseline_learning": _mean_acc(base),
        "baseline_runs": len(base),
        "baseline_sd": statistics.stdev(x["test_acc"] for x in base) if len(base) > 1 else None,
        "epsilon": lrn[0].get("epsilon") if lrn else None,
        "profile": rec.get("shown", rec.get("profile")),
    }


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["dataset"], r["attack"], r["location"]), []).append(r)
    return out


def defence_rows(
    attack_records: list[dict], learning_records: list[dict], attack_max: float = 0.6, learning_drop: float = 0.05
) -> list[dict]:
    """One row per (dataset, attack, defence level): attack accuracy and AUC (paper's
    game) beside the learning accuracy of MAML meta-trained under the same defence, the
    noise-free learning accuracy, epsilon for the Gaussian mechanism, and whether the
    level lies in the confident noise area (:func:`mamlpriv.defenses.confident_area`).

    Where a configuration was trained from several seeds its learning accuracy is their
    mean; ``baseline_runs`` and ``baseline_sd`` (sample standard deviation, None for one
    run) describe the noise-free runs."""
    learning = _learning_by_defence(learning_records)
    groups = _groups([_defence_row(rec, learning) for rec in attack_records])
    for group in groups.values():
        group.sort(key=lambda r: r["level"])
        known = [r for r in group if r["learning_accuracy"] is not None and r["baseline_learning"] is not None]
        flags = confident_area(
            [r["level"] for r in known],
            [r["attack_accuracy"] for r in known],
            [r["learning_accuracy"] for r in known],
            known[0]["baseline_learning"] if known else 0.0,
            attack_max,
            learning_drop,
        )
        for r in group:
            r["confident"] = None
        for r, ok in zip(known, flags):
            r["confident"] = ok
    return [r for g in groups.values() for r in g]


def first_effective(rows: list[dict], attack_max: float = 0.6) -> list[dict]:
    """Per (dataset, attack, location) of :func:`defence_rows`: the smallest noise level
    at which the attack's accuracy is at most ``attack_max`` (None if none is), with the
    learning accuracy there and its drop from the noise-free baseline. An empty confident
    area means that this level already costs learning more than the rule allows."""
    out = []
    for (ds, attack, loc), group in sorted(_groups(rows).items()):
        hit = next((r for r in sorted(group, key=lambda r: r["level"]) if r["attack_accuracy"] <= attack_max), None)
        lrn = hit["learning_accuracy"] if hit else None
        base = group[0]["baseline_learning"]
        out.append(
            {
                "dataset": ds,
                "attack": attack,
                "location": loc,
                "level": hit["level"] if hit else None,
                "attack_accuracy": hit["attack_accuracy"] if hit else None,
                "learning_accuracy": lrn,
                "learning_drop": base - lrn if lrn is not None and base is not None else None,
            }
        )
    return out


def _compare_verdict(better: float, worse: float) -> str:
    return "AGREES" if better > worse else "TIE" if better == worse else "DOES NOT AGREE"


def defence_claims(rows: list[dict]) -> list[str]:
    """The paper's two claims on :func:`defence_rows` (its four noise locations only):

    - support attacks are more sensitive to noise: more confident levels for the
      support attack than for the query attack, summed over the four locations;
    - query-data noise is more effective than support-data noise: lower mean attack
      accuracy over the image-noise levels both locations share.
    """
    rows = [r for r in rows if r["location"] != "gaussian mechanism"]
    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        d = [r for r in rows if r["dataset"] == ds]
        conf = {a: sum(bool(r["confident"]) for r in d if r["attack"] == a) for a in ("query", "support")}
        n = {a: sum(r["attack"] == a for r in d) for a in ("query", "support")}
        out.append(
            f"[{ds}] support attacks more sensitive to noise: {_compare_verdict(conf['support'], conf['query'])}"
            f" -- confident levels: query {conf['query']}/{n['query']}, support {conf['support']}/{n['support']}"
        )
        for attack in ("query", "support"):
            acc = {
                loc: {r["level"]: r["attack_accuracy"] for r in d if r["attack"] == attack and r["location"] == loc}
                for loc in ("support_data", "query_data")
            }
            common = sorted(set(acc["support_data"]) & set(acc["query_data"]))
            name = f"[{ds}, {attack} attack] query-data noise more effective than support-data noise"
            if not common:
                out.append(f"{name}: UNDECIDED -- no noise level measured at both locations")
                continue
            ms = sum(acc["support_data"][v] for v in common) / len(common)
            mq = sum(acc["query_data"][v] for v in common) / len(common)
            out.append(
                f"{name}: {_compare_verdict(-mq, -ms)} -- mean attack accuracy over levels {common}: "
                f"query data {mq:.3f}, support data {ms:.3f}"
            )
    return out


# ----- sensitivity chapters: the paper's claims on Figures 5-8, first-order MAML ----------


def _verdict_word(ok: bool | None) -> str:
    return "UNDECIDED" if ok is None else "CONFIRMED" if ok else "NOT CONFIRMED"


def _judge(rows: list[dict], specs: list[tuple], **extra) -> list[dict]:
    """Apply each ``(claim, attack, pick, rule)`` of ``specs`` per dataset: ``pick(row)``
    selects the rows of ``attack``'s points, ``rule(rows) -> (ok, evidence)`` judges
    them. One dict per dataset and claim: claim, dataset, attack, ``extra``, verdict
    (CONFIRMED / NOT CONFIRMED / UNDECIDED), evidence."""
    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        for claim, attack, pick, rule in specs:
            ok, why = rule([r for r in rows if r["dataset"] == ds and r["attack"] == attack and pick(r)])
            out.append(
                {
                    "claim": claim,
                    "dataset": ds,
                    "attack": attack,
                    **extra,
                    "verdict": _verdict_word(ok),
                    "evidence": why,
                }
            )
    return out


def shape_claims(rows: list[dict], ways: tuple = (3, 5, 7, 10), shots: tuple = (1, 2, 3, 5)) -> list[dict]:
    """Figures 5-6 on :func:`membership_rows` (paper's game): per dataset and attack,
    "accuracy roughly flat in ways" (one shot, :func:`verdict_flat`) and "accuracy falls
    with shots" (three ways, :func:`verdict_decreasing`); dicts as in :func:`_judge`."""
    specs = []
    for attack in ("query", "support"):
        specs += [
            (
                "Fig. 5: accuracy roughly flat in ways",
                attack,
                lambda r: r["shots"] == 1 and r["ways"] in ways,
                lambda sel: verdict_flat(sel, "ways"),
            ),
            (
                "Fig. 6: accuracy falls with shots",
                attack,
                lambda r: r["ways"] == 3 and r["shots"] in shots,
                lambda sel: verdict_decreasing(sel, "shots"),
            ),
        ]
    return _judge([r for r in rows if r["game"] == "paper"], specs)


def stage_claims(rows: list[dict], game: str = "paper") -> list[dict]:
    """Figures 7-8 on :func:`membership_rows` of the training-stage cells: "query attack
    best at epoch 0" and "support attack best when partly trained" (best strictly inside
    the stages), per dataset, in ``game`` (:func:`verdict_best_at`)."""
    specs = [
        (
            "Fig. 7: query attack best at epoch 0",
            "query",
            lambda r: True,
            lambda sel: verdict_best_at(sel, "stage", "first"),
        ),
        (
            "Fig. 8: support attack best when partly trained",
            "support",
            lambda r: True,
            lambda sel: verdict_best_at(sel, "stage", "inside"),
        ),
    ]
    return _judge([r for r in rows if r["game"] == game], specs, game=game)


def claim_sentence(c: dict) -> str:
    """One sentence (markdown) for a claim dict of :func:`shape_claims` / :func:`stage_claims`."""
    return (
        f"**{c['claim']}** ({c['dataset']}, {c['attack']} attack): **{c['verdict']}**; "
        f"our accuracy by value: {c['evidence']}."
    )


def order_comparison(first: list[dict], second: list[dict], game: str = "paper") -> list[dict]:
    """First-order cells beside the second-order cells of the same dataset, attack, ways
    and shots (:attr:`mamlpriv.cells.MembershipCell.shape`; runner records): accuracy and AUC of
    each, and first minus second with the accuracy's normal 95% half-width and the AUC's
    bootstrap 95% interval (:func:`compare`). First-order cells without a twin are left
    out."""
    twins = {shape_key(r["config"]): r for r in second}
    out = []
    for r in first:
        so = twins.get(shape_key(r["config"]))
        if so is None:
            continue
        fo, sr = r["result"][game], so["result"][game]
        d = compare(fo, sr)
        ds, attack, w, s = shape_key(r["config"])
        out.append(
            {
                "dataset": ds,
                "attack": attack,
                "ways": w,
                "shots": s,
                "second_accuracy": sr["metrics"]["accuracy"],
                "first_accuracy": fo["metrics"]["accuracy"],
                "accuracy_diff": d["accuracy_diff"],
                "accuracy_diff_ci95": d["accuracy_diff_ci95"],
                "second_auc": sr["metrics"]["auc"],
                "first_auc": fo["metrics"]["auc"],
                "auc_diff": d["auc_diff"],
                "auc_diff_lo": d["auc_diff_lo"],
                "auc_diff_hi": d["auc_diff_hi"],
                "profile": f"{r.get('shown', r.get('profile'))} / {so.get('shown', so.get('profile'))}",
            }
        )
    return out


def order_summary(rows: list[dict]) -> list[str]:
    """One line per attack on :func:`order_comparison` rows: in how many shapes the first
    order is lower with a 95% interval that excludes zero, and the mean differences."""
    out = []
    for attack in sorted({r["attack"] for r in rows}):
        sel = [r for r in rows if r["attack"] == attack]
        lower = sum(r["accuracy_diff"] + r["accuracy_diff_ci95"] < 0 for r in sel)
        acc = sum(r["accuracy_diff"] for r in sel) / len(sel)
        auc = sum(r["auc_diff"] for r in sel) / len(sel)
        out.append(
            f"{attack} attack: first order lower in {lower} of {len(sel)} shapes; mean accuracy difference "
            f"{acc:+.3f}, mean AUC difference {auc:+.3f}"
        )
    return out


def sweep_sentence(rows: list[dict], x: str, y: str = "auc", flat_within: float = 0.01) -> str:
    """``y`` at each value of ``x`` (rows of one attack along one knob, e.g. the inner
    rate), sorted by ``x``, and where it is highest -- or "flat" when it varies by less
    than ``flat_within``, so that rounding does not name an arbitrary maximum."""
    if not rows:
        return "no points"
    rows = sorted(rows, key=lambda r: r[x])
    ys = [r[y] for r in rows]
    values = ", ".join(f"{r[x]:g}: {v:.2f}" for r, v in zip(rows, ys))
    if max(ys) - min(ys) < flat_within:
        return f"{values} (flat: within {flat_within:g})"
    return f"{values} (highest at {rows[ys.index(max(ys))][x]:g})"

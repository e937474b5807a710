"""Stored membership cells (see :mod:`mamlpriv.cells`) as table rows with uncertainty.

One row per cell and game: the cell's coordinates (dataset, attack, ways, shots, stage,
inner loop), the test metrics at the validation threshold, a Wilson 95% interval of the
accuracy and a stratified-bootstrap 95% interval of the AUC, computed from the stored
per-trial records, and the learning accuracy of the attacked snapshot when it is known.
"""

from __future__ import annotations

import math
import statistics

from . import catalog, pages, paper
from .cells import LearningCell, MembershipCell, shape_key
from .defenses import confident_area, spec_key
from .metrics import auc_ci95, auc_diff_ci95, diff_ci95, mean_ci95, wilson_ci95
from .runner import PROFILES


def _scores(result: dict) -> tuple[list[float], list[bool]]:
    recs = result["records"]
    return [r["score"] for r in recs], [r["member"] for r in recs]


def membership_rows(records: list[dict], games=("paper", "strict"), n_boot: int = 500) -> list[dict]:
    """``records``: runner records of :class:`~mamlpriv.cells.MembershipCell` cells.
    ``n_boot=0`` skips the AUC's bootstrap (``auc_lo`` and ``auc_hi`` are then None)."""
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
            auc_lo, auc_hi = auc_ci95(*_scores(r), n_boot=n_boot, seed=0) if n_boot else (None, None)
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
# One vocabulary for the whole book: CONFIRMED, NOT CONFIRMED, INCONCLUSIVE. Each rule
# below returns (ok, evidence) with ok True (CONFIRMED), False (NOT CONFIRMED) or None
# (INCONCLUSIVE): the 95% interval does not settle the rule, or there are fewer than
# MIN_POINTS distinct values of x (too few points to speak of a trend).

MIN_POINTS = 3
VERDICTS = ("CONFIRMED", "NOT CONFIRMED", "INCONCLUSIVE")


def _verdict_word(ok: bool | None) -> str:
    return "INCONCLUSIVE" if ok is None else "CONFIRMED" if ok else "NOT CONFIRMED"


def _by_interval(d: float, h: float) -> bool | None:
    """A claim that a difference ``d`` (claimed side minus the other) is positive, with
    95% half-width ``h``: True if ``d > h``, False if ``d < -h``, None in between."""
    return True if d > h else False if d < -h else None


def _mean_of_diffs(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean of independent differences ``(d, h)`` (each with its 95% half-width) and the
    95% half-width of that mean, ``sqrt(sum h**2) / k``."""
    k = len(pairs)
    return sum(d for d, _ in pairs) / k, math.sqrt(sum(h * h for _, h in pairs)) / k


def _too_few(rows: list[dict], x: str) -> str | None:
    n = len({r[x] for r in rows})
    return None if n >= MIN_POINTS else f"only {n} value(s) of {x}: at least {MIN_POINTS} needed"


def verdict_flat(rows: list[dict], x: str, y: str = "accuracy", tolerance: float = 0.10) -> tuple[bool | None, str]:
    """Claim "y is roughly flat in x", on the spread (max - min of y over x):

    - CONFIRMED (True) when the spread is at most ``tolerance``;
    - INCONCLUSIVE (None) when it exceeds ``tolerance`` by no more than the 95% half-width
      of the difference between the highest and the lowest point (:func:`diff_ci95` with
      their ``trials``), or with fewer than :data:`MIN_POINTS` values of x;
    - NOT CONFIRMED (False) when it exceeds ``tolerance`` by more than that half-width."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted((r[x], r[y]) for r in rows)
    spread = max(v for _, v in vals) - min(v for _, v in vals)
    text = ", ".join(f"{k}: {v:.2f}" for k, v in vals)
    hi, lo = max(rows, key=lambda r: r[y]), min(rows, key=lambda r: r[y])
    _, h = diff_ci95(hi[y], hi["trials"], lo[y], lo["trials"])
    ok = True if spread <= tolerance else None if spread - tolerance <= h else False
    return ok, f"{text} (spread {spread:.2f}, rule: at most {tolerance:.2f})"


def verdict_decreasing(rows: list[dict], x: str, y: str = "accuracy") -> tuple[bool | None, str]:
    """Claim "y falls as x grows", on d = y at the smallest x minus y at the largest x
    with the 95% half-width h of that difference (:func:`diff_ci95`): CONFIRMED (True)
    if d > h, NOT CONFIRMED (False) if d < -h, INCONCLUSIVE (None) in between or with
    fewer than :data:`MIN_POINTS` values of x."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted(rows, key=lambda r: r[x])
    first, last = vals[0], vals[-1]
    d, h = diff_ci95(first[y], first["trials"], last[y], last["trials"])
    text = ", ".join(f"{r[x]}: {r[y]:.2f}" for r in vals)
    return _by_interval(d, h), f"{text} (first minus last {d:+.2f} ± {h:.2f})"


def verdict_best_at(rows: list[dict], x: str, where: str, y: str = "accuracy") -> tuple[bool | None, str]:
    """Claim "y is best at the start" (``where="first"``) or "best strictly inside the
    range" (``where="inside"``) of x, on d = the best y of the claimed places (the first
    x; the inner x) minus the best y of the places the claim excludes (every later x;
    both ends), with the 95% half-width h of that difference (:func:`diff_ci95`):
    CONFIRMED (True) if d > h, NOT CONFIRMED (False) if d < -h, INCONCLUSIVE (None) in
    between or with fewer than :data:`MIN_POINTS` values of x. The evidence names the
    best x (the largest y, the earliest on ties) and whether the trials resolve d."""
    few = _too_few(rows, x)
    if few:
        return None, few
    vals = sorted(rows, key=lambda r: r[x])
    best = max(range(len(vals)), key=lambda i: (vals[i][y], -i))
    text = ", ".join(f"{r[x]}: {r[y]:.2f}" for r in vals)
    # how clearly: the claimed place against the best of the places the claim excludes
    claimed = [vals[0]] if where == "first" else vals[1:-1]
    excluded = vals[1:] if where == "first" else [vals[0], vals[-1]]
    top_in = max(claimed, key=lambda r: r[y])
    top_out = max(excluded, key=lambda r: r[y])
    d, h = diff_ci95(top_in[y], top_in["trials"], top_out[y], top_out["trials"])
    clear = "resolved" if abs(d) > h else "not resolved"
    return _by_interval(d, h), (
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


def _trials_of(row: dict, trials: int | None) -> int | None:
    """Test trials behind a defence row's attack accuracy: ``trials`` when given, else the
    row's ``trials``, else its profile's (right for cells run without a trials knob)."""
    if trials or row.get("trials"):
        return trials or row["trials"]
    return catalog.profile(row["profile"]).trials if row.get("profile") in PROFILES else None


def _defence_judgements(rows: list[dict], trials: int | None = None) -> list[dict]:
    """The claims of :func:`defence_claims`, one dict each: ``name``, ``dataset``,
    ``attack`` (None for the comparison of the two attacks), ``ok`` (True, False, None as
    in :func:`_verdict_word`), ``evidence``, and for the noise locations the support-data
    minus query-data mean accuracy ``diff`` with its 95% half-width ``half``."""
    rows = [r for r in rows if r["location"] != "gaussian mechanism"]
    out: list[dict] = []
    for ds in sorted({r["dataset"] for r in rows}):
        d = [r for r in rows if r["dataset"] == ds]
        conf = {a: sum(bool(r["confident"]) for r in d if r["attack"] == a) for a in ("query", "support")}
        n = {a: sum(r["attack"] == a for r in d) for a in ("query", "support")}
        out.append(
            {
                "name": f"[{ds}] support attacks more sensitive to noise",
                "dataset": ds,
                "attack": None,
                "ok": None if conf["support"] == conf["query"] else conf["support"] > conf["query"],
                "evidence": f"confident levels: query {conf['query']}/{n['query']}, "
                f"support {conf['support']}/{n['support']}",
            }
        )
        for attack in ("query", "support"):
            at = {
                loc: {r["level"]: r for r in d if r["attack"] == attack and r["location"] == loc}
                for loc in ("support_data", "query_data")
            }
            common = sorted(set(at["support_data"]) & set(at["query_data"]))
            claim = {
                "name": f"[{ds}, {attack} attack] query-data noise more effective than support-data noise",
                "dataset": ds,
                "attack": attack,
                "ok": None,
                "evidence": "no noise level measured at both locations",
            }
            out.append(claim)
            if not common:
                continue
            pairs = [(at["support_data"][v], at["query_data"][v]) for v in common]
            ms = sum(s["attack_accuracy"] for s, _ in pairs) / len(common)
            mq = sum(q["attack_accuracy"] for _, q in pairs) / len(common)
            claim["evidence"] = f"mean attack accuracy over levels {common}: query data {mq:.3f}, support data {ms:.3f}"
            claim["means"] = f"mean accuracy: query data {mq:.3f}, support data {ms:.3f} ({len(common)} levels)"
            known = [(s, q, _trials_of(s, trials), _trials_of(q, trials)) for s, q in pairs]
            diffs = [
                diff_ci95(s["attack_accuracy"], ns, q["attack_accuracy"], nq) for s, q, ns, nq in known if ns and nq
            ]
            if len(diffs) == len(pairs):  # every trial count known
                claim["diff"], claim["half"] = _mean_of_diffs(diffs)
                claim["ok"] = _by_interval(claim["diff"], claim["half"])
    return out


def defence_claims(rows: list[dict], trials: int | None = None) -> list[str]:
    """The paper's two claims on :func:`defence_rows` (its four noise locations only),
    one line each, "claim: VERDICT -- evidence":

    - support attacks are more sensitive to noise: more confident levels for the support
      attack than for the query attack, summed over the four locations, is CONFIRMED,
      fewer NOT CONFIRMED, as many INCONCLUSIVE (a count has no interval);
    - query-data noise is more effective than support-data noise: d = the attack's mean
      accuracy under support-data noise minus under query-data noise, over the
      image-noise levels both locations share, with the 95% half-width h of that mean
      difference (per level :func:`diff_ci95` on ``trials`` test trials per cell, then
      :func:`_mean_of_diffs`; conservative if the cells share their tasks): CONFIRMED if
      d > h, NOT CONFIRMED if d < -h, INCONCLUSIVE in between, with no shared level, or
      with unknown trial counts.

    ``trials``: test trials per attack cell; None takes each row's ``trials`` or, failing
    that, its profile's."""
    return [f"{c['name']}: {_verdict_word(c['ok'])} -- {c['evidence']}" for c in _defence_judgements(rows, trials)]


# ----- sensitivity chapters: the paper's claims on Figures 5-8, first-order MAML ----------


def _judge(rows: list[dict], specs: list[tuple], **extra) -> list[dict]:
    """Apply each ``(claim, attack, pick, rule)`` of ``specs`` per dataset: ``pick(row)``
    selects the rows of ``attack``'s points, ``rule(rows) -> (ok, evidence)`` judges
    them. One dict per dataset and claim: claim, dataset, attack, ``extra``, verdict
    (CONFIRMED / NOT CONFIRMED / INCONCLUSIVE, :func:`_verdict_word`), evidence."""
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


def inner_loop_claims(rows: list[dict], rate: float) -> list[dict]:
    """The inner-loop chapter's questions (beyond the paper) on :func:`membership_rows`
    (paper's game), per dataset and attack, with the rule of Figure 5 (:func:`verdict_flat`):
    "accuracy roughly flat in the inner rate" (one inner step) and "... in the inner steps"
    (at inner rate ``rate``); dicts as in :func:`_judge`."""
    specs = []
    for attack in ("query", "support"):
        specs += [
            ("Accuracy roughly flat in the inner rate", attack, lambda r: r["inner_steps"] == 1,
             lambda sel: verdict_flat(sel, "inner_lr")),
            ("Accuracy roughly flat in the inner steps", attack, lambda r: r["inner_lr"] == rate,
             lambda sel: verdict_flat(sel, "inner_steps")),
        ]  # fmt: skip
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


# ----- every claim of the paper at a glance, from the stored cells -----------------------
# One row per claim: claim, the paper's section or figure, the paper's value (its numbers
# where it gives them, else its statement), ours (with its 95% interval), verdict (one of
# VERDICTS), a one-line reason, and the chapter (notebook stem) that shows the details.


_OK = dict(zip(VERDICTS, (True, False, None)))  # verdict word -> ok


def _glance(claim: str, section: str, theirs: str, ours: str, ok: bool | None, reason: str, chapter: str) -> dict:
    return {
        "claim": claim[:1].upper() + claim[1:],
        "section": section,
        "paper": theirs,
        "ours": ours,
        "verdict": _verdict_word(ok),
        "reason": reason,
        "chapter": chapter,
    }


def _count(n: int, noun: str) -> str:
    """``1 cell``, ``9 cells``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _span(values: list[float], fmt: str = ".2f") -> str:
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def _attacks_work(rows: list[dict]) -> list[dict]:
    """Tables I-II, per attack and dataset: the accuracy pooled over the grid's cells with
    its Wilson 95% interval: CONFIRMED if it lies above 0.5, NOT CONFIRMED if below,
    INCONCLUSIVE if it holds 0.5. The reason counts the cells whose own interval lies above."""
    out = []
    for ds, attack in sorted({(r["dataset"], r["attack"]) for r in rows}):
        sel = [r for r in rows if r["dataset"] == ds and r["attack"] == attack]
        n, right = sum(r["trials"] for r in sel), sum(round(r["accuracy"] * r["trials"]) for r in sel)
        lo, hi = wilson_ci95(right, n)
        theirs = [v[0] for v in paper.PAPER_TABLES[attack].get(ds, {}).values()]
        out.append(
            _glance(
                f"The {attack} attack infers membership ({ds})",
                f"V-B1, Table {'I' if attack == 'support' else 'II'}",
                f"{_span(theirs)} over {len(theirs)} cells (mean {statistics.fmean(theirs):.2f})",
                f"{right / n:.2f} [{lo:.2f}, {hi:.2f}], {_count(len(sel), 'cell')} pooled",
                True if lo > 0.5 else False if hi < 0.5 else None,
                f"Wilson lower bound above 0.5 in {sum(r['accuracy_lo'] > 0.5 for r in sel)} of {len(sel)} cells "
                f"(accuracies {_span([r['accuracy'] for r in sel])})",
                "attacks",
            )
        )
    return out


def _query_beats_support(rows: list[dict]) -> list[dict]:
    """Tables I-II, per dataset: query minus support accuracy in each cell of the grid
    (:func:`diff_ci95`), averaged with :func:`_mean_of_diffs`; decided by
    :func:`_by_interval`. The reason counts the cells where the query attack is ahead
    (behind) by more than the cell's half-width."""

    def diff(q: dict, s: dict) -> tuple[float, float]:
        return diff_ci95(q["accuracy"], q["trials"], s["accuracy"], s["trials"])

    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        by = {(r["attack"], r["ways"], r["shots"]): r for r in rows if r["dataset"] == ds}
        cells = sorted(k[1:] for k in by if k[0] == "query" and ("support", *k[1:]) in by)
        if not cells:
            continue
        diffs = [diff(by[("query", *c)], by[("support", *c)]) for c in cells]
        d, h = _mean_of_diffs(diffs)
        ref = [paper.TABLE_II_QUERY[ds][c][0] - paper.TABLE_I_SUPPORT[ds][c][0] for c in paper.TABLE_II_QUERY[ds]]
        out.append(
            _glance(
                f"The query attack beats the support attack ({ds})",
                "III-C, V-B1 (Tables I-II)",
                f"query higher in {sum(x > 0 for x in ref)} of {len(ref)} cells (mean {statistics.fmean(ref):+.2f})",
                f"{d:+.2f} ± {h:.2f}, mean over {_count(len(cells), 'cell')}",
                _by_interval(d, h),
                f"query ahead beyond the cell's interval in {sum(x > e for x, e in diffs)} of {len(cells)} cells, "
                f"behind in {sum(x < -e for x, e in diffs)}",
                "attacks",
            )
        )
    return out


def _query_faster(records: list[dict]) -> list[dict]:
    """Tables III-IV, per number of iterations: the speed-up (support over query seconds
    per trial) at each data size; its geometric mean with the 95% interval of the mean
    log speed-up over the sizes (:func:`mean_ci95`; one timing per cell, so the interval
    is over the sizes, not over repeated timings): CONFIRMED if it lies above 1, NOT
    CONFIRMED if below, INCONCLUSIVE if it holds 1 or with fewer than two sizes."""
    sec = {
        (r["config"]["target"], r["config"]["iterations"], r["config"]["size"]): r["result"]["seconds_per_trial"]
        for r in records
    }
    out = []
    for it in sorted({k[1] for k in sec}):
        sizes = sorted(k[2] for k in sec if k[:2] == ("query", it) and ("support", it, k[2]) in sec)
        if not sizes:
            continue
        ratios = [sec["support", it, n] / sec["query", it, n] for n in sizes]
        theirs = [paper.PAPER_RUNTIMES["support"][it][n] / paper.PAPER_RUNTIMES["query"][it][n] for n in sizes]
        slower = [paper.PAPER_RUNTIMES[a][it][n] / sec[a, it, n] for a in ("query", "support") for n in sizes]
        ok, ours = None, f"{_span(ratios, '.1f')}x over {len(sizes)} size(s)"
        if len(sizes) > 1:
            m, h = mean_ci95([math.log(x) for x in ratios])
            ok = _by_interval(m, h)  # on the log scale: the speed-up's interval against 1
            ours = f"{math.exp(m):.1f}x [{math.exp(m - h):.1f}, {math.exp(m + h):.1f}] over {len(sizes)} sizes"
        out.append(
            _glance(
                f"The query attack is faster than the support attack ({it} iterations)",
                "V-B1, Tables III-IV",
                f"{_span(theirs, '.1f')}x over the same sizes",
                ours,
                ok,
                f"query faster at {sum(x > 1 for x in ratios)} of {len(sizes)} sizes; our runtimes "
                f"{_span(slower, '.0f')}x shorter than the paper's",
                "attacks",
            )
        )
    return out


def attack_claims(rows: list[dict], runtime_records: list[dict]) -> list[dict]:
    """The attacks chapter's claims (glance rows): each attack infers membership and the
    query attack beats the support attack, from :func:`membership_rows` of the Tables I-II
    cells in the paper's game (``rows``), and the query attack is faster, from the runner
    records of the Tables III-IV cells (``runtime_records``)."""
    return [*_attacks_work(rows), *_query_beats_support(rows), *_query_faster(runtime_records)]


def glance_sentence(c: dict) -> str:
    """One bullet (markdown) for a glance row (:func:`claims_at_a_glance`): the claim, its
    verdict, the paper's value and section, ours and the reason."""
    head = f"**{c['claim']}**: **{c['verdict']}**."
    return f"{head} Paper, section {c['section']}: {c['paper']}. Ours: {c['ours']}; {c['reason']}."


# The paper's statement and section per figure of shape_claims / stage_claims.
_FIGURES = {
    "Fig. 5": ("V-B2, Fig. 5", "roughly flat: no significant change", "ways_shots"),
    "Fig. 6": ("V-B2, Fig. 6", "falls with more shots", "ways_shots"),
    "Fig. 7": ("V-B2, Fig. 7", "best untrained (epoch 0)", "training_stages"),
    "Fig. 8": ("V-B2, Fig. 8", "best partly trained", "training_stages"),
}
# The reason of a verdict of shape_claims / stage_claims, by rule and ok (True, False, None).
_RULE_REASONS = {
    "flat": {
        True: "spread at most 0.10",
        False: "spread above 0.10 by more than the 95% half-width of highest minus lowest",
        None: "spread above 0.10, but within the 95% half-width of highest minus lowest",
    },
    "interval": {
        True: "ahead by more than the 95% half-width",
        False: "behind by more than the 95% half-width",
        None: "the 95% interval holds 0",
    },
}


def _figure_rows(claims: list[dict]) -> list[dict]:
    """Glance rows of :func:`shape_claims` / :func:`stage_claims` dicts: ours is the
    parenthesised summary of the evidence; a strict-game claim is marked beyond the paper."""
    out = []
    for c in claims:
        fig, text = c["claim"].split(": ", 1)
        section, statement, chapter = _FIGURES[fig]
        strict = c.get("game") == "strict"
        ok = _OK[c["verdict"]]
        few = c["evidence"].startswith("only ")
        reason = c["evidence"] if few else _RULE_REASONS["flat" if fig == "Fig. 5" else "interval"][ok]
        who = "" if text.startswith(c["attack"]) else f"{c['attack']} attack "
        out.append(
            _glance(
                f"{who}{text} ({c['dataset']}{', strict game' if strict else ''})",
                f"{section} (strict game: beyond the paper)" if strict else section,
                "not played in the paper" if strict else statement,
                c["evidence"] if few else c["evidence"].rsplit(" (", 1)[1].split(", ")[0].rstrip(")"),
                ok,
                reason,
                chapter,
            )
        )
    return out


def first_order_claims(rows: list[dict]) -> list[dict]:
    """The first-order chapter's claim (glance rows), per dataset, from the rows of
    :func:`order_comparison`: first-order MAML leaks less about the support set when the
    support attack's first minus second order accuracy, averaged over the shapes with
    :func:`_mean_of_diffs`, is below zero (:func:`_by_interval` on minus that mean). The
    reason gives each shape's AUC difference with its bootstrap 95% interval."""
    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        sel = [r for r in rows if r["dataset"] == ds and r["attack"] == "support"]
        if not sel:
            continue
        d, h = _mean_of_diffs([(r["accuracy_diff"], r["accuracy_diff_ci95"]) for r in sel])
        aucs = "; ".join(
            f"{r['ways']}-way {r['shots']}-shot {r['auc_diff']:+.2f} [{r['auc_diff_lo']:+.2f}, {r['auc_diff_hi']:+.2f}]"
            for r in sel
        )
        out.append(
            _glance(
                f"First-order MAML leaks less about the support set ({ds})",
                "III-B (eq. 7)",
                "expected (no support-set term in eq. 7); no numbers",
                f"{d:+.2f} ± {h:.2f}, support attack accuracy, first minus second order, {_count(len(sel), 'shape')}",
                _by_interval(-d, h),
                f"AUC, first minus second order: {aucs}",
                "first_order",
            )
        )
    return out


# The reason of the count comparison of _defence_judgements, by ok.
_COUNT_REASONS = {
    True: "more confident levels for the support attack",
    False: "fewer confident levels for the support attack",
    None: "as many confident levels for both attacks (a count: no interval)",
}


def _defence_glance(rows: list[dict]) -> list[dict]:
    """Section V-C's two claims (:func:`defence_claims`), with the interval of the
    noise-location comparison."""
    out = []
    for c in _defence_judgements(rows):
        name = c["name"].split("] ", 1)[1]
        d = round(c.get("diff", 0.0), 3) + 0.0  # no "-0.000"
        ours = f"{d:+.3f} ± {c['half']:.3f}, support-data minus query-data noise" if "diff" in c else None
        out.append(
            _glance(
                f"{name} ({c['dataset']}{', ' + c['attack'] + ' attack' if c['attack'] else ''})",
                "V-C, Figs. 9-12",
                "larger confident noise areas for the support attack"
                if c["attack"] is None
                else "query-data noise lowers the attack more",
                ours or c["evidence"],
                c["ok"],
                _COUNT_REASONS[c["ok"]] if c["attack"] is None else c.get("means", c["evidence"]),
                "defences",
            )
        )
    return out


def _noise_stops_attacks(rows: list[dict]) -> list[dict]:
    """The abstract, per dataset: some level of the paper's noise (any of its four
    locations) is in the confident area of :func:`defence_rows` (attack accuracy at most
    0.6, learning within 0.05 of the noise-free mean) for each attack: CONFIRMED if one
    is for both attacks, NOT CONFIRMED if one attack has none, INCONCLUSIVE if an attack
    has no level with a known learning accuracy."""
    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        known = {
            a: [
                r["confident"]
                for r in rows
                if r["dataset"] == ds
                and r["attack"] == a
                and r["location"] != "gaussian mechanism"
                and r["confident"] is not None
            ]
            for a in ("query", "support")
        }
        hits = {a: sum(v) for a, v in known.items()}
        counts = ", ".join(f"{a} {hits[a]}/{len(v)}" for a, v in known.items())
        ok = None if not all(known.values()) else all(hits.values())
        who = "both attacks" if ok else " and ".join(f"the {a} attack" for a in hits if not hits[a]) or "an attack"
        out.append(
            _glance(
                f"Noise stops the attacks without hurting learning ({ds})",
                "Abstract; V-C, Figs. 9-12",
                "proper noise counters the attacks, learning stays acceptable",
                f"confident levels: {counts}",
                ok,
                f"{'a' if ok else 'no'} confident level (attack ≤ 0.6, learning within 0.05) for {who}",
                "defences",
            )
        )
    return out


def claims_at_a_glance(root="results", profile: str = "paper", compute: bool = False) -> list[dict]:
    """Every claim of the paper against the stored results, one row each (keys: claim,
    section, paper, ours, verdict, reason, chapter): the attacks work and the query attack
    beats the support attack (Tables I-II), is faster (Tables III-IV), Figures 5-8 (the
    strict game of Figures 7-8 as extra rows beyond the paper), first-order MAML, the
    defence claims of section V-C and the abstract's, and section III-C's claim on the
    gradient (the gradient-anatomy cell, on two networks).
    The records are :func:`mamlpriv.pages.shown` of ``profile`` (``compute=False``: only
    stored cells)."""

    def shown(name: str) -> list[dict]:
        return pages.shown(name, profile, root, compute=compute)

    t12 = shown("tables-1-2")
    paper_rows = membership_rows(t12, games=("paper",), n_boot=0)
    stages = membership_rows(shown("training-stages"), n_boot=0)
    shapes = shape_claims(paper_rows + membership_rows(shown("ways-shots"), games=("paper",), n_boot=0))
    defence = defence_rows(shown("defence-attacks"), shown("defence-learning"))
    return [
        *attack_claims(paper_rows, shown("tables-3-4")),
        *_figure_rows(shapes + stage_claims(stages, "paper") + stage_claims(stages, "strict")),
        *first_order_claims(order_comparison(shown("first-order"), t12)),
        *_defence_glance(defence),
        *_noise_stops_attacks(defence),
        *query_set_claims(shown("gradient-anatomy")),
    ]


# Section III-C's claim is asked of two networks: the one the attacks target (the paper's
# setting) and the MAML chapter's trained one (beyond the paper).
ANATOMY_CLAIM = "The shared gradient depends more on the query set than on the support set"


def set_dependence(swaps: list[dict]) -> dict[str, tuple[float, float]]:
    """Per replacement kind, the mean over tasks of ``cos(g, g after a support swap) -
    cos(g, g after a query swap)`` and its 95% half-width (:func:`mean_ci95`), from swap
    rows with ``per_task`` cosines (an anatomy cell's ``attack_swaps``, or its ``swaps``
    at the last snapshot of one run). Above 0: a query swap moves g more."""
    cos = {(r["set"], r["replacement"]): r["per_task"] for r in swaps if "per_task" in r}
    kinds = [k for (st, k) in cos if st == "support" and ("query", k) in cos]
    return {k: mean_ci95([a - b for a, b in zip(cos["support", k], cos["query", k])]) for k in kinds}


def query_set_claims(records: list[dict]) -> list[dict]:
    """Section III-C, on the stored gradient-anatomy cell: per network, CONFIRMED when for
    every replacement kind the per-task difference of :func:`set_dependence` has a 95%
    interval above 0 (a query swap moves the shared gradient more), NOT CONFIRMED when it
    lies below 0 for some kind, else INCONCLUSIVE."""
    theirs = "the query set enters g directly, the support set only through a Hessian"
    if not records:
        return [_glance(ANATOMY_CLAIM, "III-C", theirs, "not measured here", None,
                        "the gradient-anatomy cell is not stored", "gradient_anatomy")]  # fmt: skip
    res = records[0]["result"]
    last = max(r["iteration"] for r in res["swaps"])
    nets = (
        ("the network the attacks target (untrained, 3-way 1-shot)", "III-C", res["attack_swaps"]),
        ("the MAML chapter's network (trained, second order)", "III-C (another network: beyond the paper)",
         [r for r in res["swaps"] if r["run"] == "second-order" and r["iteration"] == last]),
    )  # fmt: skip
    out = []
    for where, section, swaps in nets:
        dep = set_dependence(swaps)
        lows, highs = [m - h for m, h in dep.values()], [m + h for m, h in dep.values()]
        ok = True if min(lows) > 0 else False if min(highs) < 0 else None
        ours = "; ".join(f"{k}: {m:+.3f} ± {h:.3f}" for k, (m, h) in dep.items())
        n = len(swaps[0]["per_task"])
        reason = (
            f"cos after a support swap minus cos after a query swap, mean over {n} tasks ± 95%: a query swap "
            + ("moves g more for every replacement" if ok else "does not move g more for every replacement"
               if ok is False else "moves g more, or not, within the intervals")
        )  # fmt: skip
        out.append(_glance(f"{ANATOMY_CLAIM} on {where}", section, theirs, ours, ok, reason, "gradient_anatomy"))
    return out

"""The audit of the defences as table rows: empirical epsilon beside the accountant's.

Three views, each from stored cells (:mod:`mamlpriv.catalog`):

- :func:`release_rows` -- one release (one task gradient, the setting of the defence
  chapter's attacks): per defence level, the lower bound on epsilon of the worst-case
  distinguisher (``audit`` cells, many trials) and of the paper's attack (``defence-attacks``
  cells), the epsilon the Gaussian mechanism guarantees for that release
  (:func:`release_epsilon`), and the learning accuracy under the defence.
- :func:`learning_rows` -- the whole meta-training under the Gaussian mechanism, noise
  per task or once per meta-batch (``aggregation`` cells): mean meta-test accuracy over
  seeds, and the accountant's epsilon for each population size (:data:`POPULATIONS`).
- :func:`frontier` -- the best accuracy reachable at a privacy budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .audit import empirical_epsilon, gdp_epsilon
from .cells import DP_DELTA, META_BATCH, AuditCell, LearningCell, MembershipCell, from_config
from .defenses import defence_point, epsilon

POPULATIONS = (10**3, 10**4, 10**5, 10**6)  # task-learners to sample a meta-batch from
BUDGETS = (1.0, 3.0, 8.0)  # epsilon at which the frontier is read
# Two neighbouring worlds of the membership game differ in one image of one task: the
# released gradients then differ by at most twice the clip (replace-one).
REPLACE_SENSITIVITY = 2.0


def release_epsilon(
    noise_multiplier: float, delta: float = DP_DELTA, sensitivity: float = REPLACE_SENSITIVITY
) -> float:
    """The exact epsilon at ``delta`` of one release of the Gaussian mechanism between
    two worlds whose clipped gradients differ by at most ``sensitivity`` clips: the
    Gaussian test with shift ``mu = sensitivity / noise_multiplier``
    (:func:`mamlpriv.audit.gdp_epsilon`); ``inf`` without noise."""
    if noise_multiplier <= 0:
        return math.inf
    return gdp_epsilon(sensitivity / noise_multiplier, delta)


def implied_epsilon(auc: float, delta: float = DP_DELTA) -> float:
    """The epsilon of the Gaussian test whose AUC is ``auc`` (``mu = sqrt(2) Phi^-1(auc)``):
    what a test's AUC would mean if its scores were Gaussian with equal spread. An
    estimate for reading raw-noise levels on the mechanism's scale, not a bound."""
    from scipy.stats import norm

    if auc <= 0.5:
        return 0.0
    mu = math.sqrt(2) * float(norm.ppf(min(auc, 1 - 1e-12)))
    return gdp_epsilon(mu, delta)


def release_rows(audit_records: Sequence[dict], attack_records: Sequence[dict] = (),
                 learning_records: Sequence[dict] = ()) -> list[dict]:  # fmt: skip
    """One row per ``audit`` cell: ``dataset``, ``attack``, ``defence``, ``level``, the
    worst case's ``worst_eps`` (lower bound), ``worst_auc``, ``worst_trials`` and
    ``worst_rate_lo`` / ``worst_rate_hi`` (the Clopper-Pearson bounds it was found at);
    from the matching ``defence-attacks`` cell (paper's game, SSIM) ``attack_eps``,
    ``attack_auc``, ``attack_trials`` (None when not stored); ``release_eps``
    (:func:`release_epsilon`, Gaussian mechanism only, else None); ``implied_eps`` of the
    worst case's AUC; ``learning_acc`` of the ``defence-learning`` run (seed 0) under it."""
    attacks = {}
    for rec in attack_records:
        c = rec["config"]
        attacks[(c["dataset"], c["target"], defence_point(c.get("noise")))] = rec["result"]["paper"]
    learning = {}
    for rec in learning_records:
        c = rec["config"]
        if c["seed"] == 0:
            learning[(c["dataset"], defence_point(c.get("noise")))] = rec["result"]["test_acc"]
    rows = []
    for rec in audit_records:
        cell = from_config(rec["config"])
        assert isinstance(cell, AuditCell)
        res = rec["result"]
        key = defence_point(rec["config"]["noise"])
        emp = res["empirical"]
        row = {
            "dataset": cell.dataset, "attack": cell.target, "defence": key[0], "level": key[1],
            "worst_eps": emp["epsilon"], "worst_rate_lo": emp["rate_lo"], "worst_rate_hi": emp["rate_hi"],
            "worst_auc": res["auc"], "worst_tpr1": res["tpr_at_1pct_fpr"], "worst_trials": len(res["members"]),
            "implied_eps": implied_epsilon(res["auc"]),
            "release_eps": release_epsilon(key[1]) if key[0].startswith("gaussian") else None,
            "learning_acc": learning.get((cell.dataset, key)),
            "attack_eps": None, "attack_auc": None, "attack_trials": None,
        }  # fmt: skip
        game = attacks.get((cell.dataset, cell.target, key))
        if game is not None:
            scores = [r["score"] for r in game["records"]]
            members = [r["member"] for r in game["records"]]
            bound = empirical_epsilon(torch.tensor(scores), torch.tensor(members), delta=DP_DELTA)
            row.update(attack_eps=bound["epsilon"], attack_auc=game["metrics"]["auc"], attack_trials=len(scores))
        rows.append(row)
    return rows


def learning_rows(records: Sequence[dict], populations: Sequence[int] = POPULATIONS,
                  meta_batch: int = META_BATCH) -> list[dict]:  # fmt: skip
    """One row per (dataset, defence, level) of stored learning cells: ``mode``
    ("none", "per task", "aggregated"), ``sigma``, ``acc`` (mean meta-test accuracy over
    seeds) with ``acc_ci95`` (half-width of its normal 95% interval, :func:`~mamlpriv.metrics.mean_ci95`;
    None for one seed), ``seeds``, and
    ``eps`` ``{population: accountant epsilon}`` (Poisson rate ``meta_batch / population``,
    the run's iterations, :data:`~mamlpriv.cells.DP_DELTA`; inf without noise)."""
    from .metrics import mean_ci95

    groups: dict[tuple, list[tuple[float, int]]] = {}
    for rec in records:
        cell = from_config(rec["config"])
        if not isinstance(cell, LearningCell):
            continue
        key = (cell.dataset, *defence_point(rec["config"].get("noise")), cell.train_iterations)
        groups.setdefault(key, []).append((rec["result"]["test_acc"], cell.seed))
    rows = []
    for (dataset, defence, level, steps), accs in sorted(groups.items()):
        values = [a for a, _ in accs]
        mean, half = mean_ci95(values) if len(values) > 1 else (values[0], None)
        mode = "none" if defence == "none" else "aggregated" if defence.endswith("aggregated") else "per task"
        if defence == "none":
            eps = {n: math.inf for n in populations}
        else:
            eps = {n: epsilon(level, meta_batch / n, steps, DP_DELTA) for n in populations} if level > 0 else {
                n: math.inf for n in populations}  # fmt: skip
        rows.append({"dataset": dataset, "mode": mode, "sigma": level, "acc": mean, "acc_ci95": half,
                     "seeds": len(values), "eps": eps})  # fmt: skip
    return rows


def frontier(rows: Sequence[dict], budgets: Sequence[float] = BUDGETS,
             populations: Sequence[int] = POPULATIONS) -> list[dict]:  # fmt: skip
    """The privacy-utility frontier of :func:`learning_rows`: for each dataset, mode
    ("per task", "aggregated"), population and budget, the noisy level with the highest
    mean accuracy whose accountant's epsilon is at most the budget (``acc`` None, ``sigma``
    None when no level qualifies)."""
    out = []
    datasets = sorted({r["dataset"] for r in rows})
    for d in datasets:
        for mode in ("per task", "aggregated"):
            cand = [r for r in rows if r["dataset"] == d and r["mode"] == mode]
            if not cand:
                continue
            for n in populations:
                for b in budgets:
                    ok = [r for r in cand if r["eps"][n] <= b]
                    best = max(ok, key=lambda r: r["acc"]) if ok else None
                    out.append({"dataset": d, "mode": mode, "population": n, "budget": b,
                                "acc": best["acc"] if best else None, "acc_ci95": best["acc_ci95"] if best else None,
                                "sigma": best["sigma"] if best else None,
                                "eps": best["eps"][n] if best else None})  # fmt: skip
    return out


def aggregation_rows(records: Sequence[dict]) -> list[dict]:
    """One row per stored ``aggregation`` attack cell: ``dataset``, ``attack``, ``m`` (task
    gradients summed) and the test AUC of each test it carries (``<test>_auc``)."""
    rows = []
    for rec in records:
        cell = from_config(rec["config"])
        if not isinstance(cell, MembershipCell):
            continue
        r = rec["result"]["paper"]
        row = {"dataset": cell.dataset, "attack": cell.target, "m": cell.aggregate, "stage": r["stage"],
               "trials": len(r["records"]), "best": r.get("best_test", "ssim")}  # fmt: skip
        for test, s in r.get("scores", {"ssim": {"auc": r["metrics"]["auc"]}}).items():
            row[f"{test}_auc"] = s["auc"]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["dataset"], r["attack"], r["m"]))


def fmt(v: float | None, spec: str = ".2f") -> str:
    """A number for a table: "–" for None or NaN, "∞" for infinity."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return "∞" if v == math.inf else format(v, spec)


def release_findings(rows: Sequence[dict], stop: float = 0.5, leak: float = 1.0) -> list[str]:
    """The one-release audit in plain words, from :func:`release_rows`: whether any bound
    exceeds the mechanism's guarantee (a CONFIRMED / NOT CONFIRMED consistency check),
    what the worst case proves without a defence, the noise multiplier from which each
    test's bound stays below ``stop``, and how many raw-noise cells that stop the paper's
    attack (its bound below ``stop``) still let the worst case prove at least ``leak``."""
    from .report import VERDICTS

    gm = [r for r in rows if r["release_eps"] is not None and r["level"] > 0]
    over = [r for r in gm if r["worst_eps"] > r["release_eps"]]
    out = [
        f"**{VERDICTS[0] if not over else VERDICTS[1]}**: no audit finds more than the Gaussian mechanism "
        f"guarantees ({len(gm) - len(over)} of {len(gm)} noisy levels below the guarantee; a bound above it "
        "would mean a bug in the mechanism or in our accounting)."
    ]
    free = [r["worst_eps"] for r in rows if r["defence"] == "none"]
    if free:
        span = fmt(min(free)) if fmt(min(free)) == fmt(max(free)) else f"{fmt(min(free))}–{fmt(max(free))}"
        out.append(f"Without a defence the worst case proves ε ≥ {span}, as much as its trials can show: one "
                   "task gradient identifies the image in it.")  # fmt: skip

    def first_below(key: str) -> str:
        """The smallest noise multiplier from which every cell's bound stays below ``stop``."""
        levels = sorted({r["level"] for r in gm if r[key] is not None})
        worst = {v: max(r[key] for r in gm if r["level"] == v and r[key] is not None) for v in levels}
        ok = [v for v in levels if all(worst[u] < stop for u in levels if u >= v)]
        return f"from σ = {fmt(min(ok), 'g')} on" if ok else f"at no σ tried (up to {fmt(max(levels), 'g')})"

    if gm:
        worst, paper = first_below("worst_eps"), first_below("attack_eps")
        out.append(f"Under the mechanism the worst case's bounds stay below {stop} {worst}; the paper's "
                   f"attack's {paper}.")  # fmt: skip
    raw = [r for r in rows if r["release_eps"] is None and r["defence"] != "none" and r["attack_eps"] is not None]
    stopped = [r for r in raw if r["attack_eps"] < stop]
    if raw:
        leaky = [r for r in stopped if r["worst_eps"] >= leak]
        out.append(f"Of the {len(raw)} raw-noise cells, the paper's attack proves less than {stop} in "
                   f"{len(stopped)}; in {len(leaky)} of those the worst case still proves ε ≥ {leak} for a "
                   "single release.")  # fmt: skip
    return out


def frontier_findings(learn: Sequence[dict], front: Sequence[dict], budget: float = 8.0) -> list[str]:
    """The frontier in plain words, per dataset: the noise-free accuracy, and the best
    accuracy within ``budget`` at the smallest and the largest population, per mode."""
    out = []
    for d in sorted({r["dataset"] for r in learn}):
        base = [r for r in learn if r["dataset"] == d and r["mode"] == "none"]
        pts = [f for f in front if f["dataset"] == d and f["budget"] == budget]
        if not base or not pts:
            continue
        pops = sorted({f["population"] for f in pts})
        parts = []
        for n in (pops[0], pops[-1]):
            by = {f["mode"]: f for f in pts if f["population"] == n}
            accs = ", ".join(f"{m} {fmt(by[m]['acc'])}" for m in ("per task", "aggregated") if m in by)
            parts.append(f"N = {n:,}: {accs}")
        out.append(f"{d}: without noise {fmt(base[0]['acc'])}; the best within ε ≤ {budget:g} is " + "; ".join(parts)
                   + f" (chance {1 / 3:.2f}).")  # fmt: skip
    return out

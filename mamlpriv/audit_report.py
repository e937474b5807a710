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
from .defenses import epsilon

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


def _defence(spec: dict | None) -> tuple[str, float]:
    if not spec:
        return ("none", 0.0)
    if "location" in spec:
        return (spec["location"], float(spec["std"]))
    label = "gaussian mechanism" if spec.get("shares", 1) == 1 else "gaussian mechanism, aggregated"
    return (label, float(spec["noise_multiplier"]))


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
        attacks[(c["dataset"], c["target"], _defence(c.get("noise")))] = rec["result"]["paper"]
    learning = {}
    for rec in learning_records:
        c = rec["config"]
        if c["seed"] == 0:
            learning[(c["dataset"], _defence(c.get("noise")))] = rec["result"]["test_acc"]
    rows = []
    for rec in audit_records:
        cell = from_config(rec["config"])
        assert isinstance(cell, AuditCell)
        res = rec["result"]
        key = _defence(rec["config"]["noise"])
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
        key = (cell.dataset, *_defence(rec["config"].get("noise")), cell.train_iterations)
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

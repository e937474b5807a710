"""Summary statistics used across experiments."""

from __future__ import annotations

import math

import numpy as np
import torch

from . import checks


def mean_ci95(values: torch.Tensor | list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% normal confidence interval,
    ``1.96 * std(ddof=1) / sqrt(n)``. Needs at least 2 finite values: one value has no
    spread to estimate, and a half-width of 0 would claim certainty."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() < 2:
        raise ValueError(
            f"mean_ci95 needs at least 2 values, got {v.numel()} (one value has no spread to "
            f"estimate; a 0.0 half-width would claim certainty)"
        )
    _finite("values", v)
    return float(v.mean()), float(1.96 * v.std(unbiased=True) / math.sqrt(v.numel()))


def flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate a parameter dict (in its key order) into one vector."""
    return torch.cat([v.reshape(-1) for v in params.values()])


def flat_rows(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stacked parameter dict ``{name: (T, ...)}`` -> ``(T, P)``, one flat vector per row."""
    return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)


def _finite(name: str, v: torch.Tensor) -> None:
    bad = ~torch.isfinite(v)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite, got {int(bad.sum())} NaN or infinite value(s) "
            f"(first {float(v[first])} at index {first})"
        )


def _as_arrays(scores, labels):
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    _finite("scores", s)
    raw = torch.as_tensor(labels).flatten()
    if raw.dtype != torch.bool:
        ok = (raw == 0) | (raw == 1)
        if not bool(ok.all()):
            odd = sorted(set(raw[~ok].tolist()), key=str)[:5]
            raise ValueError(f"labels must be 0/1 or bool (1 = member), got value(s) {odd}")
    y = raw.to(torch.bool)
    if s.numel() != y.numel():
        raise ValueError(f"scores and labels must have the same length, got {s.numel()} and {y.numel()}")
    if s.numel() == 0:
        raise ValueError("scores must not be empty")
    return s, y


def classification_at_threshold(scores, labels, threshold: float) -> dict[str, float]:
    """Predict member when ``score > threshold``; accuracy, recall and precision (the
    paper's Tables I-II). Precision is NaN when nothing is predicted member."""
    s, y = _as_arrays(scores, labels)
    checks.real("threshold", threshold)
    pred = s > threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())
    return {
        "accuracy": (tp + tn) / s.numel(),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
    }


def best_threshold(scores, labels) -> float:
    """The threshold that maximises accuracy on (validation) ``scores``: the midpoint
    between two consecutive distinct scores (ties broken towards the smaller threshold)."""
    s, y = _as_arrays(scores, labels)
    u = torch.unique(s)
    cands = torch.cat([u[:1] - 1.0, (u[1:] + u[:-1]) / 2, u[-1:] + 1.0])
    acc = torch.stack([((s > c) == y).double().mean() for c in cands])
    return float(cands[int(torch.argmax(acc))])


def roc_curve(scores, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """False- and true-positive rates over all thresholds, from (0, 0) to (1, 1),
    with tied scores moved together."""
    s, y = _as_arrays(scores, labels)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise ValueError("labels must contain both members and non-members")
    order = torch.argsort(s, descending=True)
    s, y = s[order], y[order]
    tp = torch.cumsum(y.double(), 0)
    fp = torch.cumsum((~y).double(), 0)
    last = torch.cat([s[1:] != s[:-1], torch.tensor([True])])  # end of each tie group
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), tp[last] / pos])
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), fp[last] / neg])
    return fpr, tpr


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (trapezoidal; equals P(member score > non-member score)
    with ties counted one half)."""
    fpr, tpr = roc_curve(scores, labels)
    return float(torch.trapezoid(tpr, fpr))


def tpr_at_fpr(scores, labels, fpr_target: float) -> float:
    """Largest true-positive rate over thresholds whose false-positive rate is at most
    ``fpr_target`` (0.01 and 0.1 are the usual low-FPR points)."""
    checks.real("fpr_target", fpr_target, 0.0, 1.0)
    fpr, tpr = roc_curve(scores, labels)
    return float(tpr[fpr <= fpr_target + 1e-12].max())


def membership_metrics(scores, labels, threshold: float) -> dict[str, float]:
    """Everything reported per cell: accuracy, recall, precision at ``threshold``, ROC AUC,
    and TPR at 1% and 10% FPR."""
    checks.real("threshold", threshold)
    out = classification_at_threshold(scores, labels, threshold)
    out.update(
        auc=roc_auc(scores, labels),
        tpr_at_1pct_fpr=tpr_at_fpr(scores, labels, 0.01),
        tpr_at_10pct_fpr=tpr_at_fpr(scores, labels, 0.10),
        threshold=float(threshold),
    )
    return out


# ----- uncertainty of the membership numbers ------------------------------------------

_Z95 = 1.959963984540054


def wilson_ci95(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion (stays inside [0, 1], sensible at 0 or n
    successes, unlike the normal interval)."""
    n = checks.integer("n", n, lo=1)
    successes = checks.integer("successes", successes, lo=0, hi=n)
    p, z2 = successes / n, _Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def diff_ci95(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """``p1 - p2`` and the half-width of its 95% normal interval, for proportions measured
    on independent samples of sizes ``n1`` and ``n2``."""
    n1, n2 = checks.integer("n1", n1, lo=1), checks.integer("n2", n2, lo=1)
    checks.real("p1", p1, 0.0, 1.0)
    checks.real("p2", p2, 0.0, 1.0)
    return p1 - p2, _Z95 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)


def _classes(labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    y = labels.numpy()
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("the AUC needs both members and non-members")
    return pos, neg


def _draw(pos: np.ndarray, neg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One resample with replacement: ``len(pos)`` member indices, then ``len(neg)``
    non-member indices (``rng.integers`` draws exactly what ``rng.choice`` would)."""
    return np.concatenate([pos[rng.integers(0, len(pos), len(pos))], neg[rng.integers(0, len(neg), len(neg))]])


def _stratified_resample(labels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One resample of the trials, members first, then non-members."""
    return torch.from_numpy(_draw(*_classes(labels), rng))


def _resamples(labels: torch.Tensor, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """``n_boot`` stratified resamples ``(n_boot, n)`` of trial indices, each row its
    members first (the draws of :func:`_stratified_resample`, in the same order)."""
    pos, neg = _classes(labels)
    return np.stack([_draw(pos, neg, rng) for _ in range(n_boot)])


def _resampled_aucs(scores: torch.Tensor, idx: np.ndarray, members: int) -> np.ndarray:
    """The ROC AUC of every resample (rows of ``idx``: ``members`` member indices, then
    non-members) as the Mann-Whitney statistic: the share of member/non-member pairs the
    member wins, ties counted one half (equal to :func:`roc_auc`'s trapezoid). ``(B,)``."""
    s = scores.numpy()
    out = np.empty(idx.shape[0])
    pairs = members * (idx.shape[1] - members)
    step = max(1, 4_000_000 // max(pairs, 1))  # rows per chunk: at most ~4M pair comparisons
    for a in range(0, idx.shape[0], step):
        pos, neg = s[idx[a : a + step, :members]], s[idx[a : a + step, members:]]
        diff = pos[:, :, None] - neg[:, None, :]
        out[a : a + step] = ((diff > 0).sum((1, 2)) + 0.5 * (diff == 0).sum((1, 2))) / pairs
    return out


def auc_ci95(scores, labels, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the ROC AUC by bootstrapping the trials, members and
    non-members resampled separately (so each resample keeps both classes)."""
    s, y = _as_arrays(scores, labels)
    checks.integer("n_boot", n_boot, lo=1)
    rng = np.random.default_rng(seed)
    boots = _resampled_aucs(s, _resamples(y, rng, n_boot), int(y.sum()))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def auc_diff_ci95(
    scores_a, labels_a, scores_b, labels_b, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) for two independent sets of trials, with its percentile 95%
    bootstrap interval: ``(difference, low, high)``."""
    sa, ya = _as_arrays(scores_a, labels_a)
    sb, yb = _as_arrays(scores_b, labels_b)
    checks.integer("n_boot", n_boot, lo=1)
    rng = np.random.default_rng(seed)
    ca, cb = _classes(ya), _classes(yb)
    draws = [(_draw(*ca, rng), _draw(*cb, rng)) for _ in range(n_boot)]  # interleaved, as drawn one at a time
    ia, ib = np.stack([a for a, _ in draws]), np.stack([b for _, b in draws])
    diffs = _resampled_aucs(sa, ia, int(ya.sum())) - _resampled_aucs(sb, ib, int(yb.sum()))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return roc_auc(sa, ya) - roc_auc(sb, yb), float(lo), float(hi)


def paired_auc_diff_ci95(scores_a, scores_b, labels, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) for two scores of the *same* trials (two tests of one game), with
    the percentile 95% interval of a paired bootstrap: each resample draws trials
    (members and non-members separately) once and scores both tests on them, so the
    trials' shared luck cancels. Returns ``(difference, low, high)``."""
    sa, y = _as_arrays(scores_a, labels)
    sb, _ = _as_arrays(scores_b, labels)  # one label per trial: both tests score the same trials
    checks.integer("n_boot", n_boot, lo=1)
    rng = np.random.default_rng(seed)
    idx, members = _resamples(y, rng, n_boot), int(y.sum())
    diffs = _resampled_aucs(sa, idx, members) - _resampled_aucs(sb, idx, members)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return roc_auc(sa, y) - roc_auc(sb, y), float(lo), float(hi)

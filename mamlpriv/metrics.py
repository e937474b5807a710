"""Summary statistics used across experiments."""

from __future__ import annotations

import math

import torch


def mean_ci95(values: torch.Tensor | list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% normal confidence interval,
    ``1.96 * std(ddof=1) / sqrt(n)``. One value gives a half-width of 0."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("values must not be empty")
    if v.numel() == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(1.96 * v.std(unbiased=True) / math.sqrt(v.numel()))


def flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate a parameter dict (in its key order) into one vector."""
    return torch.cat([v.reshape(-1) for v in params.values()])


def flat_rows(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stacked parameter dict ``{name: (T, ...)}`` -> ``(T, P)``, one flat vector per row."""
    return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)


def cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Cosine similarity of two parameter dicts with the same keys, as flat vectors."""
    fa, fb = flat(a), flat({k: b[k] for k in a})
    return float(torch.dot(fa, fb) / (fa.norm() * fb.norm()).clamp_min(torch.finfo(fa.dtype).tiny))


def _as_arrays(scores, labels):
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels).flatten().to(torch.bool)
    if s.numel() != y.numel():
        raise ValueError(f"scores and labels must have the same length, got {s.numel()} and {y.numel()}")
    if s.numel() == 0:
        raise ValueError("scores must not be empty")
    return s, y


def classification_at_threshold(scores, labels, threshold: float) -> dict[str, float]:
    """Predict member when ``score > threshold``; accuracy, recall and precision (the
    paper's Tables I-II). Precision is NaN when nothing is predicted member."""
    s, y = _as_arrays(scores, labels)
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
    if not 0.0 <= fpr_target <= 1.0:
        raise ValueError(f"fpr_target must be in [0, 1], got {fpr_target}")
    fpr, tpr = roc_curve(scores, labels)
    return float(tpr[fpr <= fpr_target + 1e-12].max())


def membership_metrics(scores, labels, threshold: float) -> dict[str, float]:
    """Everything reported per cell: accuracy, recall, precision at ``threshold``, ROC AUC,
    and TPR at 1% and 10% FPR."""
    out = classification_at_threshold(scores, labels, threshold)
    out.update(
        auc=roc_auc(scores, labels),
        tpr_at_1pct_fpr=tpr_at_fpr(scores, labels, 0.01),
        tpr_at_10pct_fpr=tpr_at_fpr(scores, labels, 0.10),
        threshold=float(threshold),
    )
    return out

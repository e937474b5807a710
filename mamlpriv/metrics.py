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


def cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Cosine similarity of two parameter dicts with the same keys, as flat vectors."""
    fa, fb = flat(a), flat({k: b[k] for k in a})
    return float(torch.dot(fa, fb) / (fa.norm() * fb.norm()).clamp_min(torch.finfo(fa.dtype).tiny))

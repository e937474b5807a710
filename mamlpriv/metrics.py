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

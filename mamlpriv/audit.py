"""Auditing a defence: an empirical lower bound on epsilon, and the worst-case test.

A mechanism is (epsilon, delta)-differentially private only if every test of "member or
not" has ``TPR <= exp(epsilon) * FPR + delta`` and ``1 - FPR <= exp(epsilon) * (1 - TPR)
+ delta``. An attack's scores on member and non-member trials therefore give a lower
bound on epsilon (Jagielski et al. 2020; Nasr et al. 2021): at each threshold, take a
one-sided Clopper-Pearson lower bound on the TPR and an upper bound on the FPR, and::

    epsilon >= log((TPR_lo - delta) / FPR_hi)      (and the same with TNR and FNR)

The bound holds with the stated confidence at each threshold; the largest over the
thresholds is reported, as the audits cited do (a slightly optimistic choice; the number
of thresholds is returned so a reader can correct for it).

The worst-case distinguisher of the Gaussian mechanism knows both neighbouring task sets:
the released sums differ by one task's clipped gradient (norm at most the clip ``C``) and
carry ``N(0, (sigma C)^2)`` noise, so along that difference the test is between
``N(0, 1)`` and ``N(mu, 1)`` with ``mu = 1 / sigma`` per release: its ROC is
:func:`gaussian_roc`. Over ``T`` releases in which the target's task takes part with
probability ``q`` each (Poisson sampling), :func:`simulate_subsampled_llr` draws the
log-likelihood ratio of the whole run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import log_ndtr, ndtr
from scipy.stats import beta, norm

from . import checks


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """One-sided ``1 - alpha`` Clopper-Pearson bounds of a binomial proportion: the lower
    bound (``k`` successes of ``n``) and, separately, the upper bound; each holds with
    probability ``1 - alpha``."""
    n = checks.integer("n", n, 1)
    k = checks.integer("k", k, 0, n)
    alpha = checks.real("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)
    lo = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return lo, hi


def _lower(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Vectorised one-sided Clopper-Pearson lower bounds of ``k`` successes of ``n``."""
    safe = np.maximum(k, 1)
    return np.where(k == 0, 0.0, beta.ppf(alpha, safe, n - safe + 1))


def _upper(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    safe = np.minimum(k, n - 1)
    return np.where(k == n, 1.0, beta.ppf(1 - alpha, safe + 1, n - safe))


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(num > 0, np.log(np.where(num > 0, num, 1.0) / den), 0.0)
    return np.maximum(out, 0.0)


def empirical_epsilon(scores, members, delta: float = 0.0, alpha: float = 0.05) -> dict:
    """The largest lower bound on epsilon over thresholds ``score >= t`` (higher = member).

    ``scores`` and ``members`` are ``(N,)``. Returns ``epsilon``, the ``threshold`` it was
    found at, the bounds there (``rate_lo`` of the TPR or TNR, ``rate_hi`` of the FPR or
    FNR), the counts and the number of ``thresholds`` tried."""
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    m = torch.as_tensor(members).flatten()
    if m.dtype != torch.bool or s.shape != m.shape:
        raise ValueError(f"members must be a bool tensor shaped like scores {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("scores must be finite")
    delta = checks.real("delta", delta, 0.0, 1.0, hi_open=True)
    alpha = checks.real("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)
    pos, neg = int(m.sum()), int((~m).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"need members and non-members, got {pos} and {neg}")
    cuts = np.unique(s.numpy())
    sm, sn = np.sort(s[m].numpy()), np.sort(s[~m].numpy())
    tp = pos - np.searchsorted(sm, cuts, side="left")  # members with score >= cut
    fp = neg - np.searchsorted(sn, cuts, side="left")
    tpr_lo, fpr_hi = _lower(tp, pos, alpha), _upper(fp, neg, alpha)
    tnr_lo, fnr_hi = _lower(neg - fp, neg, alpha), _upper(pos - tp, pos, alpha)
    eps = np.stack([_log_ratio(tpr_lo - delta, fpr_hi), _log_ratio(tnr_lo - delta, fnr_hi)])
    side, i = np.unravel_index(int(np.argmax(eps)), eps.shape)
    lo, hi = (tpr_lo, fpr_hi) if side == 0 else (tnr_lo, fnr_hi)
    return {
        "epsilon": float(eps[side, i]),
        "threshold": float(cuts[i]),
        "rate_lo": float(lo[i]),
        "rate_hi": float(hi[i]),
        "members": pos,
        "non_members": neg,
        "thresholds": len(cuts),
        "alpha": alpha,
        "delta": delta,
    }


def gaussian_roc(fpr, mu: float):
    """TPR of the most powerful test between ``N(0, 1)`` and ``N(mu, 1)`` at false-positive
    rate ``fpr`` (array-like in [0, 1]): ``Phi(mu - Phi^-1(1 - fpr))``."""
    mu = checks.real("mu", mu, 0.0)
    a = np.asarray(fpr, dtype=np.float64)
    if np.any((a < 0) | (a > 1)):
        raise ValueError("fpr must lie in [0, 1]")
    return norm.cdf(mu - norm.ppf(1 - a))


def gaussian_auc(mu: float) -> float:
    """Area under :func:`gaussian_roc`: ``Phi(mu / sqrt(2))``."""
    return float(norm.cdf(checks.real("mu", mu, 0.0) / math.sqrt(2)))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The exact epsilon at ``delta`` of the Gaussian test with shift ``mu`` (mu-GDP, Dong et
    al. 2019): the root of ``Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) = delta``.
    For ``T`` releases of one task's gradient ``mu = sqrt(T) / sigma``."""
    mu = checks.real("mu", mu, 0.0, lo_open=True)
    delta = checks.real("delta", delta, 0.0, 1.0, lo_open=True, hi_open=True)

    def gap(eps: float) -> float:
        # e^eps * Phi(b) computed as exp(eps + log Phi(b)): finite for the epsilons of tiny noise
        # (ndtr / log_ndtr: the functions behind norm.cdf / norm.logcdf, without their checks)
        second = math.exp(min(eps + float(log_ndtr(-eps / mu - mu / 2)), 700.0))
        return float(ndtr(-eps / mu + mu / 2)) - second - delta

    if gap(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while gap(hi) > 0:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    return hi


def simulate_subsampled_llr(
    mu: float, q: float, steps: int, samples: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The worst-case test over a whole run: ``steps`` releases, in each of which the
    target's task takes part with probability ``q`` and then shifts the release by
    ``mu`` (in noise units). Returns the log-likelihood ratio ``(samples,)`` of runs
    without the target (``N(0,1)`` releases) and with it (the mixture)::

        LLR = sum_t log(1 - q + q exp(mu z_t - mu^2 / 2))
    """
    mu = checks.real("mu", mu, 0.0)
    q = checks.real("q", q, 0.0, 1.0, lo_open=True)
    steps = checks.integer("steps", steps, 1)
    samples = checks.integer("samples", samples, 1)
    z0 = torch.randn(samples, steps, generator=generator, dtype=torch.float64)
    z1 = torch.randn(samples, steps, generator=generator, dtype=torch.float64)
    z1 = z1 + mu * (torch.rand(samples, steps, generator=generator, dtype=torch.float64) < q)

    def llr(z: torch.Tensor) -> torch.Tensor:
        # log(1 - q + q e^a), computed stably: logaddexp(log(1-q), log q + a)
        a = mu * z - mu**2 / 2
        if q == 1.0:
            return a.sum(1)
        return torch.logaddexp(torch.full_like(a, math.log1p(-q)), math.log(q) + a).sum(1)

    return llr(z0), llr(z1)


def aggregate(task_grads: dict[str, torch.Tensor], m: int) -> dict[str, torch.Tensor]:
    """What the meta-learner sees under secure aggregation: the sum of each consecutive
    group of ``m`` task gradients (entries ``(T, ...)``, ``T`` a multiple of ``m``) ->
    entries ``(T // m, ...)``."""
    m = checks.integer("m", m, 1)
    out = {}
    for k, v in task_grads.items():
        if v.shape[0] % m:
            raise ValueError(f"{k}: {v.shape[0]} task gradients do not split into groups of m={m}")
        out[k] = v.reshape(v.shape[0] // m, m, *v.shape[1:]).sum(1)
    return out

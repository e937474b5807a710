"""The audit: Clopper-Pearson bounds, the empirical epsilon, the worst-case Gaussian test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from mamlpriv.audit import (
    aggregate,
    clopper_pearson,
    empirical_epsilon,
    gaussian_auc,
    gaussian_roc,
    gdp_epsilon,
    simulate_subsampled_llr,
)
from mamlpriv.defenses import epsilon
from mamlpriv.metrics import roc_auc


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (17, 250), (249, 250)])
def test_clopper_pearson_matches_scipy_and_the_closed_forms(k, n):
    lo, hi = clopper_pearson(k, n, 0.05)
    # each one-sided 95% bound is a side of the two-sided 90% exact interval
    ci = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact")
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)
    if k == 0:
        assert hi == pytest.approx(1 - 0.05 ** (1 / n))
    if k == n:
        assert lo == pytest.approx(0.05 ** (1 / n))
    with pytest.raises(ValueError, match="k"):
        clopper_pearson(n + 1, n)


def _gaussian_trials(mu: float, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.cat(
        [mu + torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(n, generator=gen, dtype=torch.float64)]
    )
    members = torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)])
    return scores, members


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_the_empirical_bound_never_exceeds_the_accountants_epsilon(sigma):
    """One release of the Gaussian mechanism (noise multiplier sigma, full participation):
    over many seeds the audit's bound stays below the exact epsilon of mu-GDP and below
    Opacus' RDP epsilon, and it is not vacuous when the mechanism leaks."""
    delta = 1e-5
    exact = gdp_epsilon(1 / sigma, delta)
    opacus = epsilon(sigma, 1.0, 1, delta)
    assert exact <= opacus
    bounds = [empirical_epsilon(*_gaussian_trials(1 / sigma, 1000, seed), delta=delta)["epsilon"] for seed in range(20)]
    assert max(bounds) <= exact
    if sigma <= 0.5:
        assert min(bounds) > 0.5  # mu = 2: the audit finds a real lower bound


def test_point_estimates_would_overshoot_which_the_bounds_prevent():
    """Without confidence bounds a lucky threshold on few trials claims more than the
    truth; with them, never (30 trials a side, delta 0.1, 20 seeds)."""
    delta, exact = 0.1, gdp_epsilon(1.0, 0.1)
    naive, bounded = [], []
    for seed in range(20):
        scores, members = _gaussian_trials(1.0, 30, seed)
        s_m, s_n = scores[members], scores[~members]
        tpr = np.array([float((s_m >= t).double().mean()) for t in scores.tolist()])
        fpr = np.array([float((s_n >= t).double().mean()) for t in scores.tolist()])
        ok = (fpr > 0) & (tpr > delta)
        naive.append(float(np.log((tpr[ok] - delta) / fpr[ok]).max()))
        bounded.append(empirical_epsilon(scores, members, delta)["epsilon"])
    assert max(naive) > exact >= max(bounded)


def test_the_gaussian_roc_matches_its_simulation():
    mu = 1.3
    scores, members = _gaussian_trials(mu, 200_000, 1)
    s_m, s_n = scores[members].numpy(), scores[~members].numpy()
    for fpr in (0.001, 0.01, 0.1, 0.5):
        t = np.quantile(s_n, 1 - fpr)
        assert float((s_m > t).mean()) == pytest.approx(float(gaussian_roc(fpr, mu)), abs=0.01)
    assert roc_auc(scores, members) == pytest.approx(gaussian_auc(mu), abs=0.005)
    assert gaussian_roc([0.0, 1.0], mu).tolist() == [0.0, 1.0]


def test_gdp_epsilon_solves_its_equation():
    from scipy.stats import norm

    for mu in (0.3, 1.0, 3.0):
        eps = gdp_epsilon(mu, 1e-5)
        d = norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)
        assert d == pytest.approx(1e-5, rel=1e-6)
    assert gdp_epsilon(0.5, 1e-5) < gdp_epsilon(1.0, 1e-5) < gdp_epsilon(2.0, 1e-5)


def test_the_simulated_run_reduces_to_composed_gaussians_without_subsampling():
    """q = 1: every release carries the target, the log-likelihood ratio is Gaussian and the
    run is sqrt(T) mu -GDP."""
    mu, steps = 0.4, 9
    out, into = simulate_subsampled_llr(mu, 1.0, steps, 50_000, torch.Generator().manual_seed(0))
    labels = torch.cat([torch.ones_like(into, dtype=torch.bool), torch.zeros_like(out, dtype=torch.bool)])
    assert roc_auc(torch.cat([into, out]), labels) == pytest.approx(gaussian_auc(math.sqrt(steps) * mu), abs=0.005)
    assert float(out.mean()) == pytest.approx(-steps * mu**2 / 2, abs=0.02)
    # sub-sampling hides the target: the test gets weaker
    out_q, into_q = simulate_subsampled_llr(mu, 0.1, steps, 50_000, torch.Generator().manual_seed(0))
    assert roc_auc(torch.cat([into_q, out_q]), labels) < roc_auc(torch.cat([into, out]), labels) - 0.1


def test_aggregation_of_m_gradients_is_their_sum():
    from mamlpriv.data import TaskBatch
    from mamlpriv.maml import MAMLConfig, task_gradient, task_gradients
    from mamlpriv.models import MLP, forward, init_params

    model = MLP(3, hidden=4, layers=1, in_features=5)
    f, p = forward(model), init_params(model)
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat(2).expand(8, 6)
    batch = TaskBatch(torch.randn(8, 6, 5, generator=gen), y, torch.randn(8, 6, 5, generator=gen), y)
    cfg = MAMLConfig(0.3, 1)
    g, _, _ = task_gradients(f, p, batch, cfg)
    for m in (1, 2, 4, 8):
        agg = aggregate(g, m)
        for group in range(8 // m):
            singles = [task_gradient(f, p, *batch.task(group * m + i), cfg)[0] for i in range(m)]
            for k in p:
                torch.testing.assert_close(agg[k][group], sum(s[k] for s in singles), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="groups of m=3"):
        aggregate(g, 3)


def test_empirical_epsilon_refuses_bad_input():
    with pytest.raises(ValueError, match="members"):
        empirical_epsilon(torch.zeros(4), torch.tensor([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="finite"):
        empirical_epsilon(torch.tensor([0.0, math.nan]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="need members and non-members"):
        empirical_epsilon(torch.zeros(3), torch.ones(3, dtype=torch.bool))


def test_the_vectorised_bounds_are_the_scalar_clopper_pearson():
    scores, members = _gaussian_trials(1.5, 40, 3)
    r = empirical_epsilon(scores, members, delta=1e-3)
    t = r["threshold"]
    tp, fp = int((scores[members] >= t).sum()), int((scores[~members] >= t).sum())
    pairs = [
        (clopper_pearson(tp, 40)[0], clopper_pearson(fp, 40)[1]),
        (clopper_pearson(40 - fp, 40)[0], clopper_pearson(40 - tp, 40)[1]),
    ]
    assert any(r["rate_lo"] == pytest.approx(a) and r["rate_hi"] == pytest.approx(b) for a, b in pairs)
    assert r["epsilon"] == pytest.approx(math.log((r["rate_lo"] - 1e-3) / r["rate_hi"]))
    assert r["epsilon"] > 0

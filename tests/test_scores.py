"""The membership scores beyond SSIM, each on a case whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch.func import grad, vmap

from mamlpriv.attacks import AttackConfig
from mamlpriv.data import TaskBatch
from mamlpriv.maml import MAMLConfig, task_gradients
from mamlpriv.membership import GameConfig, GameResult, _score_summary, alternatives, best_test, draw_trials
from mamlpriv.metrics import roc_auc
from mamlpriv.models import MLP, forward, init_params
from mamlpriv.scores import (
    GaussianFit,
    ceiling_scores,
    ceiling_statistic,
    fit_gaussians,
    likelihood_ratio,
    profile_likelihood,
)


def test_the_ceiling_statistic_is_the_gaussian_log_likelihood_ratio():
    gen = torch.Generator().manual_seed(0)
    g_in, g_out = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    sigma = 0.3
    g = g_in + sigma * torch.randn(5, 7, generator=gen)
    ours = ceiling_statistic(g, g_in, g_out, sigma)
    d_in = torch.distributions.Normal(g_in.double(), sigma).log_prob(g.double()).sum(1)
    d_out = torch.distributions.Normal(g_out.double(), sigma).log_prob(g.double()).sum(1)
    torch.testing.assert_close(ours, d_in - d_out, rtol=1e-10, atol=1e-9)
    with pytest.raises(ValueError, match="sigma"):
        ceiling_statistic(g, g_in, g_out, 0.0)
    with pytest.raises(ValueError, match=r"\(T, P\)"):
        ceiling_statistic(g[0], g_in[0], g_out[0])


def _tiny_tasks(trials: int, seed: int = 0):
    """Trials of a 2-way 2-shot task on 1x2x2 images: slot 0 of the support set is tested;
    even trials are members (x0 in the slot), odd ones hold another image there."""
    gen = torch.Generator().manual_seed(seed)
    xs, xq = torch.rand(trials, 4, 1, 2, 2, generator=gen), torch.rand(trials, 4, 1, 2, 2, generator=gen)
    y = torch.tensor([0, 0, 1, 1]).expand(trials, 4)
    x0, other = torch.rand(trials, 1, 2, 2, generator=gen), torch.rand(trials, 1, 2, 2, generator=gen)
    members = torch.arange(trials) % 2 == 0
    xs[:, 0] = torch.where(members[:, None, None, None], x0, other)
    return TaskBatch(xs, y, xq, y), x0, other, members


def test_noise_free_the_ceiling_separates_members_perfectly():
    model = MLP(2, hidden=3, layers=1, in_features=4)
    f, p = forward(model), init_params(model, seed=1)
    batch, x0, other, members = _tiny_tasks(8)
    maml = MAMLConfig(0.4, 1, False)
    g, _, _ = task_gradients(f, p, batch, maml)
    slot = torch.zeros(8, dtype=torch.long)
    s = ceiling_scores(f, p, g, batch, "support", x0, other, slot, maml)
    assert bool((s[members] > 0).all()) and bool((s[~members] < 0).all())
    assert roc_auc(s, members) == 1.0


def test_alternatives_are_the_other_world_of_each_trial(tiny_dataset):
    game = GameConfig("support", "strict", ways=2, shots=1, trials=6, seed=3)
    trials = draw_trials(tiny_dataset, game)
    alt = alternatives(tiny_dataset, trials)
    assert alt.shape == trials.x0.shape
    for t, task in enumerate(trials.tasks):
        j = int(trials.slots[t])
        if not bool(trials.members[t]):
            assert torch.equal(alt[t], task.support_x[j])  # the task's own image
        else:
            matches = [i for i in range(len(tiny_dataset)) if torch.equal(tiny_dataset.images[i], alt[t])]
            assert matches and not set(matches) & (set(task.support_idx.tolist()) | set(task.query_idx.tolist()))
            assert int(tiny_dataset.labels[matches[0]]) == task.classes[int(task.support_y[j])]  # strict: same class
    assert torch.equal(alt, alternatives(tiny_dataset, trials))  # seeded


def test_profile_likelihood_is_zero_for_a_member_when_the_optimisation_is_exact():
    """A linear 3-class model on 2x2 images, two query images per trial, slot 0 tested: 8
    unknown pixels against a 15-number gradient, so Adam finds the global minimum. A
    member's pinned slot is right, both runs reach zero loss and the score is 0; a
    non-member's pinned slot is wrong and its score is clearly negative."""
    model = MLP(3, layers=0, in_features=4)
    f, p = forward(model), init_params(model, seed=0)
    gen = torch.Generator().manual_seed(4)
    trials = 8
    x_real = torch.rand(trials, 2, 1, 2, 2, generator=gen)
    y = torch.tensor([0, 1]).expand(trials, 2)
    members = torch.arange(trials) % 2 == 0
    x0 = torch.where(members[:, None, None, None], x_real[:, 0], torch.rand(trials, 1, 2, 2, generator=gen))

    def per_trial(x, yy):  # the gradient the query objective models: grad at omega
        return grad(lambda q: F.cross_entropy(f(q, x), yy))(p)

    g = vmap(per_trial)(x_real, y)
    batch = TaskBatch(x_real, y, x_real, y)
    cfg = AttackConfig(iterations=1500, lr=0.02, schedule="constant", tv_weight=0.0)
    slot = torch.zeros(trials, dtype=torch.long)
    s = profile_likelihood("query", f, p, g, batch, x0, slot, MAMLConfig(), cfg, torch.Generator().manual_seed(0))
    assert s.shape == (trials,)
    assert float(s[members].abs().max()) < 1e-4, s
    assert float(s[~members].max()) < -1e-3, s
    assert roc_auc(s, members) == 1.0


def test_calibration_recovers_a_known_gaussian_likelihood_ratio():
    mean_in, std_in = torch.tensor([0.8, 0.5, 0.2]), torch.tensor([0.05, 0.2, 0.1])
    mean_out, std_out = torch.tensor([0.6, 0.5, 0.1]), torch.tensor([0.1, 0.05, 0.1])
    s = torch.tensor([0.7, 0.45, 0.15])
    exact = GaussianFit(*(t.double() for t in (mean_in, std_in, mean_out, std_out)))
    closed = norm.logpdf(s.numpy(), mean_in.numpy(), std_in.numpy()) - norm.logpdf(
        s.numpy(), mean_out.numpy(), std_out.numpy()
    )
    torch.testing.assert_close(likelihood_ratio(s, exact), torch.from_numpy(closed).double(), rtol=1e-6, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    k = 20_000
    shadow_in = mean_in[:, None] + std_in[:, None] * torch.randn(3, k, generator=gen)
    shadow_out = mean_out[:, None] + std_out[:, None] * torch.randn(3, k, generator=gen)
    fitted = likelihood_ratio(s, fit_gaussians(shadow_in, shadow_out))
    torch.testing.assert_close(fitted, torch.from_numpy(closed).double(), rtol=0.0, atol=0.08)


def test_calibrated_scores_beat_raw_scores_when_targets_differ():
    """Targets whose raw scores live on different scales: one global threshold on the raw
    score mixes them up, the per-target likelihood ratio does not."""
    gen = torch.Generator().manual_seed(1)
    t = 400
    shift = torch.linspace(0.0, 3.0, t)  # each target's own scale
    members = torch.arange(t) % 2 == 0
    raw = shift + 0.5 * members.double() + 0.2 * torch.randn(t, generator=gen, dtype=torch.float64)
    shadow_in = shift[:, None] + 0.5 + 0.2 * torch.randn(t, 64, generator=gen, dtype=torch.float64)
    shadow_out = shift[:, None] + 0.2 * torch.randn(t, 64, generator=gen, dtype=torch.float64)
    lr = likelihood_ratio(raw, fit_gaussians(shadow_in, shadow_out))
    assert roc_auc(lr, members) > 0.9 > roc_auc(raw, members) + 0.2


def test_fit_gaussians_refuses_bad_shadows():
    with pytest.raises(ValueError, match="at least 2 shadows"):
        fit_gaussians(torch.zeros(3, 1), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="shadow_out must be finite"):
        fit_gaussians(torch.zeros(3, 4), torch.full((3, 4), math.nan))
    with pytest.raises(ValueError, match="one row per target"):
        fit_gaussians(torch.zeros(3, 4), torch.zeros(2, 4))
    fit = fit_gaussians(torch.zeros(2, 3), torch.ones(2, 3))  # zero spread: floored, finite ratio
    assert bool(torch.isfinite(likelihood_ratio(torch.tensor([0.0, 1.0]), fit)).all())


def test_the_combined_score_adds_ssim_and_profile_standardised_on_validation_trials():
    """SSIM + profile = z(SSIM) + z(profile), each z with the mean and standard deviation
    of the validation trials (numpy's, ddof=1, computed here independently); its test AUC
    and validation AUC are those of that sum, and the best test follows validation AUC."""
    gen = np.random.default_rng(0)

    def game(n: int) -> GameResult:
        members = torch.tensor([True, False] * (n // 2))
        ssim = torch.tensor(gen.normal(0.5, 0.1, n) + 0.05 * members.numpy())
        profile = torch.tensor(gen.normal(-2.0, 3.0, n) + 2.0 * members.numpy())
        empty = torch.zeros(0)
        return GameResult(GameConfig("support", "strict", 3, 1, n, 0), [], ssim, members, empty, empty, empty,
                          empty, extra={"profile": profile})  # fmt: skip

    val, test = game(40), game(30)
    summary, combined = _score_summary(val, test, ("profile", "combined"))
    vs, vp = val.scores.numpy(), val.extra["profile"].numpy()
    tp = test.extra["profile"].numpy()
    expected = (test.scores.numpy() - vs.mean()) / vs.std(ddof=1) + (tp - vp.mean()) / vp.std(ddof=1)
    assert combined is not None and np.allclose(combined.numpy(), expected, rtol=0, atol=1e-12)
    m = test.members.numpy()
    pos, neg = expected[m], expected[~m]
    auc = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert summary["combined"]["auc"] == pytest.approx(auc)
    assert set(summary) == {"ssim", "profile", "combined"}
    best = max(summary, key=lambda k: summary[k]["validation_auc"])
    assert best_test(summary) == best

"""Noise locations, the Gaussian mechanism and its privacy accounting."""

import math

import pytest
import torch

from mamlpriv.defenses import LOCATIONS, confident_area, epsilon, gaussian_mechanism, noise_at
from mamlpriv.maml import GaussianNoise, MAMLConfig, TaskNoise, draw_noise, task_gradient
from mamlpriv.metrics import flat
from mamlpriv.models import MLP, forward, init_params

KEY = {
    "support_data": "support",
    "adaptation_grad": "adaptation",
    "query_data": "query",
    "validation_grad": "validation",
}


def small():
    model = MLP(3, hidden=16, layers=1)
    gen = torch.Generator().manual_seed(0)
    xs, xq = torch.rand(3, 1, 28, 28, generator=gen), torch.rand(3, 1, 28, 28, generator=gen)
    return forward(model), init_params(model, seed=0), xs, torch.arange(3), xq, torch.arange(3)


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("mean,std", [(0.0, 0.3), (0.2, 1.5)])
def test_each_location_draws_only_its_tensor_with_the_asked_moments(location, mean, std):
    f, p, xs, ys, xq, yq = small()
    noise = TaskNoise(**{location: GaussianNoise(mean, std)})
    draw = draw_noise(noise, p, xs.shape, xq.shape, 2, torch.Generator().manual_seed(1), tasks=50)
    assert set(draw) == {KEY[location]}
    val = draw[KEY[location]]
    x = torch.cat([v.flatten() for v in val.values()]) if isinstance(val, dict) else val.flatten()
    n = x.numel()  # tens of thousands of draws: moments within 4 standard errors
    assert abs(float(x.mean()) - mean) < 4 * std / math.sqrt(n)
    assert abs(float(x.std()) - std) < 4 * std / math.sqrt(2 * n)


@pytest.mark.parametrize("location", ["support_data", "query_data", "validation_grad"])
def test_noise_reaches_the_shared_gradient(location):
    """Noise at a location changes g; without noise the hook is the identity; the
    validation hook's perturbation of g has the asked standard deviation."""
    f, p, xs, ys, xq, yq = small()
    cfg = MAMLConfig(0.4)
    clean = flat(task_gradient(f, p, xs, ys, xq, yq, cfg)[0])
    draw = draw_noise(noise_at(location, 0.5), p, xs.shape, xq.shape, 1, torch.Generator().manual_seed(2))
    noisy = flat(task_gradient(f, p, xs, ys, xq, yq, cfg, draw)[0])
    assert not torch.allclose(noisy, clean)
    if location == "validation_grad":
        assert abs(float((noisy - clean).std()) - 0.5) < 4 * 0.5 / math.sqrt(2 * clean.numel())
    zero = draw_noise(noise_at(location, 0.0), p, xs.shape, xq.shape, 1, torch.Generator().manual_seed(2))
    assert zero == {} and torch.equal(flat(task_gradient(f, p, xs, ys, xq, yq, cfg, zero)[0]), clean)


def test_clipping_bounds_the_norm_and_keeps_the_direction():
    f, p, xs, ys, xq, yq = small()
    cfg = MAMLConfig(0.4)
    g = flat(task_gradient(f, p, xs, ys, xq, yq, cfg)[0])
    for clip in (0.1 * float(g.norm()), 10 * float(g.norm())):
        draw = draw_noise(gaussian_mechanism(clip, 0.0), p, xs.shape, xq.shape, 1, torch.Generator().manual_seed(0))
        gc = flat(task_gradient(f, p, xs, ys, xq, yq, cfg, draw)[0])
        assert float(gc.norm()) <= clip * (1 + 1e-5)
        assert torch.allclose(gc / gc.norm(), g / g.norm(), atol=1e-6)
        if clip > g.norm():
            assert torch.allclose(gc, g)  # below the bound nothing changes
    # the mechanism's noise has standard deviation sigma * clip
    draw = draw_noise(gaussian_mechanism(0.5, 2.0), p, xs.shape, xq.shape, 1, torch.Generator().manual_seed(0))
    x = torch.cat([v.flatten() for v in draw["validation"].values()])
    assert abs(float(x.std()) - 1.0) < 4 / math.sqrt(2 * x.numel())


def test_epsilon_matches_the_accountant_and_falls_as_sigma_grows():
    # Opacus' own test value: sigma 1.5, sample rate 0.04, 2250 steps, delta 1e-5 -> 7.3291
    assert abs(epsilon(1.5, 0.04, 2250, 1e-5) - 7.3291) < 1e-3
    eps = [epsilon(s, 0.004, 1000) for s in (0.6, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(eps, eps[1:]))
    assert epsilon(1.0, 0.004, 1000, accountant="prv") < epsilon(1.0, 0.004, 1000, accountant="rdp") * 1.05
    assert epsilon(0.0, 0.1, 10) == math.inf


def test_confident_area_rule():
    area = confident_area([0.1, 1, 10], [0.9, 0.58, 0.5], [0.80, 0.78, 0.5], baseline_learning=0.8)
    assert area == [False, True, False]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: noise_at("labels", 0.1), "location"),
        (lambda: noise_at("query_data", -1.0), "std"),
        (lambda: gaussian_mechanism(0.0, 1.0), "clip"),
        (lambda: gaussian_mechanism(1.0, -1.0), "noise_multiplier"),
        (lambda: epsilon(1.0, 1.5, 10), "sample_rate"),
        (lambda: epsilon(1.0, 0.1, 0), "steps"),
        (lambda: epsilon(1.0, 0.1, 10, delta=0.0), "delta"),
        (lambda: epsilon(1.0, 0.1, 10, accountant="gdp"), "accountant"),
        (lambda: TaskNoise(clip=-1.0), "clip"),
    ],
)
def test_bad_defence_parameters_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()

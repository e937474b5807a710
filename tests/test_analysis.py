"""Hessian-aware anatomy of the task gradient, against explicit Hessians and autograd."""

import pytest
import torch
import torch.nn.functional as F
from conftest import unflat

from mamlpriv.analysis import SWAPS, decompose, decomposition_stats, hvp, replacement_images, swap_cosines
from mamlpriv.data import TaskSampler, stack_tasks
from mamlpriv.maml import MAMLConfig, task_gradient
from mamlpriv.metrics import flat
from mamlpriv.models import MLP, ConvNet, forward, init_params

DT = torch.float64


def cosine(a, b):
    """Cosine similarity of two parameter dicts with the same keys, as flat vectors (an
    oracle for the batched cosines of mamlpriv.analysis)."""
    fa, fb = flat(a), flat({k: b[k] for k in a})
    return float(torch.dot(fa, fb) / (fa.norm() * fb.norm()).clamp_min(torch.finfo(fa.dtype).tiny))


def test_cosine_helper_by_hand():
    a = {"w": torch.tensor([1.0, 0.0]), "b": torch.tensor([1.0])}
    b = {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.0])}
    assert cosine(a, b) == pytest.approx(1 / 2)
    assert cosine(b, {"b": b["b"], "w": b["w"]}) == pytest.approx(1.0)  # matched by key, not by order


def tiny(seed=0):
    model = MLP(3, hidden=4, layers=1, in_features=5)
    f = forward(model)
    p = init_params(model, seed=seed, dtype=DT)
    gen = torch.Generator().manual_seed(seed)
    xs, xq = torch.randn(6, 5, generator=gen, dtype=DT), torch.randn(6, 5, generator=gen, dtype=DT)
    y = torch.arange(3).repeat_interleave(2)
    return f, p, xs, y, xq, y.clone()


def test_hvp_equals_explicit_hessian_times_vector():
    f, p, xs, ys, *_ = tiny(1)
    w = flat(p)
    H = torch.func.hessian(lambda v: F.cross_entropy(f(unflat(v, p), xs), ys))(w)
    v = torch.randn(len(w), generator=torch.Generator().manual_seed(2), dtype=DT)
    hv = flat(hvp(f, p, xs, ys, unflat(v, p)))
    assert float((hv - H @ v).norm() / (H @ v).norm()) < 1e-10


@pytest.mark.parametrize("k", [1, 2, 3])
def test_decomposition_matches_autograd_gradient_and_first_order_part(k):
    f, p, xs, ys, xq, yq = tiny(3)
    cfg = MAMLConfig(0.4, k, False)
    d = decompose(f, p, xs, ys, xq, yq, cfg)
    g, _, _ = task_gradient(f, p, xs, ys, xq, yq, cfg)
    g_fo, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(0.4, k, True))
    assert float((flat(d.g) - flat(g)).norm() / flat(g).norm()) < 1e-10
    assert float((flat(d.query_part) - flat(g_fo)).norm()) < 1e-12
    assert float((flat(d.query_part) + flat(d.support_part) - flat(g)).norm() / flat(g).norm()) < 1e-10
    assert float(flat(d.support_part).norm()) > 1e-4  # a real correction on this problem


def test_one_step_support_part_is_minus_alpha_H_times_query_part():
    f, p, xs, ys, xq, yq = tiny(4)
    a = 0.3
    d = decompose(f, p, xs, ys, xq, yq, MAMLConfig(a, 1))
    H = torch.func.hessian(lambda v: F.cross_entropy(f(unflat(v, p), xs), ys))(flat(p))
    expected = -a * H @ flat(d.query_part)
    assert float((flat(d.support_part) - expected).norm() / expected.norm()) < 1e-10


@pytest.fixture(scope="module")
def mnist_tasks(mnist_test):
    sampler = TaskSampler(mnist_test, ways=5, shots=1)
    return mnist_test, [sampler.sample(s) for s in range(4)]


@pytest.mark.slow
@pytest.mark.parametrize("norm,tol", [("none", 1e-6), ("group", 3e-6)])
def test_conv_net_parts_sum_to_g_in_float32(mnist_tasks, norm, tol):
    """Query part + support correction (HVPs) against the autograd task gradient.

    GroupNorm makes float32 less accurate: there each route is ~1e-6 (relative) away
    from the float64 result, so the two float32 routes are compared at 3e-6 and each is
    also checked against float64; without normalisation they agree to ~6e-8."""
    _, tasks = mnist_tasks
    model = ConvNet(5, norm=norm)
    f, p = forward(model), init_params(model, seed=0)
    p64 = {k: v.double() for k, v in p.items()}
    cfg = MAMLConfig(0.4, 1, False)
    for t in tasks:
        d = decompose(f, p, t.support_x, t.support_y, t.query_x, t.query_y, cfg)
        g, _, _ = task_gradient(f, p, t.support_x, t.support_y, t.query_x, t.query_y, cfg)
        total = flat(d.query_part) + flat(d.support_part)
        assert float((total - flat(g)).norm() / flat(g).norm()) < tol
        assert float(flat(d.support_part).norm() / flat(g).norm()) > 1e-3
        ref, _, _ = task_gradient(f, p64, t.support_x.double(), t.support_y, t.query_x.double(), t.query_y, cfg)
        assert float((total.double() - flat(ref)).norm() / flat(ref).norm()) < 2.5e-6


@pytest.mark.slow
def test_conv_net_decomposition_in_float64(mnist_tasks):
    _, tasks = mnist_tasks
    model = ConvNet(5, hidden=8)
    f, p = forward(model), init_params(model, seed=3, dtype=DT)
    cfg = MAMLConfig(0.4, 2, False)
    t = tasks[0]
    args = (t.support_x.double(), t.support_y, t.query_x.double(), t.query_y)
    d = decompose(f, p, *args, cfg)
    g, _, _ = task_gradient(f, p, *args, cfg)
    total = flat(d.query_part) + flat(d.support_part)
    assert float((total - flat(g)).norm() / flat(g).norm()) < 1e-10


@pytest.mark.slow
def test_decomposition_stats_match_single_task_computation(mnist_tasks):
    _, tasks = mnist_tasks
    model = ConvNet(5, hidden=8)
    f, p = forward(model), init_params(model, seed=1)
    cfg = MAMLConfig(0.4, 2, False)
    stats = decomposition_stats(f, p, stack_tasks(tasks), cfg)
    for i, t in enumerate(tasks):
        d = decompose(f, p, t.support_x, t.support_y, t.query_x, t.query_y, cfg)
        share = flat(d.support_part).norm() / flat(d.g).norm()
        assert float(stats["support_share"][i]) == pytest.approx(float(share), rel=1e-4)
        assert float(stats["cos_fo"][i]) == pytest.approx(cosine(d.g, d.query_part), abs=1e-5)


@pytest.mark.slow
def test_replacement_images(mnist_tasks):
    ds, tasks = mnist_tasks
    t = tasks[0]
    gen = torch.Generator().manual_seed(0)
    lookup = {ds.images[i].numpy().tobytes(): i for i in range(len(ds))}  # image -> index

    def labels_of(x):
        return [int(ds.labels[lookup[img.numpy().tobytes()]]) for img in x]

    same = replacement_images(ds, t, "support", "same-class", gen)
    assert same.shape == t.support_x.shape and labels_of(same) == list(t.classes)
    used = set(t.support_idx.tolist()) | set(t.query_idx.tolist())
    assert all(lookup[img.numpy().tobytes()] not in used for img in same)
    other = replacement_images(ds, t, "query", "other-class", gen)
    assert not set(labels_of(other)) & set(t.classes) and len(set(labels_of(other))) == 5
    noise = replacement_images(ds, t, "query", "noise", gen)
    assert noise.shape == t.query_x.shape and 0 <= float(noise.min()) and float(noise.max()) <= 1
    with pytest.raises(ValueError, match="which"):
        replacement_images(ds, t, "both", "noise", gen)
    with pytest.raises(ValueError, match="kind"):
        replacement_images(ds, t, "query", "blur", gen)


@pytest.mark.slow
def test_swap_cosines_see_the_support_set_only_through_adaptation(mnist_tasks):
    ds, tasks = mnist_tasks
    model = ConvNet(5, hidden=8)
    f, p = forward(model), init_params(model, seed=2)
    # a vanishing inner rate: the support set can hardly change g, the query set can
    cos = swap_cosines(f, p, ds, tasks, MAMLConfig(1e-6, 1, False), seed=0)
    assert set(cos) == {(w, k) for w in ("support", "query") for k in SWAPS}
    for kind in SWAPS:
        assert float(cos[("support", kind)].min()) > 0.9999
        assert float(cos[("query", kind)].mean()) < 0.99
    # a real inner rate: swapping the support set changes g too
    cos = swap_cosines(f, p, ds, tasks, MAMLConfig(0.4, 1, False), seed=0)
    assert float(cos[("support", "noise")].mean()) < 0.9999

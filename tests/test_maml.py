"""The shared task gradient against independent computations (float64)."""

import pytest
import torch
import torch.nn.functional as F
from conftest import flat, unflat

from mamlpriv.data import TaskBatch
from mamlpriv.maml import GaussianNoise, MAMLConfig, TaskNoise, adapt, draw_noise, meta_gradient, task_gradient
from mamlpriv.models import MLP, ConvNet, forward, init_params

DT = torch.float64


def rel(a, b):
    return float((a - b).norm() / b.norm())


def tiny_problem(seed=0, ways=3, shots=2, d=5):
    """An MLP on d-dim inputs with a few dozen parameters, in float64."""
    torch.manual_seed(seed)
    model = MLP(ways, hidden=4, layers=1, in_features=d)
    f = forward(model)
    p = init_params(model, seed=seed, dtype=DT)
    xs, xq = torch.randn(ways * shots, d, dtype=DT), torch.randn(ways * shots, d, dtype=DT)
    y = torch.arange(ways).repeat_interleave(shots)
    return f, p, xs, y, xq, y.clone()


def loss_of_vec(f, like, x, y):
    return lambda vec: F.cross_entropy(f(unflat(vec, like), x), y)


def sgd_steps(f, p, xs, ys, a, k):
    """Plain autograd inner loop on a flat vector, independent of mamlpriv.maml.adapt."""
    w = flat(p).detach().clone()
    ws = [w]
    for _ in range(k):
        w = w.detach().requires_grad_()
        (g,) = torch.autograd.grad(loss_of_vec(f, p, xs, ys)(w), w)
        w = (w - a * g).detach()
        ws.append(w)
    return ws


@pytest.mark.parametrize("seed", range(3))
def test_second_order_one_step_equals_I_minus_aH_times_query_grad(seed):
    f, p, xs, ys, xq, yq = tiny_problem(seed)
    a = 0.3
    g, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(a, 1, False))
    w0, w1 = sgd_steps(f, p, xs, ys, a, 1)
    H = torch.func.hessian(loss_of_vec(f, p, xs, ys))(w0)
    gq = torch.func.grad(loss_of_vec(f, p, xq, yq))(w1)
    expected = (torch.eye(len(w0), dtype=DT) - a * H) @ gq
    assert H.abs().max() > 1e-3  # the Hessian term is not negligible here
    assert rel(flat(g), expected) < 1e-8
    assert rel(flat(g), gq) > 1e-4  # and second order differs from first order


def test_second_order_two_steps_equals_product_form():
    f, p, xs, ys, xq, yq = tiny_problem(1)
    a = 0.3
    g, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(a, 2, False))
    w0, w1, w2 = sgd_steps(f, p, xs, ys, a, 2)
    hess = torch.func.hessian(loss_of_vec(f, p, xs, ys))
    eye = torch.eye(len(w0), dtype=DT)
    gq = torch.func.grad(loss_of_vec(f, p, xq, yq))(w2)
    expected = (eye - a * hess(w0)) @ (eye - a * hess(w1)) @ gq
    assert rel(flat(g), expected) < 1e-8


@pytest.mark.parametrize("k", [1, 3])
def test_first_order_equals_query_grad_at_adapted_params(k):
    f, p, xs, ys, xq, yq = tiny_problem(2)
    g, loss, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(0.3, k, True))
    wk = sgd_steps(f, p, xs, ys, 0.3, k)[-1]
    gq = torch.func.grad(loss_of_vec(f, p, xq, yq))(wk)
    assert rel(flat(g), gq) < 1e-12
    assert abs(float(loss) - float(loss_of_vec(f, p, xq, yq)(wk))) < 1e-12


def maml_objective(f, like, xs, ys, xq, yq, a, k):
    """L(theta_k(omega), D_q) as a function of flat omega, with plain tensor ops."""

    def obj(w):
        for _ in range(k):
            (g,) = torch.autograd.grad(loss_of_vec(f, like, xs, ys)(w), w, create_graph=True)
            w = w - a * g
        return loss_of_vec(f, like, xq, yq)(w)

    return obj


@pytest.mark.parametrize("k", [1, 2])
def test_second_order_matches_central_finite_differences(k):
    f, p, xs, ys, xq, yq = tiny_problem(3)
    a, eps = 0.3, 1e-6
    g, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(a, k, False))
    obj = maml_objective(f, p, xs, ys, xq, yq, a, k)
    w = flat(p)
    fd = torch.empty_like(w)
    for i in range(len(w)):
        e = torch.zeros_like(w)
        e[i] = eps
        fd[i] = (obj((w + e).requires_grad_()) - obj((w - e).requires_grad_())) / (2 * eps)
    assert rel(flat(g), fd) < 1e-6


@pytest.mark.parametrize("norm,pool", [("none", "max"), ("group", "max"), ("none", "stride")])
def test_conv_net_gradient_matches_directional_finite_differences(norm, pool):
    torch.manual_seed(0)
    model = ConvNet(3, hidden=4, norm=norm, pool=pool)
    f = forward(model)
    p = init_params(model, seed=0, dtype=DT)
    xs, xq = torch.rand(3, 1, 28, 28, dtype=DT), torch.rand(3, 1, 28, 28, dtype=DT)
    y = torch.arange(3)
    a, eps = 0.5, 1e-6
    g, _, _ = task_gradient(f, p, xs, y, xq, y, MAMLConfig(a, 1, False))
    obj = maml_objective(f, p, xs, y, xq, y, a, 1)
    w = flat(p)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(len(w), generator=gen, dtype=DT)
        fd = (obj((w + eps * v).requires_grad_()) - obj((w - eps * v).requires_grad_())) / (2 * eps)
        assert abs(float(flat(g) @ v) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))


# ----- noise hooks (paper section IV-E) -----------------------------------------------


def draw(noise, p, xs, xq, k=1, seed=0):
    return draw_noise(noise, p, xs.shape, xq.shape, k, torch.Generator().manual_seed(seed))


def test_zero_noise_is_identity():
    f, p, xs, ys, xq, yq = tiny_problem(4)
    cfg = MAMLConfig(0.3, 2, False)
    zero = TaskNoise(*(GaussianNoise(0.0, 0.0),) * 4)
    assert not zero.active and draw(zero, p, xs, xq, 2) == {}
    g0, l0, _ = task_gradient(f, p, xs, ys, xq, yq, cfg)
    g1, l1, _ = task_gradient(f, p, xs, ys, xq, yq, cfg, draw(zero, p, xs, xq, 2))
    assert all(torch.equal(g0[k], g1[k]) for k in g0) and torch.equal(l0, l1)


@pytest.mark.parametrize("first_order", [False, True])
def test_validation_noise_is_additive_on_g(first_order):
    f, p, xs, ys, xq, yq = tiny_problem(5)
    cfg = MAMLConfig(0.3, 1, first_order)
    nz = draw(TaskNoise(validation_grad=GaussianNoise(0.1, 0.5)), p, xs, xq)
    assert set(nz) == {"validation"}
    g0, l0, _ = task_gradient(f, p, xs, ys, xq, yq, cfg)
    g1, l1, _ = task_gradient(f, p, xs, ys, xq, yq, cfg, nz)
    for k in g0:
        torch.testing.assert_close(g1[k] - g0[k], nz["validation"][k], rtol=0, atol=1e-14)
    assert torch.equal(l0, l1)  # the loss (and theta) are untouched


@pytest.mark.parametrize("first_order", [False, True])
def test_data_noise_acts_on_its_own_set_only(first_order):
    f, p, xs, ys, xq, yq = tiny_problem(6)
    cfg = MAMLConfig(0.3, 1, first_order)
    sup = draw(TaskNoise(support_data=GaussianNoise(0.0, 0.3)), p, xs, xq)
    qry = draw(TaskNoise(query_data=GaussianNoise(0.0, 0.3)), p, xs, xq, seed=1)
    assert set(sup) == {"support"} and set(qry) == {"query"}
    # support noise == the clean computation on noisy support images, and it moves theta
    ga, la, _ = task_gradient(f, p, xs, ys, xq, yq, cfg, sup)
    gb, lb, _ = task_gradient(f, p, xs + sup["support"], ys, xq, yq, cfg)
    assert all(torch.equal(ga[k], gb[k]) for k in ga) and torch.equal(la, lb)
    t0, t1 = adapt(f, p, xs, ys, cfg), adapt(f, p, xs + sup["support"], ys, cfg)
    assert rel(flat(t1), flat(t0)) > 1e-4
    # query noise == the clean computation on noisy query images; theta unchanged
    ga, la, _ = task_gradient(f, p, xs, ys, xq, yq, cfg, qry)
    gb, lb, _ = task_gradient(f, p, xs, ys, xq + qry["query"], yq, cfg)
    g0, l0, _ = task_gradient(f, p, xs, ys, xq, yq, cfg)
    assert all(torch.equal(ga[k], gb[k]) for k in ga) and torch.equal(la, lb)
    assert not torch.equal(la, l0)


def test_adaptation_noise_enters_each_inner_step():
    f, p, xs, ys, xq, yq = tiny_problem(7)
    a, k = 0.3, 2
    nz = draw(TaskNoise(adaptation_grad=GaussianNoise(0.0, 0.2)), p, xs, xq, k)
    assert set(nz) == {"adaptation"} and all(v.shape[0] == k for v in nz["adaptation"].values())
    n = [flat({name: v[j] for name, v in nz["adaptation"].items()}) for j in range(k)]
    # independent: theta_{j+1} = theta_j - a (grad + n_j), then grad at theta_k (FO)
    w = flat(p)
    lossf = loss_of_vec(f, p, xs, ys)
    ws = [w]
    for j in range(k):
        w = w - a * (torch.func.grad(lossf)(w) + n[j])
        ws.append(w)
    gq = torch.func.grad(loss_of_vec(f, p, xq, yq))(ws[-1])
    g_fo, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(a, k, True), nz)
    assert rel(flat(g_fo), gq) < 1e-12
    # second order: the noise is constant in omega, so g = (I-aH(w0))(I-aH(w1)) grad_q
    hess = torch.func.hessian(lossf)
    eye = torch.eye(len(w), dtype=DT)
    g_so, _, _ = task_gradient(f, p, xs, ys, xq, yq, MAMLConfig(a, k, False), nz)
    assert rel(flat(g_so), (eye - a * hess(ws[0])) @ (eye - a * hess(ws[1])) @ gq) < 1e-8


def test_noise_draws_are_seeded_and_have_the_asked_moments():
    p = {"w": torch.zeros(200, 200, dtype=DT)}
    noise = TaskNoise(validation_grad=GaussianNoise(0.5, 2.0), support_data=GaussianNoise(-1.0, 0.0))
    a = draw_noise(noise, p, (3, 4), (3, 4), 1, torch.Generator().manual_seed(3))
    b = draw_noise(noise, p, (3, 4), (3, 4), 1, torch.Generator().manual_seed(3))
    c = draw_noise(noise, p, (3, 4), (3, 4), 1, torch.Generator().manual_seed(4))
    v = a["validation"]["w"]
    assert torch.equal(v, b["validation"]["w"]) and not torch.equal(v, c["validation"]["w"])
    assert abs(float(v.mean()) - 0.5) < 0.03 and abs(float(v.std()) - 2.0) < 0.03
    assert torch.equal(a["support"], torch.full((3, 4), -1.0, dtype=DT))  # std 0: the mean only


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="std"):
        GaussianNoise(0.0, -0.1)
    with pytest.raises(ValueError, match="inner_lr"):
        MAMLConfig(inner_lr=0.0)
    with pytest.raises(ValueError, match="inner_steps"):
        MAMLConfig(inner_steps=0)


@pytest.mark.parametrize("first_order", [False, True])
def test_vmapped_meta_gradient_equals_loop_and_mean_of_task_gradients(first_order):
    f, p, *_ = tiny_problem(8)
    gen = torch.Generator().manual_seed(0)
    T, d = 3, 5
    y = torch.arange(3).repeat_interleave(2).expand(T, 6)
    batch = TaskBatch(
        torch.randn(T, 6, d, generator=gen, dtype=DT), y, torch.randn(T, 6, d, generator=gen, dtype=DT), y
    )
    cfg = MAMLConfig(0.3, 2, first_order)
    noise = TaskNoise(*(GaussianNoise(0.0, 0.1),) * 4)
    nz = draw_noise(noise, p, (6, d), (6, d), 2, gen, tasks=T)
    gv, lv, av = meta_gradient(f, p, batch, cfg, nz, vectorize=True)
    gl, ll, al = meta_gradient(f, p, batch, cfg, nz, vectorize=False)
    for k in gv:
        torch.testing.assert_close(gv[k], gl[k], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lv, ll)
    single = [
        task_gradient(
            f,
            p,
            *batch.task(i),
            cfg,
            {key: ({n: t[i] for n, t in v.items()} if isinstance(v, dict) else v[i]) for key, v in nz.items()},
        )[0]
        for i in range(T)
    ]
    for k in gv:
        torch.testing.assert_close(gv[k], sum(s[k] for s in single) / T, rtol=1e-10, atol=1e-12)


def test_strided_conv_net_shapes_and_bad_pool():
    model = ConvNet(5, hidden=8, norm="none", pool="stride")
    assert model.head.in_features == 8 * 2 * 2  # 28 -> 14 -> 7 -> 4 -> 2
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert forward(model)(init_params(model), torch.rand(2, 1, 28, 28)).shape == (2, 5)
    with pytest.raises(ValueError, match="pool"):
        ConvNet(5, pool="avg")


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_the_eager_task_gradient_equals_the_functional_one(first_order, clip):
    from mamlpriv.maml import task_gradient_eager

    f, p, *_ = tiny_problem(3)
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(3).repeat_interleave(2)
    xs, xq = torch.randn(6, 5, generator=gen, dtype=DT), torch.randn(6, 5, generator=gen, dtype=DT)
    cfg = MAMLConfig(0.3, 2, first_order)
    noise = TaskNoise(*(GaussianNoise(0.05, 0.1),) * 4, clip=clip)
    nz = draw_noise(noise, p, (6, 5), (6, 5), 2, gen)
    ge, le, ae = task_gradient_eager(f, p, xs, y, xq, y, cfg, nz)
    gf, lf, af = task_gradient(f, p, xs, y, xq, y, cfg, nz)
    for k in gf:
        torch.testing.assert_close(ge[k], gf[k], rtol=1e-10, atol=1e-12)
        assert not ge[k].requires_grad
    torch.testing.assert_close(le, lf)
    torch.testing.assert_close(ae, af)


@pytest.mark.parametrize("first_order", [False, True])
def test_the_one_pass_meta_gradient_equals_the_mean_of_task_gradients(first_order):
    """Without clipping or validation noise the loop takes one backward pass through the
    mean query loss; it must equal the vmapped mean of the per-task gradients."""
    f, p, *_ = tiny_problem(4)
    gen = torch.Generator().manual_seed(2)
    T = 3
    y = torch.arange(3).repeat_interleave(2).expand(T, 6)
    batch = TaskBatch(
        torch.randn(T, 6, 5, generator=gen, dtype=DT), y, torch.randn(T, 6, 5, generator=gen, dtype=DT), y
    )
    cfg = MAMLConfig(0.3, 2, first_order)
    noise = TaskNoise(GaussianNoise(0.0, 0.1), GaussianNoise(0.0, 0.1), GaussianNoise(0.1, 0.1))
    nz = draw_noise(noise, p, (6, 5), (6, 5), 2, gen, tasks=T)
    gv, lv, av = meta_gradient(f, p, batch, cfg, nz, vectorize=True)
    gl, ll, al = meta_gradient(f, p, batch, cfg, nz, vectorize=False)
    for k in gv:
        torch.testing.assert_close(gl[k], gv[k], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ll, lv)
    torch.testing.assert_close(al, av)
    single = TaskBatch(batch.support_x[:1], y[:1], batch.query_x[:1], y[:1])
    g1, _, _ = meta_gradient(f, p, single, cfg, vectorize=False)
    gt = task_gradient(f, p, *single.task(0), cfg)[0]
    for k in gt:
        torch.testing.assert_close(g1[k], gt[k], rtol=1e-10, atol=1e-12)


def test_the_default_path_is_chosen_by_shape():
    from mamlpriv.maml import LOOP_IMAGES, LOOP_TASKS, _vectorize

    def batch(tasks: int, images: int) -> TaskBatch:
        half = images // 2
        x, y = torch.zeros(tasks, half, 1), torch.zeros(tasks, half, dtype=torch.long)
        return TaskBatch(x, y, x, y)

    assert _vectorize(batch(4, 10))  # 5-way 1-shot: vmap
    assert not _vectorize(batch(4, 80))  # 5-way 1-shot with 15 query images per class: loop
    assert _vectorize(batch(LOOP_TASKS + 1, 2 * LOOP_IMAGES))  # many tasks: vmap
    assert not _vectorize(batch(LOOP_TASKS, LOOP_IMAGES))


@pytest.mark.parametrize(
    "model",
    [
        ConvNet(3),
        ConvNet(3, norm="none", pool="stride"),
        ConvNet(2, hidden=8, norm="group", pool="stride"),
        MLP(3, hidden=6, layers=2),
        MLP(2, layers=0),
    ],
    ids=["conv-group-max", "conv-none-stride", "conv-group-stride", "mlp", "linear"],
)
def test_the_direct_forward_is_the_module_bit_for_bit(model):
    """forward() calls the layers' functional ops itself; outputs and second-order
    gradients must be exactly those of torch.func.functional_call on the module."""
    from torch.func import functional_call, grad

    f = forward(model)
    p = init_params(model, seed=3)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 1, 0])
    assert torch.equal(f(p, x), functional_call(model, p, (x,)))
    cfg = MAMLConfig(0.4, 1)
    a = task_gradient(f, p, x, y, x.flip(0), y, cfg)[0]
    b = task_gradient(lambda q, z: functional_call(model, q, (z,)), p, x, y, x.flip(0), y, cfg)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert grad(lambda q: f(q, x).square().sum())(p).keys() == p.keys()

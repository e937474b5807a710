"""The single-neuron example behind Proposition 3.1 (paper appendix), in float64.

Closed forms are checked against autograd through the ``SingleNeuron`` module, and
every alternative task the construction accepts is checked to reproduce the shared
gradient through ``mamlpriv.maml.task_gradient`` (an independent code path).
"""

import collections

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from torch.func import grad, hessian

from mamlpriv.counterexample import (
    AlternativeTask,
    SingleNeuron,
    alternative_task_family,
    construct_alternative_task,
    invertibility_condition,
    maml_gradient_autograd,
    maml_gradient_closed_form,
    neuron_grad,
    neuron_hessian,
    neuron_loss,
    neuron_params,
    nonzero_condition,
)
from mamlpriv.models import forward

DT = torch.float64


def t(*v):
    return torch.tensor(v, dtype=DT)


def module_loss(x, y):
    """Loss of ``w`` computed through the nn.Module (independent of the closed forms)."""
    f = forward(SingleNeuron())
    return lambda w: F.mse_loss(f(neuron_params(w[0], w[1]), x), y)


def random_case(gen, max_n=6):
    w = torch.randn(2, dtype=DT, generator=gen)
    n = int(torch.randint(1, max_n + 1, (), generator=gen))
    x = 2 * torch.randn(n, dtype=DT, generator=gen)
    y = 2 * torch.randn(n, dtype=DT, generator=gen)
    return w, x, y


def random_set(gen, max_n=4):
    n = int(torch.randint(1, max_n + 1, (), generator=gen))
    return 2 * torch.randn(n, dtype=DT, generator=gen), 2 * torch.randn(n, dtype=DT, generator=gen)


def close(a, b, tol):
    """``|a - b| <= tol * max(|b|, 1)``: relative, or absolute when ``b`` is small."""
    return float((a - b).norm()) <= tol * max(float(b.norm()), 1.0)


# ------------------------------------------------------------------- module and closed forms


def test_module_shapes_and_params():
    m = SingleNeuron()
    assert set(neuron_params(1.0, 2.0)) == {k for k, _ in m.named_parameters()}
    p = neuron_params(2.0, -1.0)
    assert all(v.dtype == DT for v in p.values())
    out = forward(m)(p, t(0.0, 1.0, 3.0))
    assert out.shape == (3,)
    assert torch.equal(out, t(0.0, 1.0, 5.0))  # ReLU(2x - 1)


def test_closed_form_loss_grad_hessian_match_autograd():
    gen = torch.Generator().manual_seed(0)
    mixed = 0
    for _ in range(300):
        w, x, y = random_case(gen)
        z = w[0] * x + w[1]
        mixed += bool((z > 0).any() and (z <= 0).any())
        L = module_loss(x, y)
        assert close(neuron_loss(w, x, y), L(w), 1e-12)
        assert close(neuron_grad(w, x, y), grad(L)(w), 1e-12)
        assert close(neuron_hessian(w, x, y), hessian(L)(w), 1e-12)
    assert mixed > 50  # many cases mix active and inactive samples


def test_inactive_samples_contribute_nothing_and_kink_convention():
    w = t(1.0, 0.0)
    x, y = t(-1.0, 0.0), t(3.0, -2.0)  # z = -1 (inactive), z = 0 (inactive: ReLU'(0) = 0)
    assert torch.equal(neuron_grad(w, x, y), torch.zeros(2, dtype=DT))
    assert torch.equal(neuron_hessian(w, x, y), torch.zeros(2, 2, dtype=DT))
    assert torch.equal(grad(module_loss(x, y))(w), torch.zeros(2, dtype=DT))


def paper_eq13(w, x, y):
    """The paper's eq. 13 for one sample (f_z(1) = 1 iff z >= 0), as printed."""
    f = float(w[0] * x + w[1] >= 0)
    return 2 * f * t(x * (x - y), x * (1 - y), x - y, 1 - y).reshape(2, 2)


def test_paper_eq13_hessian_is_not_the_true_hessian():
    gen = torch.Generator().manual_seed(1)
    w = t(1.0, 1.0)
    for _ in range(50):
        x = float(torch.rand((), dtype=DT, generator=gen)) + 0.5  # active: z = x + 1 > 0
        y = float(torch.randn((), dtype=DT, generator=gen)) + 3.0  # y != 0
        true = hessian(module_loss(t(x), t(y)))(w)
        # the true Hessian is y-free and symmetric; eq. 13 is neither
        assert torch.allclose(true, 2 * t(x * x, x, x, 1.0).reshape(2, 2), rtol=0, atol=1e-12)
        assert torch.allclose(true, hessian(module_loss(t(x), t(y + 5.0)))(w), rtol=0, atol=1e-12)
        paper = paper_eq13(w, x, y)
        assert (paper - true).abs().max() > 0.1
        # the gap is exactly -2 y [[x, x], [1, 1]]
        assert torch.allclose(paper - true, -2 * y * t(x, x, 1.0, 1.0).reshape(2, 2), atol=1e-12)
    # eq. 13 agrees with the truth only at y = 0
    assert torch.allclose(paper_eq13(w, 0.7, 0.0), hessian(module_loss(t(0.7), t(0.0)))(w), atol=1e-12)


def test_maml_gradient_closed_form_matches_autograd():
    gen = torch.Generator().manual_seed(2)
    nonzero = 0
    for _ in range(200):
        w, xs, ys = random_case(gen)
        _, xq, yq = random_case(gen)
        alpha = float(0.01 + 0.99 * torch.rand((), dtype=DT, generator=gen))
        gc = maml_gradient_closed_form(w, alpha, (xs, ys), (xq, yq))
        ga = maml_gradient_autograd(w, alpha, (xs, ys), (xq, yq))
        assert gc.shape == ga.shape == (2,)
        assert close(gc, ga, 1e-12)
        nonzero += bool(ga.abs().min() > 1e-3)
    assert nonzero > 80


def test_maml_gradient_uses_I_minus_alpha_H():
    # Active single-sample sets, so the second-order term is present.
    w, alpha = t(0.5, 1.0), 0.3
    s, q = (t(1.0), t(-1.0)), (t(-2.0), t(4.0))
    theta = w - alpha * neuron_grad(w, *s)  # (-1, -0.5): the query sample is active
    gq = neuron_grad(theta, *q)
    assert gq.abs().min() > 1.0
    H = neuron_hessian(w, *s)
    g = maml_gradient_autograd(w, alpha, s, q)
    assert close(g, (torch.eye(2, dtype=DT) - alpha * H) @ gq, 1e-12)
    assert not close(g, (torch.eye(2, dtype=DT) + H) @ gq, 1e-3)  # the paper's I + H


# ------------------------------------------------------------------- Proposition 3.1


def check_alternative(w, alpha, support, query, task, tol=1e-10):
    """An accepted task differs from (D_s, D_q) and reproduces g via autograd."""
    assert task.ok and task.reason == ""
    assert task.query[0].shape == task.query[1].shape == (1,)
    a, b = task.theta
    assert float(a * task.query[0][0] + b) > 0  # the query sample is active at theta'
    assert not (
        torch.equal(task.support[0], support[0])
        and torch.equal(task.support[1], support[1])
        and torch.equal(task.query[0], query[0])
        and torch.equal(task.query[1], query[1])
    )
    g = maml_gradient_autograd(w, alpha, support, query)
    g_alt = maml_gradient_autograd(w, alpha, task.support, task.query)
    assert close(g_alt, g, tol), (g_alt, g)


def test_hand_picked_alternative_task():
    w, alpha = t(0.5, 0.2), 0.1
    D_s, D_q = (t(1.0, 2.0), t(1.0, -1.0)), (t(0.5, 1.5, -3.0), t(2.0, 0.0, 1.0))
    M_s = (t(-0.5), t(3.0))
    task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
    check_alternative(w, alpha, D_s, D_q, task)
    assert task.support is M_s
    ok, det = invertibility_condition(w, alpha, M_s)
    assert ok and det == pytest.approx(
        float(torch.linalg.det(torch.eye(2, dtype=DT) - alpha * neuron_hessian(w, *M_s)))
    )
    g = maml_gradient_closed_form(w, alpha, D_s, D_q)
    ok, g_prime = nonzero_condition(g, w, alpha, M_s)
    assert ok and torch.equal(g_prime, task.g_prime)


def test_random_cases_are_often_ok_and_all_ok_ones_reproduce_g():
    gen = torch.Generator().manual_seed(3)
    reasons = collections.Counter()
    for _ in range(300):
        w = torch.randn(2, dtype=DT, generator=gen)
        alpha = float(0.01 + 0.99 * torch.rand((), dtype=DT, generator=gen))
        D_s, D_q, M_s = random_set(gen), random_set(gen), random_set(gen)
        task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
        if task.ok:
            check_alternative(w, alpha, D_s, D_q, task)
            assert task.failure == ""
            reasons["ok"] += 1
        else:
            assert task.query is None and task.reason
            code = {"zero entry": "zero-entry", "inactive": "inactive-query", "singular": "singular"}
            assert [c for phrase, c in code.items() if phrase in task.reason] == [task.failure]
            # generically g' has no zero entry unless g = 0 (no query sample active)
            assert "zero entry" not in task.reason or "itself zero" in task.reason
            reasons[
                "zero entry"
                if "zero entry" in task.reason
                else "inactive"
                if "inactive" in task.reason
                else "singular"
                if "singular" in task.reason
                else task.reason
            ] += 1
    # Seed 3: 114 ok, 126 zero entry (all with g == 0 exactly), 60 inactive query sample.
    assert reasons["ok"] >= 75, reasons
    assert reasons["inactive"] > 0 and reasons["zero entry"] > 0, reasons
    assert set(reasons) <= {"ok", "zero entry", "inactive", "singular"}, reasons


def test_singular_A_is_reported():
    # One active sample at x = 1: H = [[2, 2], [2, 2]], det(I - alpha H) = 1 - 4 alpha = 0.
    w, alpha = t(1.0, 0.0), 0.25
    D_s, D_q = (t(2.0), t(1.0)), (t(1.0, 2.0), t(0.0, 1.0))
    M_s = (t(1.0), t(5.0))
    ok, det = invertibility_condition(w, alpha, M_s)
    assert not ok and det == 0.0
    task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
    assert not task.ok and "singular" in task.reason and task.query is None
    assert torch.isnan(task.g_prime).all()
    g = maml_gradient_closed_form(w, alpha, D_s, D_q)
    ok, g_prime = nonzero_condition(g, w, alpha, M_s)
    assert not ok and torch.isnan(g_prime).all()
    # a slightly different alpha is fine
    assert invertibility_condition(w, 0.3, M_s)[0]


def test_inactive_query_sample_is_reported():
    # D_s and M_s are inactive at w = (1, 0), so theta = theta' = w and g' = g = [-1, 1]:
    # the query sample would sit at x_q = g'_a / g'_b = -1, where a' x_q + b' = -1 <= 0.
    w, alpha = t(1.0, 0.0), 0.5
    D_s, D_q = (t(-2.0), t(1.0)), (t(1.0, 2.0), t(-2.0, 4.0))
    M_s = (t(-1.0), t(1.0))
    task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
    assert torch.allclose(task.g_prime, t(-1.0, 1.0), atol=1e-15)
    assert torch.equal(task.theta, w)
    assert not task.ok and "inactive" in task.reason and task.query is None


def test_zero_entry_is_reported():
    # As above but the two query residuals cancel in g_b: g = g' = [-1, 0].
    w, alpha = t(1.0, 0.0), 0.5
    D_s, D_q = (t(-2.0), t(1.0)), (t(1.0, 2.0), t(0.0, 3.0))
    M_s = (t(-1.0), t(1.0))
    task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
    assert torch.allclose(task.g_prime, t(-1.0, 0.0), atol=1e-15)
    assert not task.ok and "zero entry" in task.reason and task.query is None
    ok, _ = nonzero_condition(maml_gradient_closed_form(w, alpha, D_s, D_q), w, alpha, M_s)
    assert not ok


def test_family_of_alternative_tasks():
    w, alpha = t(0.5, 0.2), 0.1
    D_s, D_q = (t(1.0), t(1.0)), (t(0.5, 1.5, 2.0), t(2.0, 0.0, 3.0))
    xs = torch.linspace(-2, 2, 21, dtype=DT)
    fam = alternative_task_family(w, alpha, D_s, D_q, xs)
    assert len(fam) == 21 and all(isinstance(m, AlternativeTask) for m in fam)
    assert all(float(m.support[1][0]) == 1.0 for m in fam)  # default y: first label of D_s
    accepted = [m for m in fam if m.ok]
    assert len(accepted) == 19
    for m in accepted:
        check_alternative(w, alpha, D_s, D_q, m)
    # x = 1 with y = 1 is D_s itself: flagged, not raised
    same = fam[15]
    assert float(same.support[0][0]) == 1.0 and not same.ok and "D_s" in same.reason
    # x = 2: det(I - alpha H) = 1 - 2 alpha (1 + x^2) = 0
    assert not fam[20].ok and "singular" in fam[20].reason
    fam_y = alternative_task_family(w, alpha, D_s, D_q, [0.3, -0.7], support_y=-2.0)
    assert [float(m.support[1][0]) for m in fam_y] == [-2.0, -2.0]
    for m in fam_y:
        if m.ok:
            check_alternative(w, alpha, D_s, D_q, m)


# ------------------------------------------------------------------- property test

coord = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


@st.composite
def data_set(draw, max_n=3):
    n = draw(st.integers(1, max_n))
    x = draw(st.lists(coord, min_size=n, max_size=n))
    y = draw(st.lists(coord, min_size=n, max_size=n))
    return torch.tensor(x, dtype=DT), torch.tensor(y, dtype=DT)


def _near_kink(w, alpha, D_s, D_q, M_s, task):
    """Is a pre-activation within rounding of the ReLU kink but not exactly on it?

    The closed form and autograd round the adapted parameters differently (by an ulp
    or so), so such a sample may be active in one and inactive in the other. Exact
    zeros are kept: both paths treat them as inactive.
    """
    theta = w - alpha * neuron_grad(w, *D_s)
    zs = torch.cat(
        [
            w[0] * D_s[0] + w[1],
            theta[0] * D_q[0] + theta[1],
            w[0] * M_s[0] + w[1],
            task.theta[0] * task.query[0] + task.theta[1],
        ]
    ).abs()
    return bool(((zs > 0) & (zs < 1e-9)).any())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(-2.0, 2.0),
    b=st.floats(-2.0, 2.0),
    alpha=st.floats(0.01, 1.0),
    D_s=data_set(),
    D_q=data_set(),
    M_s=data_set(),
)
def test_property_accepted_alternatives_reproduce_the_gradient(a, b, alpha, D_s, D_q, M_s):
    w = t(a, b)
    same = sorted(zip(D_s[0].tolist(), D_s[1].tolist())) == sorted(zip(M_s[0].tolist(), M_s[1].tolist()))
    if same:
        with pytest.raises(ValueError, match="m_support"):
            construct_alternative_task(w, alpha, D_s, D_q, M_s)
        return
    task = construct_alternative_task(w, alpha, D_s, D_q, M_s)
    if not task.ok:
        assert task.query is None and task.reason
        return
    # Exclude inputs where the identity, exact in real arithmetic, is not a 1e-10 claim
    # in floating point: an ill-conditioned reconstruction (A nearly singular, or
    # |x_q| = |g'_a / g'_b| huge, which makes y_q a difference of large numbers -- e.g.
    # g = [-1, 1e-12] gives x_q = -1e12 and the residual rounds to 0), or a sample
    # within rounding of the ReLU kink.
    assume(abs(invertibility_condition(w, alpha, M_s)[1]) > 1e-3)
    assume(float(task.query[0].abs().max()) < 1e3)
    assume(not _near_kink(w, alpha, D_s, D_q, M_s, task))
    event("checked")
    check_alternative(w, alpha, D_s, D_q, task)


# ------------------------------------------------------------------- input validation

W, S, Q = t(0.5, 0.2), (t(1.0, 2.0), t(1.0, -1.0)), (t(0.5), t(2.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=0.0), "alpha"),
        (dict(alpha=-0.1), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(w=t(1.0, 2.0, 3.0)), "w"),
        (dict(w=torch.tensor([0.5, 0.2])), "w"),  # float32
        (dict(support=(t(1.0, 2.0), t(1.0))), "support"),
        (dict(support=(t(), t())), "support"),
        (dict(query=(t(1.0), torch.tensor([1.0]))), "query"),  # float32 y
        (dict(query=(t(), t())), "query"),
        (dict(m_support=(t(1.0), t(1.0, 2.0))), "m_support"),
        (dict(m_support=(t(), t())), "m_support"),
        (dict(m_support=(t(2.0, 1.0), t(-1.0, 1.0))), "m_support"),  # D_s, reordered
    ],
)
def test_construct_rejects_bad_inputs(kwargs, match):
    args = dict(w=W, alpha=0.1, support=S, query=Q, m_support=(t(0.0), t(0.0)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        construct_alternative_task(**args)


def test_other_functions_reject_bad_inputs():
    with pytest.raises(ValueError, match="w"):
        neuron_grad(t(1.0), *S)
    with pytest.raises(ValueError, match="alpha"):
        maml_gradient_closed_form(W, 0.0, S, Q)
    with pytest.raises(ValueError, match="alpha"):
        maml_gradient_autograd(W, -1.0, S, Q)
    with pytest.raises(ValueError, match="query"):
        maml_gradient_autograd(W, 0.1, S, (t(1.0, 2.0), t(1.0)))
    with pytest.raises(ValueError, match="m_support"):
        invertibility_condition(W, 0.1, (t(), t()))
    with pytest.raises(ValueError, match="g"):
        nonzero_condition(t(1.0), W, 0.1, Q)
    with pytest.raises(ValueError, match="alpha"):
        alternative_task_family(W, 0.0, S, Q, [0.0])

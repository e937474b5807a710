"""A single ReLU neuron on which two different tasks share the same MAML gradient.

This module works through the example of the paper's appendix, which backs
Proposition 3.1 (section III-C): for some networks the second-order MAML gradient a
task-learner shares does not pin down its support and query sets, because another
pair of sets ``(M_s, M_q)`` can produce exactly the same gradient.

The network has two parameters ``w = (a, b)``; on a scalar input ``x`` it outputs
``ReLU(a * x + b)`` and is trained with the mean squared error over a set. A data set
is a pair ``(x, y)`` of float64 tensors of shape ``(n,)``, ``n >= 1``. With one inner
SGD step at rate ``alpha``::

    theta = w - alpha * grad L(w, D_s)
    g     = (I - alpha * H_s(w)) @ grad L(theta, D_q)

where ``H_s`` is the Hessian of the support loss at ``w``. The recipe of the
proposition: pick another support set ``M_s``; if ``A = I - alpha * H(w; M_s)`` is
invertible, the query set must produce ``g' = A^{-1} g`` at the adapted parameters
``theta'`` of ``M_s``; when every entry of ``g'`` is non-zero a one-sample query set
can be read off from ``g'`` (the data-reconstruction argument), provided that sample
lands on the active side of the ReLU.

Two places where this code deliberately departs from the paper:

1. Sign of the second-order term. The paper writes the Jacobian of the adapted
   parameters as ``I + H`` (eq. 8 and the appendix). With a descent step
   ``theta = w - alpha * grad`` it is ``I - alpha * H``; that is what is used here.
2. The Hessian of the neuron's loss. The paper's eq. 13 depends on the label ``y``
   and is not symmetric. The true Hessian of ``(ReLU(a x + b) - y)^2`` on an active
   sample is ``2 * [[x^2, x], [x, 1]]`` -- it does not involve ``y`` at all -- and an
   inactive sample contributes nothing. Over a set it is averaged (inactive samples
   still count in the ``1/n``). Eq. 13 coincides with it only when ``y = 0``.

Convention at the kink: a sample is active iff ``a x + b > 0`` (``ReLU'(0) = 0``, as
PyTorch's autograd does). The paper's eq. 12 takes ``z >= 0``; the two differ only on
the measure-zero set ``z = 0``.

The closed forms below are checked against autograd through
:func:`mamlpriv.maml.task_gradient` (:func:`maml_gradient_autograd`) in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .maml import MAMLConfig, task_gradient
from .models import Params, forward

DT = torch.float64
DataSet = tuple[torch.Tensor, torch.Tensor]

__all__ = [
    "AlternativeTask",
    "FAILURES",
    "SingleNeuron",
    "alternative_task_family",
    "construct_alternative_task",
    "invertibility_condition",
    "maml_gradient_autograd",
    "maml_gradient_closed_form",
    "neuron_grad",
    "neuron_hessian",
    "neuron_loss",
    "neuron_params",
    "nonzero_condition",
]


# --------------------------------------------------------------------------- checks


def _check_w(w: torch.Tensor, name: str = "w") -> None:
    if not isinstance(w, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (2,), got {type(w).__name__}")
    if w.shape != (2,):
        raise ValueError(f"{name} must have shape (2,) = [a, b], got {tuple(w.shape)}")
    if w.dtype != DT:
        raise ValueError(f"{name} must be float64, got {w.dtype}")


def _check_set(data: DataSet, name: str) -> None:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{name} must be a pair (x, y) of tensors")
    x, y = data
    for part, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name}: {part} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != DT:
            raise ValueError(f"{name}: {part} must be float64, got {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"{name}: {part} must be 1-D of shape (n,), got shape {tuple(t.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"{name}: x and y must have the same length, got {x.numel()} and {y.numel()}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty")


def _check_alpha(alpha: float) -> None:
    a = float(alpha)
    if not (a > 0.0) or a == float("inf"):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")


# --------------------------------------------------------------------------- the network


class SingleNeuron(nn.Module):
    """``x (n,) -> ReLU(a * x + b) (n,)``: ``nn.Linear(1, 1)`` followed by ReLU.

    Parameters are ``linear.weight`` (1, 1) holding ``a`` and ``linear.bias`` (1,)
    holding ``b``; call it through :func:`mamlpriv.models.forward` with the dict of
    :func:`neuron_params`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x.unsqueeze(-1)).squeeze(-1))


def neuron_params(a: float | torch.Tensor, b: float | torch.Tensor) -> Params:
    """Parameter dict of :class:`SingleNeuron` (float64) for ``functional_call``.

    ``a`` and ``b`` may be Python numbers or 0-d tensors; tensors stay differentiable.
    """
    a = a.to(DT) if isinstance(a, torch.Tensor) else torch.tensor(float(a), dtype=DT)
    b = b.to(DT) if isinstance(b, torch.Tensor) else torch.tensor(float(b), dtype=DT)
    return {"linear.weight": a.reshape(1, 1), "linear.bias": b.reshape(1)}


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, target)


# --------------------------------------------------------------------------- closed forms


def _active(w: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activation ``z = a x + b`` (n,) and the active mask ``z > 0`` as float64 (n,)."""
    z = w[0] * x + w[1]
    return z, (z > 0).to(DT)


def neuron_loss(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the neuron ``w = [a, b]`` (2,) on ``(x, y)`` (n,). Returns ``()``."""
    _check_w(w)
    _check_set((x, y), "data")
    z, _ = _active(w, x)
    return ((torch.relu(z) - y) ** 2).mean()


def neuron_grad(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient ``[dL/da, dL/db]`` (2,) of :func:`neuron_loss` (paper eq. 11).

    ``(2/n) * sum over active samples of (z - y) * [x, 1]``; inactive samples give 0.
    """
    _check_w(w)
    _check_set((x, y), "data")
    z, m = _active(w, x)
    r = (z - y) * m
    n = x.numel()
    return (2.0 / n) * torch.stack([(r * x).sum(), r.sum()])


def neuron_hessian(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Hessian (2, 2) of :func:`neuron_loss` in ``[a, b]`` -- the corrected paper eq. 13.

    ``(2/n) * sum over active samples of [[x^2, x], [x, 1]]``. It does not depend on
    ``y`` (``y`` is accepted only to keep the signature of the other closed forms).
    """
    _check_w(w)
    _check_set((x, y), "data")
    _, m = _active(w, x)
    n = x.numel()
    s_xx, s_x, s_1 = (m * x * x).sum(), (m * x).sum(), m.sum()
    return (2.0 / n) * torch.stack([torch.stack([s_xx, s_x]), torch.stack([s_x, s_1])])


def _adapt(w: torch.Tensor, alpha: float, support: DataSet) -> torch.Tensor:
    return w - alpha * neuron_grad(w, *support)


def _jacobian(w: torch.Tensor, alpha: float, support: DataSet) -> torch.Tensor:
    """``A = I - alpha * H(w; support)`` (2, 2): the Jacobian of the adapted parameters."""
    return torch.eye(2, dtype=DT) - alpha * neuron_hessian(w, *support)


def maml_gradient_closed_form(w: torch.Tensor, alpha: float, support: DataSet, query: DataSet) -> torch.Tensor:
    """Second-order MAML gradient (2,) for one inner step (paper eq. 6/8, sign corrected).

    ``theta = w - alpha * grad L(w, support)`` and
    ``g = (I - alpha * H(w; support)) @ grad L(theta, query)``.
    """
    _check_w(w)
    _check_alpha(alpha)
    _check_set(support, "support")
    _check_set(query, "query")
    theta = _adapt(w, alpha, support)
    return _jacobian(w, alpha, support) @ neuron_grad(theta, *query)


def maml_gradient_autograd(w: torch.Tensor, alpha: float, support: DataSet, query: DataSet) -> torch.Tensor:
    """The same gradient (2,) as :func:`maml_gradient_closed_form`, by autograd.

    Runs :func:`mamlpriv.maml.task_gradient` (second order, one step) on
    :class:`SingleNeuron` with an MSE loss and returns ``[dg/da, dg/db]``. Independent
    of the closed forms; used to check them.
    """
    _check_w(w)
    _check_alpha(alpha)
    _check_set(support, "support")
    _check_set(query, "query")
    f = forward(SingleNeuron())
    params = neuron_params(w[0], w[1])
    cfg = MAMLConfig(inner_lr=float(alpha), inner_steps=1, first_order=False)
    g, _, _ = task_gradient(f, params, support[0], support[1], query[0], query[1], cfg, loss=_mse)
    return torch.stack([g["linear.weight"].reshape(()), g["linear.bias"].reshape(())])


# --------------------------------------------------------------------------- Proposition 3.1


def invertibility_condition(w: torch.Tensor, alpha: float, m_support: DataSet, tol: float = 1e-9) -> tuple[bool, float]:
    """First condition of Proposition 3.1: is ``A = I - alpha * H(w; M_s)`` invertible?

    Returns ``(|det A| > tol, det A)``. (The paper states it for ``I + H``.)
    """
    _check_w(w)
    _check_alpha(alpha)
    _check_set(m_support, "m_support")
    det = float(torch.linalg.det(_jacobian(w, alpha, m_support)))
    return abs(det) > tol, det


def nonzero_condition(
    g: torch.Tensor, w: torch.Tensor, alpha: float, m_support: DataSet, tol: float = 1e-8
) -> tuple[bool, torch.Tensor]:
    """Second condition of Proposition 3.1: ``g' = A^{-1} g`` (2,) has no zero entry.

    ``g'`` is the gradient the alternative query set must produce at the adapted
    parameters of ``M_s``. Returns ``(all |g'_i| > tol * |g'|, g')`` (a relative test, so
    that an entry that is zero up to rounding counts as zero); if ``A`` is singular
    (in the sense of :func:`invertibility_condition`) ``g'`` is all NaN and the
    answer is ``False``.
    """
    _check_w(g, "g")
    _check_w(w)
    _check_alpha(alpha)
    _check_set(m_support, "m_support")
    invertible, _ = invertibility_condition(w, alpha, m_support)
    if not invertible:
        return False, torch.full((2,), float("nan"), dtype=DT)
    g_prime = torch.linalg.solve(_jacobian(w, alpha, m_support), g)
    scale = float(g_prime.norm())
    return bool(scale > 0 and (g_prime.abs() > tol * scale).all()), g_prime


@dataclass(frozen=True)
class AlternativeTask:
    """An alternative task ``(M_s, M_q)`` meant to reproduce a shared gradient.

    ``support``: ``M_s`` as ``(x, y)``. ``query``: the reconstructed one-sample
    ``M_q`` as ``(x, y)``, or ``None`` when ``ok`` is false. ``theta``: the adapted
    parameters ``[a', b']`` (2,) under ``M_s``. ``g_prime``: ``A^{-1} g`` (2,), NaN
    when ``A`` is singular. ``reason``: why the construction failed ("" when ``ok``);
    ``failure``: the same as a short code, one of ``FAILURES`` ("" when ``ok``).
    """

    support: DataSet
    query: DataSet | None
    theta: torch.Tensor
    g_prime: torch.Tensor
    ok: bool
    reason: str = ""
    failure: str = ""


FAILURES = ("singular", "zero-entry", "inactive-query", "same-support")


def _same_set(p: DataSet, q: DataSet) -> bool:
    """Equal as multisets of (x, y) pairs (the loss is a mean, so order is irrelevant)."""
    if p[0].numel() != q[0].numel():
        return False

    def rows(d: DataSet) -> list[tuple[float, float]]:
        return sorted(zip(d[0].tolist(), d[1].tolist()))

    return rows(p) == rows(q)


def _build(g: torch.Tensor, w: torch.Tensor, alpha: float, m_support: DataSet) -> AlternativeTask:
    """Steps of the proof of Proposition 3.1 for a given shared gradient ``g``."""
    theta = _adapt(w, alpha, m_support)

    def failed(g_prime: torch.Tensor, reason: str, code: str) -> AlternativeTask:
        return AlternativeTask(m_support, None, theta, g_prime, False, reason, code)

    invertible, det = invertibility_condition(w, alpha, m_support)
    if not invertible:
        reason = f"A = I - alpha*H(w; M_s) is singular (det = {det:.3g}); g' = A^-1 g does not exist"
        return failed(torch.full((2,), float("nan"), dtype=DT), reason, "singular")
    nonzero, g_prime = nonzero_condition(g, w, alpha, m_support)
    if not nonzero:
        why = (
            " (the shared gradient g is itself zero, e.g. no query sample is active after adaptation)"
            if bool((g == 0).all())
            else ""
        )
        reason = (
            f"g' = A^-1 g = [{g_prime[0]:.3g}, {g_prime[1]:.3g}] has a zero entry{why}; "
            "the one-sample query set cannot be read off"
        )
        return failed(g_prime, reason, "zero-entry")
    # One active sample at theta' = (a', b') has gradient 2 r [x_q, 1], r = a' x_q + b' - y_q.
    x_q = g_prime[0] / g_prime[1]
    z_q = theta[0] * x_q + theta[1]
    if not bool(z_q > 0):
        reason = (
            f"the reconstructed query sample x_q = {x_q:.3g} is inactive at the adapted "
            f"parameters (a' x_q + b' = {z_q:.3g} <= 0), so it would give a zero gradient"
        )
        return failed(g_prime, reason, "inactive-query")
    y_q = z_q - g_prime[1] / 2.0
    return AlternativeTask(m_support, (x_q.reshape(1), y_q.reshape(1)), theta, g_prime, True, "")


def construct_alternative_task(
    w: torch.Tensor, alpha: float, support: DataSet, query: DataSet, m_support: DataSet
) -> AlternativeTask:
    """Build ``(M_s, M_q)`` that shares the MAML gradient of the task ``(D_s, D_q)``.

    ``w`` (2,) is ``omega = [a, b]``; ``support``/``query``/``m_support`` are ``(x, y)``
    pairs of float64 tensors (n,). ``m_support`` must differ from ``support`` as a set
    of samples (else ``ValueError``). The shared gradient ``g`` is computed in closed
    form, the two conditions of Proposition 3.1 are checked, and a one-sample ``M_q``
    is reconstructed from ``g' = A^{-1} g`` at the adapted parameters ``theta'`` of
    ``M_s``: ``x_q = g'_a / g'_b`` and ``y_q = a' x_q + b' - g'_b / 2``. Failures
    (singular ``A``, a zero entry of ``g'``, an inactive query sample) are returned
    with ``ok=False`` and a ``reason``; they do not raise.
    """
    _check_w(w)
    _check_alpha(alpha)
    _check_set(support, "support")
    _check_set(query, "query")
    _check_set(m_support, "m_support")
    if _same_set(support, m_support):
        raise ValueError("m_support must differ from support (D_s); got the same samples")
    g = maml_gradient_closed_form(w, alpha, support, query)
    return _build(g, w, alpha, m_support)


def alternative_task_family(
    w: torch.Tensor,
    alpha: float,
    support: DataSet,
    query: DataSet,
    support_xs: Iterable[float] | torch.Tensor,
    support_y: float | None = None,
) -> list[AlternativeTask]:
    """One :func:`construct_alternative_task` per value of ``support_xs``.

    Candidate ``k`` is the one-sample support set ``([support_xs[k]], [y])`` with
    ``y = support_y``, or the first label of ``support`` when ``support_y`` is None.
    Every ``ok`` member produces the same shared gradient as ``(support, query)``,
    which is what a plot of the family shows. A candidate equal to ``support`` is
    returned with ``ok=False`` instead of raising, so the list matches ``support_xs``.
    """
    _check_w(w)
    _check_alpha(alpha)
    _check_set(support, "support")
    _check_set(query, "query")
    xs = support_xs.tolist() if isinstance(support_xs, torch.Tensor) else list(support_xs)
    y = float(support[1][0]) if support_y is None else float(support_y)
    g = maml_gradient_closed_form(w, alpha, support, query)
    out = []
    for x in xs:
        m_support = (torch.tensor([float(x)], dtype=DT), torch.tensor([y], dtype=DT))
        task = _build(g, w, alpha, m_support)
        if _same_set(support, m_support):
            task = AlternativeTask(
                m_support,
                None,
                task.theta,
                task.g_prime,
                False,
                "candidate equals the task's own support set D_s",
                "same-support",
            )
        out.append(task)
    return out

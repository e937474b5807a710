"""MAML written functionally: adaptation, the shared task gradient, noise hooks.

Notation (paper section III-B). The meta-learner holds ``omega`` (a parameter dict).
A task-learner adapts it on its support set with ``k`` SGD steps at rate ``alpha``::

    theta_0 = omega,   theta_{j+1} = theta_j - alpha * (grad L(theta_j, D_s) + n_j)

and shares the task gradient (paper eq. 2 and 4)::

    g = d/d(omega) L(theta_k(omega), D_q) + n_v

Second-order MAML differentiates through the adaptation, so for one step
``g = (I - alpha * H_s(omega)) @ grad_theta L(theta_1, D_q)`` (the paper's eq. 6
writes ``I + H``; with a descent step the sign is minus). First-order MAML treats
``d theta / d omega`` as the identity: ``g = grad_theta L(theta_k, D_q)`` (eq. 7).

Noise hooks (paper section IV-E): Gaussian noise with a mean and a standard
deviation at four places -- the support images before adaptation, each adaptation
gradient (``n_j`` above), the query images before validation, and the shared
gradient (``n_v``). The paper calls sigma a variance; here it is the standard
deviation. Noise is drawn from a ``torch.Generator`` by :func:`draw_noise` and passed
in as plain tensors, so every function below is pure and vmappable over tasks.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import grad, grad_and_value, vmap

from . import checks, devices
from .data import TaskBatch
from .models import Forward, Params


@dataclass(frozen=True)
class GaussianNoise:
    """Additive Gaussian noise ``N(mean, std^2)``; ``std = mean = 0`` is no noise."""

    mean: float = 0.0
    std: float = 0.0

    def __post_init__(self) -> None:
        checks.real("mean", self.mean)
        checks.real("std", self.std, lo=0.0)
        for name in ("mean", "std"):
            if type(getattr(self, name)) not in (int, float):
                object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def active(self) -> bool:
        return self.std > 0.0 or self.mean != 0.0


@dataclass(frozen=True)
class TaskNoise:
    """Noise at the four places of paper section IV-E. ``clip`` (optional, > 0) scales the
    shared gradient to norm at most ``clip`` before the validation-gradient noise is
    added: with ``validation_grad.std = sigma * clip`` this is the Gaussian mechanism of
    :mod:`mamlpriv.defenses`."""

    support_data: GaussianNoise = field(default_factory=GaussianNoise)
    adaptation_grad: GaussianNoise = field(default_factory=GaussianNoise)
    query_data: GaussianNoise = field(default_factory=GaussianNoise)
    validation_grad: GaussianNoise = field(default_factory=GaussianNoise)
    clip: float | None = None

    def __post_init__(self) -> None:
        for name in ("support_data", "adaptation_grad", "query_data", "validation_grad"):
            value = getattr(self, name)
            if not isinstance(value, GaussianNoise):
                raise TypeError(f"{name} must be a GaussianNoise, got {value!r} ({type(value).__name__})")
        if self.clip is not None:
            checks.real("clip", self.clip, lo=0.0, lo_open=True)
            if type(self.clip) not in (int, float):
                object.__setattr__(self, "clip", float(self.clip))

    @property
    def active(self) -> bool:
        return self.clip is not None or any(
            n.active for n in (self.support_data, self.adaptation_grad, self.query_data, self.validation_grad)
        )


@dataclass(frozen=True)
class MAMLConfig:
    """Inner loop of MAML: ``inner_steps`` SGD steps at ``inner_lr``; ``first_order``
    drops the second-order term (FOMAML)."""

    inner_lr: float = 0.4
    inner_steps: int = 1
    first_order: bool = False

    def __post_init__(self) -> None:
        checks.real("inner_lr", self.inner_lr, lo=0.0, lo_open=True)
        if type(self.inner_lr) not in (int, float):
            object.__setattr__(self, "inner_lr", float(self.inner_lr))
        object.__setattr__(self, "inner_steps", checks.integer("inner_steps", self.inner_steps, lo=1))
        object.__setattr__(self, "first_order", checks.flag("first_order", self.first_order))


# A noise draw: optional entries "support" (like x_s), "query" (like x_q),
# "adaptation" ({name: (steps, *shape)}) and "validation" ({name: shape}).
NoiseDraw = dict
OptionalDraw = NoiseDraw | None


def _gauss(n: GaussianNoise, shape: torch.Size, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Drawn on the CPU with ``gen``, then moved to ``like``'s device (:mod:`mamlpriv.devices`)."""
    return devices.draw(lambda: torch.randn(shape, generator=gen, dtype=like.dtype), like.device) * n.std + n.mean


def draw_noise(
    noise: TaskNoise,
    params: Params,
    support_shape: torch.Size,
    query_shape: torch.Size,
    inner_steps: int,
    generator: torch.Generator,
    tasks: int | None = None,
) -> NoiseDraw:
    """Draw the noise of ``noise`` for one task (or ``tasks`` tasks, stacked on a
    leading axis), on the device and in the dtype of ``params``. Inactive hooks are left
    out, so they are exactly the identity."""
    lead = () if tasks is None else (tasks,)
    like = next(iter(params.values()))
    out: NoiseDraw = {}
    if noise.support_data.active:
        out["support"] = _gauss(noise.support_data, torch.Size(lead + tuple(support_shape)), generator, like)
    if noise.adaptation_grad.active:
        out["adaptation"] = {
            k: _gauss(noise.adaptation_grad, torch.Size(lead + (inner_steps,) + tuple(v.shape)), generator, like)
            for k, v in params.items()
        }
    if noise.query_data.active:
        out["query"] = _gauss(noise.query_data, torch.Size(lead + tuple(query_shape)), generator, like)
    if noise.clip is not None:
        out["clip"] = torch.full(lead, noise.clip, dtype=like.dtype, device=like.device)
    if noise.validation_grad.active:
        out["validation"] = {
            k: _gauss(noise.validation_grad, torch.Size(lead + tuple(v.shape)), generator, like)
            for k, v in params.items()
        }
    return out


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _accuracy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Classification accuracy for logits ``(N, C)``; NaN for other outputs (regression)."""
    if out.dim() == 2 and y.dim() == 1 and not y.is_floating_point():
        return (out.argmax(-1) == y).to(out.dtype).mean()
    return torch.full((), float("nan"), dtype=out.dtype, device=out.device)


def adapt(
    f: Forward,
    params: Params,
    x_s: torch.Tensor,
    y_s: torch.Tensor,
    cfg: MAMLConfig,
    adaptation_noise: Params | None = None,
    steps: int | None = None,
    loss: Loss = F.cross_entropy,
) -> Params:
    """Inner loop (paper eq. 1 / 5): ``steps`` (default ``cfg.inner_steps``) SGD steps on
    the support loss. ``adaptation_noise[name][j]`` is added to the j-th gradient.
    Differentiable in ``params`` (second order) when called under ``torch.func.grad``.
    ``loss(outputs, targets)`` defaults to cross-entropy."""
    steps = cfg.inner_steps if steps is None else checks.integer("steps", steps, lo=0)

    def support_loss(theta: Params) -> torch.Tensor:
        return loss(f(theta, x_s), y_s)

    theta = params
    for j in range(steps):
        g = grad(support_loss)(theta)
        if adaptation_noise is not None:
            g = {k: g[k] + adaptation_noise[k][j] for k in g}
        theta = {k: theta[k] - cfg.inner_lr * g[k] for k in theta}
    return theta


def task_gradient(
    f: Forward,
    params: Params,
    x_s: torch.Tensor,
    y_s: torch.Tensor,
    x_q: torch.Tensor,
    y_q: torch.Tensor,
    cfg: MAMLConfig,
    noise: NoiseDraw | None = None,
    loss: Loss = F.cross_entropy,
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """The gradient a task-learner shares (paper eq. 2/4), with the noise of ``noise``.

    Returns ``(g, query_loss, query_accuracy)``; ``g`` has the shapes of ``params``.
    ``loss(outputs, targets)`` defaults to cross-entropy; the accuracy is NaN when the
    outputs are not class logits.
    """
    noise = noise or {}
    if "support" in noise:
        x_s = x_s + noise["support"]
    if "query" in noise:
        x_q = x_q + noise["query"]
    adaptation_noise = noise.get("adaptation")

    def query_loss(theta: Params) -> tuple[torch.Tensor, torch.Tensor]:
        out = f(theta, x_q)
        return loss(out, y_q), _accuracy(out, y_q)

    if cfg.first_order:
        # g is the gradient at theta as an independent input; theta keeps its
        # dependence on the support data, so attacks can differentiate through it.
        theta = adapt(f, params, x_s, y_s, cfg, adaptation_noise, loss=loss)
        g, (value, acc) = grad_and_value(query_loss, has_aux=True)(theta)
    else:

        def outer(omega: Params) -> tuple[torch.Tensor, torch.Tensor]:
            return query_loss(adapt(f, omega, x_s, y_s, cfg, adaptation_noise, loss=loss))

        g, (value, acc) = grad_and_value(outer, has_aux=True)(params)
    return _released(g, noise), value, acc


def _released(g: Params, noise: NoiseDraw) -> Params:
    """What leaves the task-learner: ``g`` clipped to norm ``noise["clip"]`` (the norm of
    all parameters together), then plus the validation-gradient noise."""
    if "clip" in noise:
        norm = torch.sqrt(functools.reduce(operator.add, [(v**2).sum() for v in g.values()]))
        scale = torch.clamp(noise["clip"] / (norm + 1e-12), max=1.0)
        g = {k: v * scale for k, v in g.items()}
    if "validation" in noise:
        g = {k: g[k] + noise["validation"][k] for k in g}
    return g


def _eager_graph(
    f: Forward, params: Params, x_s: torch.Tensor, y_s: torch.Tensor, x_q: torch.Tensor, y_q: torch.Tensor,
    cfg: MAMLConfig, noise: NoiseDraw, loss: Loss,
) -> tuple[Params, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The autograd graph of one task's query loss: ``(leaves g is taken with respect to,
    query loss, query outputs)``. Second order: the leaves are ``params`` (which must
    require grad) and the graph runs through the adaptation; first order: the leaves are
    the adapted parameters."""
    x_s = x_s + noise["support"] if "support" in noise else x_s
    x_q = x_q + noise["query"] if "query" in noise else x_q
    omega = theta = params
    for j in range(cfg.inner_steps):
        gs = torch.autograd.grad(loss(f(theta, x_s), y_s), list(theta.values()), create_graph=not cfg.first_order)
        if "adaptation" in noise:
            gs = tuple(gi + noise["adaptation"][k][j] for gi, k in zip(gs, theta))
        theta = {k: theta[k] - cfg.inner_lr * gi for k, gi in zip(theta, gs)}
    if cfg.first_order:  # d theta / d omega taken as the identity (eq. 7)
        theta = omega = {k: v.detach().requires_grad_() for k, v in theta.items()}
    out = f(theta, x_q)
    return omega, loss(out, y_q), out


def task_gradient_eager(
    f: Forward, params: Params, x_s: torch.Tensor, y_s: torch.Tensor, x_q: torch.Tensor, y_q: torch.Tensor,
    cfg: MAMLConfig, noise: NoiseDraw | None = None, loss: Loss = F.cross_entropy,
) -> tuple[Params, torch.Tensor, torch.Tensor]:  # fmt: skip
    """:func:`task_gradient` computed with ``torch.autograd.grad`` (``create_graph`` for
    the second-order term) instead of ``torch.func``: the same numbers up to float
    rounding, faster for one task of many images, but the result is a value, not a
    function of the data (attacks, which differentiate through the gradient, use
    :func:`task_gradient`)."""
    noise = noise or {}
    with torch.enable_grad():
        omega = {k: v.detach().requires_grad_() for k, v in params.items()}
        leaves, value, out = _eager_graph(f, omega, x_s, y_s, x_q, y_q, cfg, noise, loss)
        g = dict(zip(leaves, torch.autograd.grad(value, list(leaves.values()))))
    return _released(g, noise), value.detach(), _accuracy(out.detach(), y_q)


# task_gradients loops (task_gradient_eager) over at most LOOP_TASKS tasks of at least
# LOOP_IMAGES images each (support + query) and vmaps the others. Milliseconds per second-order
# meta-gradient on 2 threads (vmap / loop): GroupNorm conv net, 4 tasks of 5-way 1-shot 47 / 49,
# 5-way 5-shot (50 images) 153 / 112, 16 such tasks 1206 / 601; attack net (no norm), 4 tasks of
# 5-way 1-shot 14 / 23, 5-way 5-shot 32 / 38, 16 tasks of 5-way 1-shot 35 / 104.
LOOP_TASKS, LOOP_IMAGES = 8, 50


def _vectorize(batch: TaskBatch) -> bool:
    return len(batch) > LOOP_TASKS or batch.support_x.shape[1] + batch.query_x.shape[1] < LOOP_IMAGES


def task_gradients(
    f: Forward, params: Params, batch: TaskBatch, cfg: MAMLConfig, noise: OptionalDraw = None,
    vectorize: bool | None = None,
) -> tuple[Params, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The task gradient of every task of ``batch``, stacked on a leading axis.

    ``noise`` holds per-task draws stacked on a leading axis (``draw_noise(..., tasks=T)``).
    Returns ``(g with shapes (T, *param.shape), query losses (T,), accuracies (T,))``.
    ``vectorize=True`` runs all tasks in one ``vmap`` of :func:`task_gradient`; ``False``
    loops over them with :func:`task_gradient_eager`; ``None`` picks by shape: the loop for
    at most :data:`LOOP_TASKS` tasks of at least :data:`LOOP_IMAGES` images, else vmap.
    """
    noise = noise or {}
    if vectorize is None:
        vectorize = _vectorize(batch)
    if vectorize:

        def one(xs, ys, xq, yq, nz):
            return task_gradient(f, params, xs, ys, xq, yq, cfg, nz)

        return vmap(one)(batch.support_x, batch.support_y, batch.query_x, batch.query_y, noise)
    out = [task_gradient_eager(f, params, *batch.task(i), cfg, _index_noise(noise, i)) for i in range(len(batch))]
    g = {k: torch.stack([o[0][k] for o in out]) for k in params}
    return g, torch.stack([o[1] for o in out]), torch.stack([o[2] for o in out])


def meta_gradient(
    f: Forward, params: Params, batch: TaskBatch, cfg: MAMLConfig, noise: OptionalDraw = None,
    vectorize: bool | None = None,
) -> tuple[Params, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Mean task gradient of a batch (the meta-learner's update direction, paper eq. 3).

    Returns ``(mean g, per-task query losses (T,), per-task accuracies (T,))``.
    """
    noise = noise or {}
    if vectorize is None:
        vectorize = _vectorize(batch)
    if vectorize or "clip" in noise or "validation" in noise:  # per-task gradients needed
        g, loss, acc = task_gradients(f, params, batch, cfg, noise, vectorize)
        return {k: v.mean(0) for k, v in g.items()}, loss, acc
    # the loop without per-task gradients: one backward pass through the mean query loss
    with torch.enable_grad():
        omega = {k: v.detach().requires_grad_() for k, v in params.items()}  # shared by the tasks
        graphs = [_eager_graph(f, omega, *batch.task(i), cfg, _index_noise(noise, i), F.cross_entropy)
                  for i in range(len(batch))]  # fmt: skip
        values = torch.stack([v for _, v, _ in graphs])
        if cfg.first_order:  # each task has its own leaves (its adapted parameters)
            leaves = [leaf for lv, _, _ in graphs for leaf in lv.values()]
            n = len(params)
            grads = torch.autograd.grad(values.mean(), leaves)
            per_task = [grads[i * n : (i + 1) * n] for i in range(len(batch))]
            mean = {k: functools.reduce(operator.add, [t[j] for t in per_task]) for j, k in enumerate(params)}
        else:  # autograd sums the tasks' contributions to omega's gradient
            mean = dict(zip(omega, torch.autograd.grad(values.mean(), list(omega.values()))))
    acc = torch.stack([_accuracy(out.detach(), batch.query_y[i]) for i, (_, _, out) in enumerate(graphs)])
    return mean, values.detach(), acc


def _index_noise(noise: NoiseDraw, i: int) -> NoiseDraw:
    out: NoiseDraw = {}
    for key, val in noise.items():
        out[key] = {k: v[i] for k, v in val.items()} if isinstance(val, dict) else val[i]
    return out


@torch.no_grad()
def _detached(params: Params) -> Params:
    return {k: v.detach() for k, v in params.items()}


def adapted_accuracy(
    f: Forward, params: Params, batch: TaskBatch, cfg: MAMLConfig, steps: int | None = None
) -> torch.Tensor:
    """Query accuracy of each task of ``batch`` after adapting on its support set
    (``steps`` inner steps, default ``cfg.inner_steps``). Returns ``(T,)``."""
    if steps is not None:
        steps = checks.integer("steps", steps, lo=0)
    p = _detached(params)

    def one(xs, ys, xq, yq):
        theta = adapt(f, p, xs, ys, cfg, steps=steps)
        return (f(theta, xq).argmax(-1) == yq).to(xq.dtype).mean()

    return vmap(one)(batch.support_x, batch.support_y, batch.query_x, batch.query_y).detach()

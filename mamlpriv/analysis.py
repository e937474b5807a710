"""What the shared task gradient contains (paper sections III-B and III-C).

Decomposition. With ``k`` inner steps the second-order task gradient factorises as
(paper eq. 4-6, with the sign of a descent step)::

    g = (I - a H_0)(I - a H_1) ... (I - a H_{k-1}) v,     v = grad_theta L(theta_k, D_q)

where ``H_j`` is the Hessian of the support loss at ``theta_j``. ``v`` is the *query
part* (it is exactly the first-order gradient g_FO) and ``g - v`` the *support
correction*, made only of Hessian-vector products. :func:`decompose` builds both with
Hessian-vector products (forward-over-reverse ``jvp`` of ``grad``), never a dense Hessian.

Swaps. :func:`swap_cosines` measures how much g changes when the support set (or the
query set) is replaced by other images of the same classes, by images of other classes,
or by noise: a cosine near 1 means the gradient barely depends on that set, so an
attacker learns little about it from g (the empirical side of Proposition 3.1).

The single-neuron counterexample of the appendix lives in
:mod:`mamlpriv.counterexample` and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import grad, jvp, vmap

from . import devices
from .data import ImageDataset, Task, TaskBatch, stack_tasks
from .maml import Loss, MAMLConfig, task_gradients
from .metrics import flat_rows
from .models import Forward, Params

SWAPS = ("same-class", "other-class", "noise")
SETS = ("support", "query")


def hvp(
    f: Forward, params: Params, x: torch.Tensor, y: torch.Tensor, v: Params, loss: Loss = F.cross_entropy
) -> Params:
    """Hessian-vector product ``H(params) v`` of ``loss(f(params, x), y)``."""

    def g(p: Params) -> Params:
        return grad(lambda q: loss(f(q, x), y))(p)

    return jvp(g, (params,), (v,))[1]


@dataclass(frozen=True)
class Decomposition:
    """``g = query_part + support_part`` for one task (or stacked over tasks)."""

    g: Params
    query_part: Params
    support_part: Params


def decompose(
    f: Forward,
    params: Params,
    x_s: Tensor,
    y_s: Tensor,
    x_q: Tensor,
    y_q: Tensor,
    cfg: MAMLConfig,
    loss: Loss = F.cross_entropy,
) -> Decomposition:
    """Query part ``v = grad L(theta_k, D_q)`` and support correction
    ``prod_j (I - a H_j) v - v`` of the second-order task gradient (product form above).
    ``cfg.first_order`` is ignored: this is the anatomy of the second-order gradient."""
    a = cfg.inner_lr
    thetas = [params]
    for _ in range(cfg.inner_steps):
        th = thetas[-1]
        gs = grad(lambda p: loss(f(p, x_s), y_s))(th)
        thetas.append({k: th[k] - a * gs[k] for k in th})
    v = grad(lambda p: loss(f(p, x_q), y_q))(thetas[-1])
    u = v
    for j in reversed(range(cfg.inner_steps)):  # apply (I - a H_{k-1}) first, (I - a H_0) last
        hu = hvp(f, thetas[j], x_s, y_s, u, loss)
        u = {k: u[k] - a * hu[k] for k in u}
    return Decomposition(g=u, query_part=v, support_part={k: u[k] - v[k] for k in u})


def _row_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=1, eps=1e-30)


def decomposition_stats(f: Forward, params: Params, batch: TaskBatch, cfg: MAMLConfig) -> dict[str, torch.Tensor]:
    """Per task of ``batch`` (each ``(T,)``): ``support_share`` = |g - g_FO| / |g|,
    ``cos_fo`` = cos(g, g_FO), and the norms ``g_norm``, ``query_norm``, ``support_norm``."""
    p = {k: v.detach() for k, v in params.items()}

    def one(xs, ys, xq, yq):
        d = decompose(f, p, xs, ys, xq, yq, cfg)
        return d.g, d.query_part, d.support_part

    g, q, s = (flat_rows(t) for t in vmap(one)(batch.support_x, batch.support_y, batch.query_x, batch.query_y))
    return {
        "support_share": (s.norm(dim=1) / g.norm(dim=1)).detach(),
        "cos_fo": _row_cosine(g, q).detach(),
        "g_norm": g.norm(dim=1).detach(),
        "query_norm": q.norm(dim=1).detach(),
        "support_norm": s.norm(dim=1).detach(),
    }


def replacement_images(
    dataset: ImageDataset, task: Task, which: str, kind: str, generator: torch.Generator
) -> torch.Tensor:
    """Images to put in place of the task's ``which`` set (``"support"`` or ``"query"``),
    with the same shape and the same label order:

    - ``"same-class"``: other images of the same classes, none of them in the task;
    - ``"other-class"``: images of classes that are not in the task (one class drawn per
      task label, distinct where possible);
    - ``"noise"``: uniform noise in [0, 1].
    """
    if which not in SETS:
        raise ValueError(f"which must be one of {SETS}, got {which!r}")
    if kind not in SWAPS:
        raise ValueError(f"kind must be one of {SWAPS}, got {kind!r}")
    x = task.support_x if which == "support" else task.query_x
    if kind == "noise":
        return torch.rand(x.shape, generator=generator, dtype=x.dtype)
    shots, per_class = task.shots, dataset.class_indices()
    if kind == "same-class":
        used = set(task.support_idx.tolist()) | set(task.query_idx.tolist())
        sources = list(task.classes)
    else:
        others = [c for c in dataset.classes if c not in task.classes]
        if not others:
            raise ValueError(f"kind='other-class' needs ways < {len(dataset.classes)} classes, got ways={task.ways}")
        order = torch.randperm(len(others), generator=generator).tolist()
        sources = [others[order[j % len(others)]] for j in range(task.ways)]
        used = set()
    picks = []
    for c in sources:
        idx = per_class[c]
        perm = idx[torch.randperm(idx.numel(), generator=generator)].tolist()
        picks += [i for i in perm if i not in used][:shots]
    return dataset.images[torch.tensor(picks)].to(x.dtype)


def swap_cosines(
    f: Forward, params: Params, dataset: ImageDataset, tasks: list[Task], cfg: MAMLConfig, seed: int = 0
) -> dict[tuple[str, str], torch.Tensor]:
    """``cos(g(D_s, D_q), g(D_s', D_q'))`` per task when one set is replaced.

    Keys are ``(set, kind)`` with set in ``SETS`` and kind in ``SWAPS``; values ``(T,)``.
    ``cfg.first_order`` selects the gradient that is compared (second- or first-order).
    """
    gen = torch.Generator().manual_seed(seed)
    p = {k: v.detach() for k, v in params.items()}
    batch = stack_tasks(tasks).to(devices.of(p))  # tasks are drawn on the CPU
    base = flat_rows(task_gradients(f, p, batch, cfg)[0])
    out = {}
    for which in SETS:
        for kind in SWAPS:
            new = torch.stack([replacement_images(dataset, t, which, kind, gen) for t in tasks]).to(
                batch.support_x.device
            )
            swapped = TaskBatch(
                new if which == "support" else batch.support_x,
                batch.support_y,
                new if which == "query" else batch.query_x,
                batch.query_y,
            )
            g = flat_rows(task_gradients(f, p, swapped, cfg)[0])
            out[(which, kind)] = _row_cosine(base, g).detach()
    return out


# The appendix's single-neuron counterexample (Proposition 3.1), re-exported.
from .counterexample import (  # noqa: E402, F401 (re-exported)
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

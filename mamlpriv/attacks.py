"""Membership-inference attacks on the query and the support set (paper section IV).

Threat model (section IV-A): a passive meta-learner holds the meta-parameters
``omega`` and one shared task gradient ``g``; it wants to know whether a target image
``x0`` was in that task's query set (query attack) or support set (support attack).
The adversary knows the task's labels (the labels 0..ways-1 of every slot: a task's
labels are balanced and ordered by construction here, so this is the standard
assumption of gradient-inversion work; they could also be read off the last layer's
gradient) and, for the support attack only, the task's query set (the paper's
stronger adversary, section IV-D).

Both attacks reconstruct a batch by gradient matching {Geiping et al. 2020}: the slot
of the target starts at ``x0`` (the target image is the prior), the other slots start
as noise, and Adam minimises (paper eq. 9 / 10)::

    1 - cos(g_hat(x), g) + tv_weight * TV(x),      pixels clamped to [0, 1]

where ``g_hat`` is

- query attack: ``grad_omega L(omega, x)`` -- the adapted parameters are approximated
  by ``omega`` itself (eq. 9);
- support attack: the simulated task gradient with ``x`` as the support set and the
  known query set, differentiated through the adaptation (eq. 10); second order by
  default, first order when ``maml.first_order``.

The membership score is ``SSIM(x0, x*[slot])``: a member stays close to its prior, a
non-member is pulled towards the real image of that slot. :func:`decide` thresholds it.

Independent trials are optimised together: every tensor carries a leading trial axis
and the per-trial gradients are computed with ``torch.func.vmap``; large batches are
split into chunks of at most :data:`CHUNK_IMAGES` images, which run faster on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from . import checks
from .data import TaskBatch
from .maml import MAMLConfig, task_gradient
from .metrics import flat, flat_rows
from .models import Forward, Params

INITS = ("uniform", "gaussian", "gray")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class AttackConfig:
    """Hyper-parameters of either attack (paper eq. 9 and 10): ``iterations`` of Adam at
    ``lr`` (``schedule``: cosine decay or constant) on ``1 - cos + tv_weight * TV``;
    ``init`` fills the slots other than the target's; ``restarts`` runs that many noise
    draws per trial and keeps the one with the lowest final matching loss; ``hold``
    keeps the target slot at its prior for that many first iterations. Each attack's
    defaults, and the search they came from, are in :data:`ATTACKS`."""

    iterations: int = 100
    lr: float = 0.1
    schedule: str = "cosine"
    tv_weight: float = 1e-2
    init: str = "uniform"
    restarts: int = 1
    hold: int = 0

    def __post_init__(self) -> None:
        checks.integer("iterations", self.iterations, 1)
        checks.real("lr", self.lr, 0.0, lo_open=True)
        checks.choice("schedule", self.schedule, SCHEDULES)
        checks.real("tv_weight", self.tv_weight, 0.0)
        checks.choice("init", self.init, INITS)
        checks.integer("restarts", self.restarts, 1)
        checks.integer("hold", self.hold, 0, self.iterations - 1)
        for name in ("iterations", "restarts", "hold"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("lr", "tv_weight"):
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class AttackResult:
    """``reconstruction``: ``(T, N, C, H, W)``; ``scores``: SSIM of the target slot
    ``(T,)``; ``loss``: the matching objective per trial, ``(T, iterations)``."""

    reconstruction: torch.Tensor
    scores: torch.Tensor
    loss: torch.Tensor


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of images ``(..., N, C, H, W)``: the mean absolute
    difference of vertically and horizontally adjacent pixels, averaged over the N
    images. Returns ``(...)``."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(-3, -2, -1))
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(-3, -2, -1))
    return (dh + dw).mean(-1)


def _init_batch(x0: torch.Tensor, slot: torch.Tensor, n: int, init: str, generator: torch.Generator) -> torch.Tensor:
    """``(T, n, C, H, W)`` on ``x0``'s device: noise everywhere (drawn on the CPU with
    ``generator``, the same on every device), ``x0[t]`` in slot ``slot[t]``."""
    t = x0.shape[0]
    shape = (t, n) + tuple(x0.shape[1:])
    if init == "uniform":
        x = torch.rand(shape, generator=generator, dtype=x0.dtype)
    elif init == "gaussian":
        x = (0.5 + 0.25 * torch.randn(shape, generator=generator, dtype=x0.dtype)).clamp(0, 1)
    else:
        x = torch.full(shape, 0.5, dtype=x0.dtype)
    x = x.to(x0.device)
    x[torch.arange(t, device=x0.device), slot] = x0
    return x


def _optimise(
    objective, x_init: torch.Tensor, slot: torch.Tensor, cfg: AttackConfig, pin: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on ``x`` (pixels clamped to [0, 1]) minimising ``objective(x) -> (T,)``
    summed over trials; during the first ``cfg.hold`` iterations (all of them with
    ``pin``) the target slot ``slot`` ``(T,)`` is held at its prior and only the other
    slots move. Returns the final ``x`` and the loss history ``(T, iterations)``."""
    x = x_init.clone().requires_grad_(True)
    held = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
    held[torch.arange(x.shape[0], device=x.device), slot] = 1.0
    free = (1.0 - held).view(*x.shape[:2], *[1] * (x.dim() - 2))
    opt = torch.optim.Adam([x], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations) if cfg.schedule == "cosine" else None
    history = []
    for it in range(cfg.iterations):
        opt.zero_grad(set_to_none=True)
        per_trial = objective(x)
        per_trial.sum().backward()
        if pin or it < cfg.hold:
            assert x.grad is not None
            x.grad.mul_(free)
        opt.step()
        if sched is not None:
            sched.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        history.append(per_trial.detach())
    return x.detach(), torch.stack(history, dim=1)


# Trials are optimised in chunks of at most this many attacked images (trials x images
# per trial). On a CPU the time per trial grows with the batch once its activations
# outgrow the caches: the support attack on 7-way 3-shot tasks takes 2.4 s per
# iteration for 100 trials in one batch and 1.2 s in chunks of 20, the query attack
# 0.62 s and 0.29 s (2 threads; ``bench/attack_chunks.py``). 512 keeps 100 trials of
# 3-way and 5-way 1-shot tasks in one batch. Trials are independent, so chunking changes
# results only at the level of float rounding (the kernels' summation order depends on
# the batch size).
CHUNK_IMAGES = 512


def chunks(trials: int, images: int, chunk_images: int | None) -> list[slice]:
    """Split ``trials`` trials of ``images`` images each into the fewest chunks of at
    most ``chunk_images`` images (one trial per chunk if a trial alone exceeds it), of
    about equal size; ``None`` keeps all trials in one chunk."""
    if chunk_images is not None and (not isinstance(chunk_images, int) or chunk_images < 1):
        raise ValueError(f"chunk_images must be an integer >= 1 or None, got {chunk_images!r}")
    if chunk_images is None or trials * images <= chunk_images:
        return [slice(0, trials)]
    most = max(1, chunk_images // images)  # trials per chunk at most
    size = math.ceil(trials / math.ceil(trials / most))
    return [slice(a, min(a + size, trials)) for a in range(0, trials, size)]


def _run(objective_for, x0, slot, n, cfg: AttackConfig, generator, chunk_images: int | None,
         keep: torch.Tensor | None = None) -> AttackResult:  # fmt: skip
    """Restarts: ``objective_for(rows)`` gives the objective of the trials ``rows`` (a
    slice) of the trial axis repeated ``cfg.restarts`` times; keep, per trial, the
    restart with the lowest final loss. The initial batches of all rows are drawn
    first, then the rows are optimised chunk by chunk (:func:`chunks`). ``keep``
    (indices) optimises only those trials, each from the start it has in a full run."""
    t = x0.shape[0]
    r = cfg.restarts
    x_init = _init_batch(_rep(x0, r), slot.repeat(r), n, cfg.init, generator)
    if keep is not None:
        x_init = x_init[(torch.arange(r, device=keep.device)[:, None] * t + keep[None, :]).flatten()]
        x0, slot, t = x0[keep], slot[keep], keep.numel()
    slots = slot.repeat(r)
    parts = [_optimise(objective_for(rows), x_init[rows], slots[rows], cfg) for rows in chunks(r * t, n, chunk_images)]
    x, hist = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    best = hist[:, -1].view(r, t).argmin(0)  # (T,)
    pick = best * t + torch.arange(t, device=best.device)
    x, hist = x[pick], hist[pick]
    scores = ssim_scores(x0, x[torch.arange(t, device=x.device), slot])
    return AttackResult(reconstruction=x, scores=scores, loss=hist)


def _rep(v: torch.Tensor, r: int) -> torch.Tensor:
    return v.repeat(r, *[1] * (v.dim() - 1))


def _matching(g_hat: torch.Tensor, target: torch.Tensor, x: torch.Tensor, tv_weight: float) -> torch.Tensor:
    return 1 - F.cosine_similarity(g_hat, target, dim=1, eps=1e-30) + tv_weight * total_variation(x)


def query_objective(f: Forward, params: Params, target: torch.Tensor, y: torch.Tensor, tv_weight: float):
    """Per-trial objective of the query attack (paper eq. 9) as a function of the
    candidate batches ``x`` ``(T, N, C, H, W)`` -> ``(T,)``: ``1 - cos(grad_omega
    L(omega, x_t, y_t), target_t) + tv_weight * TV(x_t)``. ``target``: ``(T, P)`` flat
    shared gradients; ``y``: ``(T, N)``."""

    def per_trial_grad(x: torch.Tensor, yt: torch.Tensor) -> torch.Tensor:
        return flat(grad(lambda q: F.cross_entropy(f(q, x), yt))(params))

    def objective(x: torch.Tensor) -> torch.Tensor:
        return _matching(vmap(per_trial_grad)(x, y), target, x, tv_weight)

    return objective


def support_objective(
    f: Forward,
    params: Params,
    target: torch.Tensor,
    y_s: torch.Tensor,
    x_q: torch.Tensor,
    y_q: torch.Tensor,
    maml: MAMLConfig,
    tv_weight: float,
):
    """Per-trial objective of the support attack (paper eq. 10) as a function of the
    candidate support batches ``x`` ``(T, N, C, H, W)`` -> ``(T,)``: the task gradient is
    simulated with ``x`` as the support set and the known query set ``(x_q, y_q)``,
    through the adaptation of ``maml``."""

    def simulated(xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        return flat(task_gradient(f, params, xs, ys, xq, yq, maml)[0])

    def objective(x: torch.Tensor) -> torch.Tensor:
        return _matching(vmap(simulated)(x, y_s, x_q, y_q), target, x, tv_weight)

    return objective


def _attack(
    objective_for_rows,
    per_trial: tuple[torch.Tensor, ...],
    params: Params,
    g: Params,
    y: torch.Tensor,
    x0: torch.Tensor,
    slot: torch.Tensor,
    cfg: AttackConfig,
    generator: torch.Generator | None,
    chunk_images: int | None,
    keep: torch.Tensor | None = None,
) -> AttackResult:
    """The body both attacks share: check shapes, repeat the per-trial arrays (the shared
    gradients first, then ``per_trial``) once per restart, and optimise the rows chunk by
    chunk with ``objective_for_rows(params, target_rows, *per_trial_rows)``; with ``keep``
    only those trials (the result then has ``len(keep)`` rows)."""
    _check_shapes(g, y, x0, slot)
    if keep is not None:
        keep = torch.as_tensor(keep, dtype=torch.long, device=x0.device)
        bad = keep.dim() != 1 or keep.numel() == 0 or len(set(keep.tolist())) != keep.numel()
        if bad or bool((keep < 0).any()) or bool((keep >= x0.shape[0]).any()):
            raise ValueError(f"keep must be distinct trial indices in [0, {x0.shape[0]}), got {keep.tolist()}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    p = {k: v.detach() for k, v in params.items()}
    kept = [a if keep is None else a[keep] for a in (flat_rows(g).detach(), *per_trial)]
    arrays = [_rep(a, cfg.restarts) for a in kept]

    def objective_for(rows: slice):
        return objective_for_rows(p, *[a[rows] for a in arrays])

    return _run(objective_for, x0, slot, y.shape[1], cfg, gen, chunk_images, keep)


def query_attack(
    f: Forward,
    params: Params,
    g: Params,
    y_q: torch.Tensor,
    x0: torch.Tensor,
    slot: torch.Tensor,
    cfg: AttackConfig = AttackConfig(),
    generator: torch.Generator | None = None,
    chunk_images: int | None = CHUNK_IMAGES,
    keep: torch.Tensor | None = None,
) -> AttackResult:
    """Query attack (paper eq. 9) on ``T`` trials at once.

    ``params``: omega (shared by the trials); ``g``: the shared task gradients, each
    entry ``(T, *param.shape)``; ``y_q``: the query labels ``(T, N)``; ``x0``: the
    targets ``(T, C, H, W)``; ``slot``: where each target is tested ``(T,)``;
    ``chunk_images``: trials are optimised in chunks of at most that many images
    (:data:`CHUNK_IMAGES`; ``None``: one batch); ``keep``: attack only these trials
    (indices), each from the start it has when all are attacked.
    """

    def objective(p: Params, target: torch.Tensor, y: torch.Tensor):
        return query_objective(f, p, target, y, cfg.tv_weight)

    return _attack(objective, (y_q,), params, g, y_q, x0, slot, cfg, generator, chunk_images, keep)


def support_attack(
    f: Forward,
    params: Params,
    g: Params,
    y_s: torch.Tensor,
    x_q: torch.Tensor,
    y_q: torch.Tensor,
    x0: torch.Tensor,
    slot: torch.Tensor,
    maml: MAMLConfig,
    cfg: AttackConfig = AttackConfig(),
    generator: torch.Generator | None = None,
    chunk_images: int | None = CHUNK_IMAGES,
    keep: torch.Tensor | None = None,
) -> AttackResult:
    """Support attack (paper eq. 10) on ``T`` trials at once: the adversary also holds the
    query sets ``x_q`` ``(T, N_q, C, H, W)`` with labels ``y_q`` and simulates the task
    gradient of a candidate support batch (labels ``y_s`` ``(T, N)``) with the inner loop
    of ``maml``. Other arguments as in :func:`query_attack`.
    """
    if x_q.shape[0] != x0.shape[0] or y_q.shape[:1] != x_q.shape[:1]:
        raise ValueError("x_q and y_q must have one entry per trial")

    def objective(p: Params, target: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, yq: torch.Tensor):
        return support_objective(f, p, target, ys, xq, yq, maml, cfg.tv_weight)

    return _attack(objective, (y_s, x_q, y_q), params, g, y_s, x0, slot, cfg, generator, chunk_images, keep)


@dataclass(frozen=True)
class AttackSpec:
    """One attack of :data:`ATTACKS`: its default settings, the validation search they
    were chosen by (a file under ``results/attacks/``), and how it runs on a task
    batch: ``run(f, params, g, batch, x0, slot, maml, cfg, generator, keep=None)``."""

    defaults: AttackConfig
    search: str
    run: Callable[..., AttackResult]


def _query_on_batch(f, params, g, batch: TaskBatch, x0, slot, maml, cfg, generator, keep=None) -> AttackResult:
    return query_attack(f, params, g, batch.query_y, x0, slot, cfg, generator, keep=keep)


def _support_on_batch(f, params, g, batch: TaskBatch, x0, slot, maml, cfg, generator, keep=None) -> AttackResult:
    return support_attack(
        f, params, g, batch.support_y, batch.query_x, batch.query_y, x0, slot, maml, cfg, generator, keep=keep
    )


# target (the attacked set) -> the attack. The defaults of both were chosen on 100
# validation trials of the paper's game, MNIST 3-way 1-shot (the query attack on the
# untrained attack network, the support attack after 300 meta-iterations); the files
# record every setting tried and its validation AUC.
ATTACKS: dict[str, AttackSpec] = {
    "query": AttackSpec(AttackConfig(), "results/attacks/search-query-untrained-stride.json", _query_on_batch),
    "support": AttackSpec(AttackConfig(), "results/attacks/search-support-settings-stride.json", _support_on_batch),
}
TARGETS = tuple(ATTACKS)


def attack_for(target: str) -> AttackSpec:
    """The entry of :data:`ATTACKS` for ``target`` ("query" or "support")."""
    return ATTACKS[checks.choice("target", target, TARGETS)]


def _check_shapes(g: Params, y: torch.Tensor, x0: torch.Tensor, slot: torch.Tensor) -> None:
    t = x0.shape[0]
    if y.dim() != 2 or y.shape[0] != t:
        raise ValueError(f"labels must have shape (trials, N) with trials={t}, got {tuple(y.shape)}")
    if slot.shape != (t,) or bool((slot < 0).any()) or bool((slot >= y.shape[1]).any()):
        raise ValueError(f"slot must have shape ({t},) with values in [0, {y.shape[1]}), got {slot.tolist()}")
    for k, v in g.items():
        if v.shape[0] != t:
            raise ValueError(f"g[{k!r}] must have a leading trial axis of size {t}, got {tuple(v.shape)}")


def ssim_scores(x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SSIM (scikit-image, data range 1) between each target and its reconstruction,
    images ``(T, C, H, W)`` in [0, 1]. Returns ``(T,)`` float64."""
    from skimage.metrics import structural_similarity

    a = x0.detach().to("cpu", torch.float64).numpy()
    b = x.detach().to("cpu", torch.float64).numpy()
    vals = [structural_similarity(a[i], b[i], data_range=1.0, channel_axis=0) for i in range(a.shape[0])]
    return torch.tensor(np.asarray(vals, dtype=np.float64))


def decide(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Member iff ``score > threshold`` (section IV-C). A NaN score (from a NaN gradient
    or target) raises instead of silently counting as a non-member."""
    s = torch.as_tensor(scores).cpu()
    if bool(torch.isnan(s).any()):
        raise ValueError(f"scores must not be NaN: {int(torch.isnan(s).sum())} of {s.numel()} are")
    checks.real("threshold", threshold)
    return s > threshold

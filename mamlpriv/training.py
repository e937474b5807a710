"""Meta-training (Adam on the mean task gradient) and few-shot evaluation.

``meta_train`` is deterministic given its configuration: the tasks of meta-iteration
``i`` are drawn with seeds derived from ``(seed, i)``, so a run resumed from its last
checkpoint continues exactly as an uninterrupted one would. Every ``epoch_iterations``
iterations it evaluates on held-out tasks from the test split, writes a checkpoint
(atomically) and rewrites ``log.jsonl`` with one JSON line per epoch. One process at a
time trains in a run folder (a lock file); a second waits, then resumes or loads.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import checks, devices
from .data import TaskSampler, load_dataset
from .maml import GaussianNoise, MAMLConfig, TaskNoise, adapted_accuracy, draw_noise, meta_gradient
from .metrics import mean_ci95
from .models import Forward, NetConfig, Params, forward, init_params
from .provenance import write_atomic
from .seeds import Stream, derive_seed


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a meta-training run: the task shape, the network
    (``net``), the inner loop (``maml``), the outer loop (Adam at ``outer_lr`` on the
    mean gradient of ``meta_batch`` tasks for ``iterations``), the evaluation every
    ``epoch_iterations`` on ``eval_tasks`` held-out tasks, the seed and any defence
    ``noise`` on the task gradients."""

    dataset: str = "mnist"
    ways: int = 5
    shots: int = 1
    net: NetConfig = field(default_factory=NetConfig)
    maml: MAMLConfig = field(default_factory=MAMLConfig)
    meta_batch: int = 4
    outer_lr: float = 1e-3
    iterations: int = 1000
    epoch_iterations: int = 100
    eval_tasks: int = 200
    eval_inner_steps: int | None = None
    seed: int = 0
    noise: TaskNoise = field(default_factory=TaskNoise)

    def __post_init__(self) -> None:
        checks.integer("ways", self.ways, 2)
        checks.integer("shots", self.shots, 1)
        for name in ("meta_batch", "iterations", "epoch_iterations"):
            checks.integer(name, getattr(self, name), 1)
        checks.integer("eval_tasks", self.eval_tasks, 2)  # a 95% interval needs two tasks at least
        checks.integer("seed", self.seed, 0)
        checks.real("outer_lr", self.outer_lr, 0.0, lo_open=True)
        if self.eval_inner_steps is not None:
            checks.integer("eval_inner_steps", self.eval_inner_steps, 1)
        for name, kind in (("net", NetConfig), ("maml", MAMLConfig), ("noise", TaskNoise)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["net"] = NetConfig(**d.get("net", {}))
        d["maml"] = MAMLConfig(**d.get("maml", {}))
        if isinstance(d.get("noise"), dict):
            parts: dict[str, Any] = {k: GaussianNoise(**v) if isinstance(v, dict) else v for k, v in d["noise"].items()}
            d["noise"] = TaskNoise(**parts)
        return cls(**d)


@dataclass
class TrainResult:
    """The trained parameters, the per-epoch history and a parameter snapshot at every
    evaluated iteration (``snapshots[iteration]``, including 0)."""

    config: TrainConfig
    model: torch.nn.Module
    params: Params
    history: list[dict]
    snapshots: dict[int, Params] = field(default_factory=dict)

    @property
    def forward(self) -> Forward:
        return forward(self.model)


def evaluate(
    f: Forward,
    params: Params,
    sampler: TaskSampler,
    cfg: MAMLConfig,
    n_tasks: int,
    seed: int,
    steps: int | None = None,
    chunk: int = 50,
) -> tuple[float, float, torch.Tensor]:
    """Few-shot accuracy on ``n_tasks`` tasks drawn with seeds derived from ``seed``.

    Returns ``(mean, 95% CI half-width, per-task accuracies (n_tasks,))``.
    """
    accs = []
    for start in range(0, n_tasks, chunk):
        seeds = [derive_seed(seed, Stream.EVAL, i) for i in range(start, min(n_tasks, start + chunk))]
        batch = sampler.sample_batch(seeds).to(devices.of(params))
        accs.append(adapted_accuracy(f, params, batch, cfg, steps))
    per_task = torch.cat(accs).cpu()
    mean, ci = mean_ci95(per_task)
    return mean, ci, per_task


# ----- checkpoints ----------------------------------------------------------------------


class CorruptCheckpoint(ValueError):
    """A checkpoint or snapshot file that cannot be used (the message names it)."""


def _torch_load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, empty, garbage or foreign files
        raise CorruptCheckpoint(
            f"{path} is not a readable checkpoint ({type(e).__name__}); it is safe to delete "
            "it: training then restarts from the last good state"
        ) from None


def _finite_params(path: Path, params: dict) -> Params:
    if not isinstance(params, dict) or not all(isinstance(v, torch.Tensor) for v in params.values()):
        raise CorruptCheckpoint(f"{path} holds no parameter tensors; it is safe to delete it")
    bad = [k for k, v in params.items() if not bool(torch.isfinite(v).all()) or float(v.abs().max()) > 1e6]
    if bad:
        raise CorruptCheckpoint(
            f"{path}: parameters {bad} are not finite or beyond 1e6 in magnitude; it is safe to delete the file"
        )
    return params


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`meta_train` (``weights_only=True``); a file that
    is unreadable, incomplete or holds non-finite parameters raises
    :class:`CorruptCheckpoint` naming it."""
    path = Path(path)
    state = _torch_load(path)
    try:
        state["history"] = json.loads(state["history"])
        state["config"] = TrainConfig.from_dict(json.loads(state["config"]))
        int(state["iteration"])
        state["optimizer"]["state"]
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptCheckpoint(f"{path} is incomplete ({type(e).__name__}: {e}); it is safe to delete it") from None
    _finite_params(path, state["params"])
    return state


def _load_params(folder: Path, iteration: int) -> Params:
    path = folder / f"iter-{iteration:06d}.pt"
    return _finite_params(path, _torch_load(path))


_CODE_FILES = ("data.py", "models.py", "maml.py", "training.py", "seeds.py")


def run_folder(run_dir: str | os.PathLike, cfg: TrainConfig) -> Path:
    """A folder under ``run_dir`` for the run of ``cfg``: named by a hash of the config
    and of the library code that training depends on, so that any change to either
    starts a new run instead of reusing a stale one."""
    import hashlib

    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for name in _CODE_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    order = "fo" if cfg.maml.first_order else "so"
    return Path(run_dir) / (f"{cfg.dataset}-{cfg.ways}w{cfg.shots}s-{order}{cfg.maml.inner_steps}-{h.hexdigest()[:12]}")


@contextmanager
def _locked(folder: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.lock`` (no lock without a folder)."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----- the training loop, in named steps -------------------------------------------------


@dataclass
class _Run:
    """The state of one meta-training run."""

    cfg: TrainConfig
    model: torch.nn.Module
    params: Params
    opt: torch.optim.Optimizer
    train: TaskSampler
    test: TaskSampler
    folder: Path | None
    history: list[dict] = field(default_factory=list)
    snapshots: dict[int, Params] = field(default_factory=dict)
    start: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def f(self) -> Forward:
        return forward(self.model)


def _start(cfg: TrainConfig, folder: Path | None, data_root, device: torch.device) -> _Run:
    model = cfg.net.build(cfg.ways)
    params = {k: v.to(device).requires_grad_() for k, v in init_params(model, seed=cfg.seed).items()}
    run = _Run(
        cfg,
        model,
        params,
        torch.optim.Adam(params.values(), lr=cfg.outer_lr),
        TaskSampler(load_dataset(cfg.dataset, "train", data_root), cfg.ways, cfg.shots),
        TaskSampler(load_dataset(cfg.dataset, "test", data_root), cfg.ways, cfg.shots),
        folder,
        device=device,
    )
    if folder is not None:
        _resume(run)
        write_atomic(folder / "config.json", json.dumps(cfg.to_dict(), sort_keys=True, indent=1))
    return run


def _resume(run: _Run) -> None:
    """Continue from the folder's checkpoint, if any (of the same config)."""
    assert run.folder is not None
    ckpt = run.folder / "checkpoint.pt"
    if not ckpt.exists():
        return
    state = load_checkpoint(ckpt)
    if state["config"] != run.cfg:
        raise ValueError(f"{ckpt} was written with another config; use a new out_dir")
    with torch.no_grad():
        for k, v in state["params"].items():
            run.params[k].copy_(v)
    run.opt.load_state_dict(state["optimizer"])
    run.start, run.history = int(state["iteration"]), state["history"]
    run.snapshots = {
        h["iteration"]: devices.move(_load_params(run.folder / "snapshots", h["iteration"]), run.device)
        for h in run.history
    }


def _step(run: _Run, it: int) -> tuple[float, float]:
    """One meta-iteration: draw the meta-batch (and any defence noise), Adam step on the
    mean task gradient. Returns the mean query loss and accuracy before the step."""
    cfg = run.cfg
    seeds = [derive_seed(cfg.seed, Stream.TRAIN, it, i) for i in range(cfg.meta_batch)]
    batch = run.train.sample_batch(seeds).to(run.device)
    noise = None
    if cfg.noise.active:
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, Stream.TRAIN_NOISE, it))
        noise = draw_noise(
            cfg.noise,
            run.params,
            batch.support_x.shape[1:],
            batch.query_x.shape[1:],
            cfg.maml.inner_steps,
            gen,
            tasks=cfg.meta_batch,
        )
    g, loss, acc = meta_gradient(run.f, {k: v.detach() for k, v in run.params.items()}, batch, cfg.maml, noise)
    mean_loss = float(loss.mean())
    if not math.isfinite(mean_loss) or not all(bool(torch.isfinite(v).all()) for v in g.values()):
        raise FloatingPointError(
            f"meta-training diverged at meta-iteration {it}: the query loss is {mean_loss} "
            f"or the meta-gradient is not finite (outer_lr={cfg.outer_lr}, "
            f"inner_lr={cfg.maml.inner_lr})"
        )
    for k, p in run.params.items():
        p.grad = g[k]
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    return mean_loss, float(acc.mean())


def _record(run: _Run, it: int, losses: list[float], accs: list[float], elapsed: float) -> None:
    """Evaluate on held-out tasks, keep a snapshot, and (with a folder) checkpoint."""
    cfg = run.cfg
    mean, ci, _ = evaluate(
        run.f, run.params, run.test, cfg.maml, cfg.eval_tasks, cfg.seed, cfg.eval_inner_steps or cfg.maml.inner_steps
    )
    run.history.append(
        {
            "epoch": it // cfg.epoch_iterations,
            "iteration": it,
            "train_loss": sum(losses) / len(losses) if losses else None,
            "train_acc": sum(accs) / len(accs) if accs else None,
            "test_acc": mean,
            "test_ci95": ci,
            "train_seconds": elapsed,
        }
    )
    run.snapshots[it] = {k: v.detach().clone() for k, v in run.params.items()}
    if run.folder is not None:
        _checkpoint(run, it)


def _checkpoint(run: _Run, it: int) -> None:
    """Write the snapshot, the checkpoint and the log, each atomically."""
    assert run.folder is not None
    snap = devices.move(run.snapshots[it], torch.device("cpu"))  # files are device-free
    write_atomic(run.folder / "snapshots" / f"iter-{it:06d}.pt", lambda p: torch.save(snap, p))
    state = {
        "params": {k: v.detach().cpu() for k, v in run.params.items()},
        "optimizer": devices.move(run.opt.state_dict(), torch.device("cpu")),
        "iteration": it,
        "history": json.dumps(run.history),
        "config": json.dumps(run.cfg.to_dict(), sort_keys=True),
    }
    write_atomic(run.folder / "checkpoint.pt", lambda p: torch.save(state, p))
    write_atomic(run.folder / "log.jsonl", "".join(json.dumps(h) + "\n" for h in run.history))


def meta_train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Meta-train with Adam on the mean task gradient (paper eq. 3).

    With ``out_dir``, writes ``checkpoint.pt``, ``log.jsonl``, ``config.json`` and
    ``snapshots/iter-NNNNNN.pt`` (the parameters) there after every epoch, and resumes
    from an existing checkpoint of the same config (a different config raises
    ``ValueError``); a finished run is loaded without training. A non-finite loss or
    meta-gradient stops training with a ``FloatingPointError`` naming the iteration.
    ``device``: where to train (:func:`mamlpriv.devices.resolve`; default
    ``$MAMLPRIV_DEVICE`` or the CPU); files are written device-free.
    """
    folder = Path(out_dir) if out_dir is not None else None
    dev = devices.resolve(device)
    with _locked(folder):
        run = _start(cfg, folder, data_root, dev)
        if not run.history:
            _record(run, 0, [], [], 0.0)
        elapsed = run.history[-1]["train_seconds"]
        losses: list[float] = []
        accs: list[float] = []
        bar = tqdm(
            range(run.start, cfg.iterations),
            initial=run.start,
            total=cfg.iterations,
            disable=not progress,
            desc=f"meta-train {'FO' if cfg.maml.first_order else 'SO'}-MAML",
            mininterval=5.0,
        )
        for it in bar:
            t0 = time.perf_counter()
            loss, acc = _step(run, it)
            elapsed += time.perf_counter() - t0
            losses.append(loss)
            accs.append(acc)
            if (it + 1) % cfg.epoch_iterations == 0 or it + 1 == cfg.iterations:
                _record(run, it + 1, losses, accs, elapsed)
                bar.set_postfix(test_acc=f"{run.history[-1]['test_acc']:.3f}")
                losses, accs = [], []
        bar.close()
    return TrainResult(cfg, run.model, {k: v.detach() for k, v in run.params.items()}, run.history, run.snapshots)

"""Meta-training (Adam on the mean task gradient) and few-shot evaluation.

``meta_train`` is deterministic given its configuration: the tasks of meta-iteration
``i`` are drawn with seeds derived from ``(seed, i)``, so a run resumed from its last
checkpoint continues exactly as an uninterrupted one would. Every ``epoch_iterations``
iterations it evaluates on held-out tasks from the test split, writes a checkpoint
(atomically) and rewrites ``log.jsonl`` with one JSON line per epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .data import TaskSampler, derive_seed, load_dataset
from .maml import GaussianNoise, MAMLConfig, TaskNoise, adapted_accuracy, draw_noise, meta_gradient
from .metrics import mean_ci95
from .models import NORMS, POOLS, Forward, Params, build_model, forward, init_params

# Stream tags for derive_seed, so that no two kinds of draw share a seed.
_TRAIN, _EVAL, _NOISE = 0, 1, 2


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a meta-training run."""

    dataset: str = "mnist"
    arch: str = "conv"
    hidden: int = 32
    norm: str = "group"
    pool: str = "max"
    ways: int = 5
    shots: int = 1
    meta_batch: int = 4
    inner_lr: float = 0.4
    inner_steps: int = 1
    first_order: bool = False
    outer_lr: float = 1e-3
    iterations: int = 1000
    epoch_iterations: int = 100
    eval_tasks: int = 200
    eval_inner_steps: int | None = None
    seed: int = 0
    noise: TaskNoise = field(default_factory=TaskNoise)

    def __post_init__(self) -> None:
        for name in ("meta_batch", "iterations", "epoch_iterations", "eval_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.outer_lr > 0):
            raise ValueError(f"outer_lr must be > 0, got {self.outer_lr}")
        if self.eval_inner_steps is not None and self.eval_inner_steps < 1:
            raise ValueError(f"eval_inner_steps must be >= 1, got {self.eval_inner_steps}")
        self.maml  # validates inner_lr and inner_steps
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")

    @property
    def maml(self) -> MAMLConfig:
        return MAMLConfig(self.inner_lr, self.inner_steps, self.first_order)

    def model_kwargs(self) -> dict:
        if self.arch == "conv":
            return {"hidden": self.hidden, "norm": self.norm, "pool": self.pool}
        return {"hidden": self.hidden}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        if "noise" in d and isinstance(d["noise"], dict):
            d["noise"] = TaskNoise(**{k: GaussianNoise(**v) if isinstance(v, dict) else v
                                      for k, v in d["noise"].items()})
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
        seeds = [derive_seed(seed, _EVAL, i) for i in range(start, min(n_tasks, start + chunk))]
        accs.append(adapted_accuracy(f, params, sampler.sample_batch(seeds), cfg, steps))
    per_task = torch.cat(accs)
    mean, ci = mean_ci95(per_task)
    return mean, ci, per_task


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_checkpoint(path: Path, params: Params, opt: torch.optim.Optimizer, iteration: int, history, cfg) -> None:
    state = {
        "params": {k: v.detach() for k, v in params.items()},
        "optimizer": opt.state_dict(),
        "iteration": iteration,
        "history": json.dumps(history),
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
    }
    _atomic_write_bytes(path, lambda p: torch.save(state, p))


def _write_log(path: Path, history: list[dict]) -> None:
    text = "".join(json.dumps(h) + "\n" for h in history)
    _atomic_write_bytes(path, lambda p: p.write_text(text))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`meta_train` (``weights_only=True``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["history"] = json.loads(state["history"])
    state["config"] = TrainConfig.from_dict(json.loads(state["config"]))
    return state


_CODE_FILES = ("data.py", "models.py", "maml.py", "training.py")


def run_folder(run_dir: str | os.PathLike, cfg: TrainConfig) -> Path:
    """A folder under ``run_dir`` for the run of ``cfg``: named by a hash of the config
    and of the library code that training depends on, so that any change to either
    starts a new run instead of reusing a stale one."""
    import hashlib

    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for name in _CODE_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    order = "fo" if cfg.first_order else "so"
    return Path(run_dir) / f"{cfg.dataset}-{cfg.ways}w{cfg.shots}s-{order}{cfg.inner_steps}-{h.hexdigest()[:12]}"


def _load_params(folder: Path, iteration: int) -> Params:
    return torch.load(folder / f"iter-{iteration:06d}.pt", map_location="cpu", weights_only=True)


def meta_train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    """Meta-train with Adam on the mean task gradient (paper eq. 3).

    With ``out_dir``, writes ``checkpoint.pt``, ``log.jsonl``, ``config.json`` and
    ``snapshots/iter-NNNNNN.pt`` (the parameters) there after every epoch, and resumes
    from an existing checkpoint of the same config (a different config raises
    ``ValueError``); a finished run is loaded without training.
    """
    model = build_model(cfg.arch, cfg.ways, **cfg.model_kwargs())
    f = forward(model)
    params = {k: v.requires_grad_() for k, v in init_params(model, seed=cfg.seed).items()}
    opt = torch.optim.Adam(params.values(), lr=cfg.outer_lr)
    train = TaskSampler(load_dataset(cfg.dataset, "train", data_root), cfg.ways, cfg.shots)
    test = TaskSampler(load_dataset(cfg.dataset, "test", data_root), cfg.ways, cfg.shots)
    eval_steps = cfg.eval_inner_steps or cfg.inner_steps
    history: list[dict] = []
    snapshots: dict[int, Params] = {}
    start = 0

    ckpt = log = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ckpt, log = out / "checkpoint.pt", out / "log.jsonl"
        cfg_json = json.dumps(cfg.to_dict(), sort_keys=True, indent=1)
        if ckpt.exists():
            state = load_checkpoint(ckpt)
            if state["config"] != cfg:
                raise ValueError(f"{ckpt} was written with another config; use a new out_dir")
            with torch.no_grad():
                for k, v in state["params"].items():
                    params[k].copy_(v)
            opt.load_state_dict(state["optimizer"])
            start, history = state["iteration"], state["history"]
            snapshots = {h["iteration"]: _load_params(out / "snapshots", h["iteration"]) for h in history}
        _atomic_write_bytes(out / "config.json", lambda p: p.write_text(cfg_json))

    def record(it: int, losses: list[float], accs: list[float], elapsed: float) -> None:
        mean, ci, _ = evaluate(f, params, test, cfg.maml, cfg.eval_tasks, cfg.seed, eval_steps)
        history.append(
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
        snapshots[it] = {k: v.detach().clone() for k, v in params.items()}
        if ckpt is not None:
            folder = ckpt.parent / "snapshots"
            folder.mkdir(exist_ok=True)
            _atomic_write_bytes(folder / f"iter-{it:06d}.pt", lambda p: torch.save(snapshots[it], p))
            _save_checkpoint(ckpt, params, opt, it, history, cfg)
            _write_log(log, history)

    if start == 0 and not history:
        record(0, [], [], 0.0)
    elapsed = history[-1]["train_seconds"]
    losses: list[float] = []
    accs: list[float] = []
    bar = tqdm(
        range(start, cfg.iterations),
        initial=start,
        total=cfg.iterations,
        disable=not progress,
        desc=f"meta-train {'FO' if cfg.first_order else 'SO'}-MAML",
        mininterval=5.0,
    )
    for it in bar:
        t0 = time.perf_counter()
        seeds = [derive_seed(cfg.seed, _TRAIN, it, i) for i in range(cfg.meta_batch)]
        batch = train.sample_batch(seeds)
        noise = None
        if cfg.noise.active:
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, _NOISE, it))
            noise = draw_noise(
                cfg.noise, params, batch.support_x.shape[1:], batch.query_x.shape[1:],
                cfg.inner_steps, gen, tasks=cfg.meta_batch,
            )
        g, loss, acc = meta_gradient(f, {k: v.detach() for k, v in params.items()}, batch, cfg.maml, noise)
        for k, p in params.items():
            p.grad = g[k]
        opt.step()
        opt.zero_grad(set_to_none=True)
        elapsed += time.perf_counter() - t0
        losses.append(float(loss.mean()))
        accs.append(float(acc.mean()))
        if (it + 1) % cfg.epoch_iterations == 0 or it + 1 == cfg.iterations:
            record(it + 1, losses, accs, elapsed)
            bar.set_postfix(test_acc=f"{history[-1]['test_acc']:.3f}")
            losses, accs = [], []
    bar.close()
    return TrainResult(cfg, model, {k: v.detach() for k, v in params.items()}, history, snapshots)

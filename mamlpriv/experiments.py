"""The membership game of paper section IV-A, played with the attacks of :mod:`.attacks`.

One trial: draw a task (seeded), a slot ``j`` of the attacked set (query or support) and
a bit ``b``. If ``b = 1`` the target ``x0`` is the task's own image in slot ``j``; if
``b = 0`` it is a non-member, tested in the same slot:

- ``game="paper"``: drawn from the whole data distribution (any class), as in the
  paper's game and experiments;
- ``game="strict"``: an image of the same class as the member it replaces, which
  removes the easy cue of a wrong class.

The task-learner computes its real shared gradient (with any noise of ``noise``), the
attack scores ``x0``, and the record of the trial is kept. Exactly half of the trials
are members (``trials`` must be even).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .attacks import QueryAttackConfig, SupportAttackConfig, query_attack, support_attack
from .data import ImageDataset, TaskSampler, derive_seed, stack_tasks
from .maml import MAMLConfig, TaskNoise, draw_noise, task_gradients
from .models import Forward, Params

GAMES = ("paper", "strict")
TARGETS = ("query", "support")
_TASK, _TRIAL, _ATTACK, _NOISE = 11, 12, 13, 14


@dataclass(frozen=True)
class GameConfig:
    """One cell of the membership game."""

    target: str = "query"  # which set is attacked
    game: str = "paper"
    ways: int = 3
    shots: int = 1
    trials: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.game not in GAMES:
            raise ValueError(f"game must be one of {GAMES}, got {self.game!r}")
        if not isinstance(self.trials, int) or self.trials < 2 or self.trials % 2:
            raise ValueError(f"trials must be an even integer >= 2, got {self.trials!r}")


@dataclass
class GameResult:
    """Per-trial records and the tensors behind them."""

    config: GameConfig
    records: list[dict]
    scores: torch.Tensor
    members: torch.Tensor
    targets: torch.Tensor = field(repr=False)
    reconstructions: torch.Tensor = field(repr=False)
    slots: torch.Tensor = field(repr=False)
    loss: torch.Tensor = field(repr=False)  # matching objective per trial and iteration

    def save(self, path: str | os.PathLike) -> None:
        """Write the records as CSV (``.csv``) or JSON (anything else), atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".csv":
            with tmp.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(self.records[0]))
                w.writeheader()
                w.writerows(self.records)
        else:
            tmp.write_text(json.dumps({"config": asdict(self.config), "records": self.records}, indent=1))
        os.replace(tmp, path)


def _non_member(dataset: ImageDataset, task, cls: int | None, gen: torch.Generator) -> int:
    """Index of an image outside the task: of class ``cls``, or of any class if None."""
    used = set(task.support_idx.tolist()) | set(task.query_idx.tolist())
    pool = dataset.class_indices()[cls] if cls is not None else None
    while True:
        i = int(pool[torch.randint(pool.numel(), (), generator=gen)]) if pool is not None else int(
            torch.randint(len(dataset), (), generator=gen)
        )
        if i not in used:
            return i


def play(
    f: Forward,
    params: Params,
    dataset: ImageDataset,
    game: GameConfig,
    maml: MAMLConfig,
    attack: QueryAttackConfig | SupportAttackConfig | None = None,
    noise: TaskNoise | None = None,
) -> GameResult:
    """Play ``game.trials`` trials of the membership game against the model ``params``.

    Tasks come from ``dataset`` (use a split the model was not meta-trained on);
    ``maml`` is the task-learner's inner loop (and the adversary's simulation of it);
    ``noise`` perturbs the real task gradients (defences). The trials run as one
    batched optimisation (in chunks, :data:`~mamlpriv.attacks.CHUNK_IMAGES`).
    """
    if attack is None:
        attack = QueryAttackConfig() if game.target == "query" else SupportAttackConfig()
    expected = QueryAttackConfig if game.target == "query" else SupportAttackConfig
    if not isinstance(attack, expected):
        raise ValueError(f"attack must be a {expected.__name__} for target={game.target!r}")
    sampler = TaskSampler(dataset, game.ways, game.shots)
    gen = torch.Generator().manual_seed(derive_seed(game.seed, _TRIAL))
    n = game.ways * game.shots
    members = torch.zeros(game.trials, dtype=torch.bool)
    members[torch.randperm(game.trials, generator=gen)[: game.trials // 2]] = True
    task_seeds = [derive_seed(game.seed, _TASK, t) for t in range(game.trials)]
    tasks = [sampler.sample(s) for s in task_seeds]
    slots = torch.randint(n, (game.trials,), generator=gen)
    targets, target_idx = [], []
    for t, task in enumerate(tasks):
        j = int(slots[t])
        own_idx = task.query_idx if game.target == "query" else task.support_idx
        own_x = task.query_x if game.target == "query" else task.support_x
        if members[t]:
            idx, x0 = int(own_idx[j]), own_x[j]
        else:
            cls = task.classes[int(task.query_y[j] if game.target == "query" else task.support_y[j])]
            idx = _non_member(dataset, task, cls if game.game == "strict" else None, gen)
            x0 = dataset.images[idx]
        targets.append(x0)
        target_idx.append(idx)
    x0 = torch.stack(targets)
    batch = stack_tasks(tasks)
    p = {k: v.detach() for k, v in params.items()}
    draw = None
    if noise is not None and noise.active:
        ngen = torch.Generator().manual_seed(derive_seed(game.seed, _NOISE))
        draw = draw_noise(noise, p, batch.support_x.shape[1:], batch.query_x.shape[1:], maml.inner_steps, ngen,
                          tasks=game.trials)
    g, _, _ = task_gradients(f, p, batch, maml, draw)
    agen = torch.Generator().manual_seed(derive_seed(game.seed, _ATTACK))
    if game.target == "query":
        res = query_attack(f, p, g, batch.query_y, x0, slots, attack, agen)
    else:
        res = support_attack(f, p, g, batch.support_y, batch.query_x, batch.query_y, x0, slots, maml, attack, agen)
    records = [
        {
            "trial": t,
            "task_seed": task_seeds[t],
            "classes": "-".join(map(str, tasks[t].classes)),
            "slot": int(slots[t]),
            "target_index": target_idx[t],
            "member": bool(members[t]),
            "score": float(res.scores[t]),
            "final_loss": float(res.loss[t, -1]),
        }
        for t in range(game.trials)
    ]
    return GameResult(game, records, res.scores, members, x0, res.reconstruction, slots, res.loss)


# The network every attack experiment uses (Tables I-IV, Figures 4-12): conv net 4x32
# without normalisation, stride-2 convolutions instead of max-pooling (Finn et al.'s
# Omniglot network). ``ConvNet(ways, **ATTACK_NET)``, ``TrainConfig(..., **ATTACK_NET)``.
ATTACK_NET = {"hidden": 32, "norm": "none", "pool": "stride"}

_VALIDATION = 1_000_003  # seed offset of validation trials: never the same tasks as test trials


def evaluate_selected(
    f: Forward,
    snapshots: dict[int, Params],
    dataset: ImageDataset,
    game: GameConfig,
    maml: MAMLConfig,
    attacks: Sequence[QueryAttackConfig | SupportAttackConfig],
    validation_trials: int = 100,
    noise: TaskNoise | None = None,
) -> dict:
    """One membership cell (Tables I-II and every later figure), with the training stage
    and the attack's settings chosen on ``validation_trials`` separate trials (other
    seeds): play the validation game for every snapshot (``{meta-iteration: params}``)
    and every attack config, keep the pair with the highest validation AUC (earliest
    stage, then first attack, on ties), calibrate the SSIM threshold there and play
    ``game`` with it; ``noise`` perturbs the real task gradients (a defence).

    Returns ``"stage"``, ``"attack"`` (the chosen config's fields), ``"validation_auc"``
    (``"stage/attack index" -> AUC``), ``"metrics"`` (test accuracy, recall, precision,
    AUC, TPR at 1% and 10% FPR at that threshold), ``"validation"`` (the same on the
    validation trials) and ``"records"`` (one per test trial, with its prediction)."""
    from .metrics import best_threshold, membership_metrics, roc_auc

    if not snapshots or not attacks:
        raise ValueError("snapshots and attacks must each hold at least one candidate")
    val_game = GameConfig(game.target, game.game, game.ways, game.shots, validation_trials, game.seed + _VALIDATION)
    vals, aucs = {}, {}
    for st in sorted(snapshots):
        for a, attack in enumerate(attacks):
            vals[st, a] = play(f, snapshots[st], dataset, val_game, maml, attack, noise)
            aucs[st, a] = roc_auc(vals[st, a].scores, vals[st, a].members)
    stage, a = max(aucs, key=lambda k: (aucs[k], -k[0], -k[1]))
    threshold = best_threshold(vals[stage, a].scores, vals[stage, a].members)
    test = play(f, snapshots[stage], dataset, game, maml, attacks[a], noise)
    return {
        "stage": stage,
        "attack": asdict(attacks[a]),
        "validation_auc": {f"{st}/{i}": v for (st, i), v in aucs.items()},
        "metrics": membership_metrics(test.scores, test.members, threshold),
        "validation": membership_metrics(vals[stage, a].scores, vals[stage, a].members, threshold),
        "records": [dict(r, prediction=bool(r["score"] > threshold)) for r in test.records],
    }


def evaluate_stages(
    f: Forward,
    snapshots: dict[int, Params],
    dataset: ImageDataset,
    game: GameConfig,
    maml: MAMLConfig,
    attack: QueryAttackConfig | SupportAttackConfig | None = None,
    validation_trials: int = 100,
    noise: TaskNoise | None = None,
) -> dict:
    """:func:`evaluate_selected` with one attack config: only the training stage is
    chosen on the validation trials. Reports ``"stage"`` and
    ``"validation_auc_by_stage"`` (``"stage" -> AUC``) beside the metrics and records."""
    if attack is None:
        attack = QueryAttackConfig() if game.target == "query" else SupportAttackConfig()
    r = evaluate_selected(f, snapshots, dataset, game, maml, [attack], validation_trials, noise)
    by_stage = {k.split("/")[0]: v for k, v in r["validation_auc"].items()}
    return {"stage": r["stage"], "validation_auc_by_stage": by_stage,
            **{k: r[k] for k in ("metrics", "validation", "records")}}


# data size (images in the attacked set) -> (ways, shots) used for Tables III-IV
RUNTIME_SHAPES = {3: (3, 1), 5: (5, 1), 10: (5, 2), 15: (5, 3), 20: (5, 4)}


def attack_runtime(target: str, size: int, iterations: int, trials: int, dataset: ImageDataset,
                   inner_lr: float = 0.1) -> float:
    """Seconds per trial of one attack (Tables III-IV): ``trials`` trials batched, an
    untrained :data:`ATTACK_NET`, attacked sets of ``size`` images, default attack
    settings but ``iterations``. Only the attack's optimisation is timed."""
    import time

    from .models import ConvNet, forward, init_params

    if size not in RUNTIME_SHAPES:
        raise ValueError(f"size must be one of {sorted(RUNTIME_SHAPES)}, got {size}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    ways, shots = RUNTIME_SHAPES[size]
    model = ConvNet(ways, **ATTACK_NET)
    f, p = forward(model), init_params(model, seed=0)
    sampler = TaskSampler(dataset, ways, shots)
    batch = stack_tasks([sampler.sample(derive_seed(size, t)) for t in range(trials)])
    maml = MAMLConfig(inner_lr, 1, False)
    g, _, _ = task_gradients(f, p, batch, maml)
    slot = torch.zeros(trials, dtype=torch.long)
    t0 = time.perf_counter()
    if target == "query":
        query_attack(f, p, g, batch.query_y, batch.query_x[:, 0], slot, QueryAttackConfig(iterations=iterations))
    else:
        support_attack(f, p, g, batch.support_y, batch.query_x, batch.query_y, batch.support_x[:, 0], slot, maml,
                       SupportAttackConfig(iterations=iterations))
    return (time.perf_counter() - t0) / trials


def write_result(path: str | os.PathLike, script: str, args: dict, **content) -> None:
    """Write a result file (JSON) with its provenance: the script and its arguments, the
    git commit, the machine, torch's version and the date; written atomically."""
    from .provenance import provenance, write_json

    write_json(path, {"provenance": provenance(script=script, args=args), **content})

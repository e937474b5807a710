"""The membership game of paper section IV-A, played with the attacks of :mod:`.attacks`.

One trial: draw a task (seeded), a slot ``j`` of the attacked set (query or support) and
a bit ``b``. If ``b = 1`` the target ``x0`` is the task's own image in slot ``j``; if
``b = 0`` it is a non-member, tested in the same slot:

- ``game="paper"``: drawn from the whole data distribution (any class), as in the
  paper's game and experiments;
- ``game="strict"``: an image of the same class as the member it replaces, which
  removes the easy cue of a wrong class.

:func:`draw_trials` draws the trials, :func:`score_trials` lets the task-learners
compute their real shared gradients (with any defence's noise) and the attack score
each target; :func:`play` does both. :func:`evaluate_selected` is one membership cell:
the training stage and the attack's settings chosen on separate validation trials, the
threshold calibrated there, then the test trials played once. Exactly half of the
trials are members (``trials`` must be even).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from . import checks, devices
from .attacks import TARGETS, AttackConfig, attack_for
from .data import ImageDataset, Task, TaskBatch, TaskSampler, stack_tasks
from .maml import MAMLConfig, TaskNoise, draw_noise, task_gradients
from .models import Forward, Params
from .provenance import write_atomic
from .scores import EXTRA_SCORES, ceiling_scores, pinned_losses
from .seeds import VALIDATION_OFFSET, Stream, derive_seed

GAMES = ("paper", "strict")


@dataclass(frozen=True)
class GameConfig:
    """One membership game: ``trials`` trials (even) against the ``target`` set of
    ``ways``-way ``shots``-shot tasks, seeded by ``seed``. ``aggregate`` = m > 1: the
    adversary sees only the sum of the trial's task gradient and those of m - 1 other
    tasks it does not know (secure aggregation of a meta-batch)."""

    target: str = "query"  # which set is attacked
    game: str = "paper"
    ways: int = 3
    shots: int = 1
    trials: int = 40
    seed: int = 0
    aggregate: int = 1

    def __post_init__(self) -> None:
        checks.choice("target", self.target, TARGETS)
        checks.choice("game", self.game, GAMES)
        checks.integer("ways", self.ways, 2)
        checks.integer("shots", self.shots, 1)
        checks.integer("seed", self.seed, 0)
        if checks.integer("trials", self.trials, 2) % 2:
            raise ValueError(f"trials must be an even integer >= 2, got {self.trials!r}")
        checks.integer("aggregate", self.aggregate, 1)
        for name in ("ways", "shots", "trials", "seed", "aggregate"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def validation(self, trials: int) -> GameConfig:
        """The same game on ``trials`` validation trials: other seeds, never the test tasks."""
        return dataclasses.replace(self, trials=trials, seed=self.seed + VALIDATION_OFFSET)


@dataclass(frozen=True)
class Trials:
    """The drawn trials of one ``game``: ``tasks`` (their ``batch``), ``task_seeds``, which
    are ``members`` ``(T,)``, the tested ``slots`` ``(T,)``, the targets ``x0``
    ``(T, C, H, W)`` and their dataset indices ``target_idx``; under aggregation the
    ``others`` summed with each trial's task (``T * (m - 1)`` tasks, trial by trial)."""

    game: GameConfig
    tasks: list[Task]
    batch: TaskBatch
    task_seeds: list[int]
    members: torch.Tensor
    slots: torch.Tensor
    x0: torch.Tensor
    target_idx: list[int]
    others: TaskBatch | None = None


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
    extra: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # other scores (mamlpriv.scores)

    def save(self, path: str | os.PathLike) -> None:
        """Write the records as CSV (``.csv``) or JSON (anything else), atomically."""
        if str(path).endswith(".csv"):
            buf = io.StringIO(newline="")
            w = csv.DictWriter(buf, fieldnames=list(self.records[0]))
            w.writeheader()
            w.writerows(self.records)
            write_atomic(path, buf.getvalue())
        else:
            write_atomic(path, json.dumps({"config": asdict(self.config), "records": self.records}, indent=1))


def _non_member(dataset: ImageDataset, task: Task, cls: int | None, gen: torch.Generator) -> int:
    """Index of an image outside the task: of class ``cls``, or of any class if None."""
    used = set(task.support_idx.tolist()) | set(task.query_idx.tolist())
    pool = dataset.class_indices()[cls] if cls is not None else None
    while True:
        if pool is not None:
            i = int(pool[torch.randint(pool.numel(), (), generator=gen)])
        else:
            i = int(torch.randint(len(dataset), (), generator=gen))
        if i not in used:
            return i


def draw_trials(dataset: ImageDataset, game: GameConfig) -> Trials:
    """Draw the tasks, members, slots and targets of ``game`` (seed streams
    :attr:`~mamlpriv.seeds.Stream.GAME_TASK` and ``GAME_TRIAL``)."""
    sampler = TaskSampler(dataset, game.ways, game.shots)
    gen = torch.Generator().manual_seed(derive_seed(game.seed, Stream.GAME_TRIAL))
    members = torch.zeros(game.trials, dtype=torch.bool)
    members[torch.randperm(game.trials, generator=gen)[: game.trials // 2]] = True
    task_seeds = [derive_seed(game.seed, Stream.GAME_TASK, t) for t in range(game.trials)]
    tasks = [sampler.sample(s) for s in task_seeds]
    slots = torch.randint(game.ways * game.shots, (game.trials,), generator=gen)
    targets, target_idx = [], []
    for t, task in enumerate(tasks):
        j = int(slots[t])
        own_idx, own_x, own_y = (getattr(task, f"{game.target}_{k}") for k in ("idx", "x", "y"))
        if members[t]:
            idx, x0 = int(own_idx[j]), own_x[j]
        else:
            cls = task.classes[int(own_y[j])]
            idx = _non_member(dataset, task, cls if game.game == "strict" else None, gen)
            x0 = dataset.images[idx]
        targets.append(x0)
        target_idx.append(idx)
    others = None
    if game.aggregate > 1:
        seeds = [
            derive_seed(game.seed, Stream.AGGREGATE, t, k)
            for t in range(game.trials)
            for k in range(game.aggregate - 1)
        ]
        others = stack_tasks([sampler.sample(s) for s in seeds])
    return Trials(game, tasks, stack_tasks(tasks), task_seeds, members, slots, torch.stack(targets), target_idx, others)


def alternatives(dataset: ImageDataset, trials: Trials) -> torch.Tensor:
    """The image in each trial's slot in the world the trial is not in ``(T, C, H, W)``:
    for a non-member trial the task's own image (``x0`` is outside the task); for a member
    trial an image outside the task drawn as the game draws non-members (of the slot's
    class in the strict game), from stream :attr:`~mamlpriv.seeds.Stream.CEILING`."""
    game = trials.game
    gen = torch.Generator().manual_seed(derive_seed(game.seed, Stream.CEILING))
    out = []
    for t, task in enumerate(trials.tasks):
        j = int(trials.slots[t])
        own_x, own_y = (getattr(task, f"{game.target}_{k}") for k in ("x", "y"))
        if not bool(trials.members[t]):
            out.append(own_x[j])
            continue
        cls = task.classes[int(own_y[j])] if game.game == "strict" else None
        out.append(dataset.images[_non_member(dataset, task, cls, gen)])
    return torch.stack(out)


def score_trials(f: Forward, params: Params, trials: Trials, maml: MAMLConfig, attack: AttackConfig | None = None,
                 noise: TaskNoise | None = None, extra: Sequence[str] = (),
                 other: torch.Tensor | None = None, reuse: GameResult | None = None) -> GameResult:  # fmt: skip
    """The task-learners compute their real shared gradients (``noise``: a defence, drawn
    from stream ``GAME_NOISE``), then the attack of ``game.target`` scores every target
    (its initial batches from stream ``GAME_ATTACK``). ``extra`` adds scores of
    :mod:`mamlpriv.scores` on the same trials (:data:`EXTRA_SCORES`): ``"profile"`` (the
    profile likelihood, continuing from the attack's reconstructions) and ``"ceiling"``
    (needs ``other``, the image of each slot in the other world:
    :func:`alternatives`). ``reuse``: the result of another game on the same
    tasks, slots and member targets with the same model, attack and noise (the paper's
    game for the strict one): its member trials are taken as they are and only the others
    are attacked, each from the start it has in a full run (on the CPU every stored member
    trial was bit-for-bit the same in both games)."""
    game = trials.game
    spec = attack_for(game.target)
    attack = attack if attack is not None else spec.defaults
    p, batch, g, own = _released(f, params, trials, maml, noise)
    device = devices.of(p)
    agen = torch.Generator().manual_seed(derive_seed(game.seed, Stream.GAME_ATTACK))
    x0, slots = trials.x0.to(device), trials.slots.to(device)
    if reuse is None:
        res = spec.run(f, p, g, batch, x0, slots, maml, attack, agen)
        ssim, recon, loss = res.scores, res.reconstruction.cpu(), res.loss.cpu()
    else:
        _check_reusable(reuse, trials)
        ssim, recon, loss = reuse.scores.clone(), reuse.reconstructions.clone(), reuse.loss.clone()
        keep = torch.nonzero(~trials.members).flatten()
        if keep.numel():
            res = spec.run(f, p, g, batch, x0, slots, maml, attack, agen, keep=keep.to(device))
            ssim[keep], recon[keep], loss[keep] = res.scores, res.reconstruction.cpu(), res.loss.cpu()
    scores = _extra_scores(f, p, batch, g, own, trials, recon, loss[:, -1], maml, attack, extra, other, noise)
    records = [
        {
            "trial": t,
            "task_seed": trials.task_seeds[t],
            "classes": "-".join(map(str, trials.tasks[t].classes)),
            "slot": int(trials.slots[t]),
            "target_index": trials.target_idx[t],
            "member": bool(trials.members[t]),
            "score": float(ssim[t]),
            "final_loss": float(loss[t, -1]),
            **{f"score_{k}": float(v[t]) for k, v in scores.items()},
        }
        for t in range(game.trials)
    ]
    return GameResult(game, records, ssim, trials.members, trials.x0, recon, trials.slots, loss, scores)


def _check_reusable(reuse: GameResult, trials: Trials) -> None:
    same = (
        reuse.members.shape == trials.members.shape
        and torch.equal(reuse.members, trials.members)
        and torch.equal(reuse.slots, trials.slots)
        and [r["task_seed"] for r in reuse.records] == trials.task_seeds
        and torch.equal(reuse.targets[trials.members], trials.x0[trials.members])
    )
    if not same:
        raise ValueError("reuse must come from a game on the same tasks, slots, members and member targets")


def _released(f: Forward, params: Params, trials: Trials, maml: MAMLConfig,
              noise: TaskNoise | None) -> tuple[Params, TaskBatch, Params, Params]:  # fmt: skip
    """The model's parameters, the trials' tasks (on its device), the gradients the
    adversary sees (each task's real shared gradient, ``noise`` drawn from stream
    ``GAME_NOISE``, plus, under aggregation, those of the trial's other tasks) and the
    trial's own part of them (the same without aggregation)."""
    p = {k: v.detach() for k, v in params.items()}
    batch = trials.batch.to(devices.of(p))  # the trials are drawn on the CPU and follow the model's device
    draw = None
    if noise is not None and noise.active:
        if trials.others is not None:
            raise ValueError("aggregation with a defence is not supported: give aggregate=1 or no noise")
        ngen = torch.Generator().manual_seed(derive_seed(trials.game.seed, Stream.GAME_NOISE))
        draw = draw_noise(
            noise, p, batch.support_x.shape[1:], batch.query_x.shape[1:], maml.inner_steps, ngen, tasks=len(batch)
        )
    g = task_gradients(f, p, batch, maml, draw)[0]
    rest = _others_sum(f, p, trials, maml)
    return p, batch, g if rest is None else {k: g[k] + rest[k] for k in g}, g


def _others_sum(f: Forward, p: Params, trials: Trials, maml: MAMLConfig) -> Params | None:
    """Per trial, the sum of the gradients of its ``m - 1`` other tasks (entries ``(T, ...)``);
    None without aggregation."""
    if trials.others is None:
        return None
    from .audit import aggregate

    return aggregate(task_gradients(f, p, trials.others.to(devices.of(p)), maml)[0], trials.game.aggregate - 1)


def _extra_scores(f: Forward, p: Params, batch: TaskBatch, g: Params, own: Params, trials: Trials,
                  reconstruction: torch.Tensor, final_loss: torch.Tensor, maml: MAMLConfig, attack: AttackConfig,
                  extra: Sequence[str], other: torch.Tensor | None,
                  noise: TaskNoise | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    for name in extra:
        checks.choice("extra", name, ("profile", "ceiling"))
    if "ceiling" in extra and other is None:
        raise ValueError("the ceiling score needs other= (membership.alternatives)")
    device = devices.of(p)
    x0, slots, target = trials.x0.to(device), trials.slots.to(device), trials.game.target
    out: dict[str, torch.Tensor] = {}
    if "profile" in extra:
        pinned = pinned_losses(target, f, p, g, batch, reconstruction.to(device), x0, slots, maml, attack)
        out["profile"] = final_loss.to(torch.float64).cpu() - pinned.cpu()
    if "ceiling" in extra:
        assert other is not None  # the ceiling's adversary knows the other tasks too: it tests the trial's own
        clip = noise.clip if noise is not None else None  # the Gaussian mechanism's clip, applied to both worlds
        out["ceiling"] = ceiling_scores(f, p, own, batch, target, x0, other.to(device), slots, maml, clip=clip).cpu()
    return out


def add_scores(f: Forward, params: Params, trials: Trials, result: GameResult, maml: MAMLConfig,
               attack: AttackConfig | None = None, noise: TaskNoise | None = None, extra: Sequence[str] = (),
               other: torch.Tensor | None = None) -> GameResult:  # fmt: skip
    """``result`` (of :func:`score_trials` on ``trials``) with the ``extra`` scores added,
    computed from its reconstructions (the attack is not run again)."""
    attack = attack if attack is not None else attack_for(trials.game.target).defaults
    p, batch, g, own = _released(f, params, trials, maml, noise)
    new = _extra_scores(
        f, p, batch, g, own, trials, result.reconstructions, result.loss[:, -1], maml, attack, extra, other, noise
    )
    records = [dict(r, **{f"score_{k}": float(v[i]) for k, v in new.items()}) for i, r in enumerate(result.records)]
    return dataclasses.replace(result, records=records, extra={**result.extra, **new})


def play(f: Forward, params: Params, dataset: ImageDataset, game: GameConfig, maml: MAMLConfig,
         attack: AttackConfig | None = None, noise: TaskNoise | None = None) -> GameResult:  # fmt: skip
    """Play ``game.trials`` trials of the membership game against the model ``params``:
    :func:`draw_trials` from ``dataset`` (a split the model was not meta-trained on),
    then :func:`score_trials`. ``maml`` is the task-learner's inner loop (and the
    adversary's simulation of it); ``noise`` perturbs the real task gradients."""
    return score_trials(f, params, draw_trials(dataset, game), maml, attack, noise)


def evaluate_selected(
    f: Forward,
    snapshots: dict[int, Params],
    dataset: ImageDataset,
    game: GameConfig,
    maml: MAMLConfig,
    attacks: Sequence[AttackConfig],
    validation_trials: int = 100,
    noise: TaskNoise | None = None,
    extra: Sequence[str] = (),
) -> dict:
    """One membership cell, with the training stage and the attack's settings chosen on
    ``validation_trials`` separate trials: play the validation game for every snapshot
    (``{meta-iteration: params}``) and every attack config, keep the pair with the
    highest validation AUC (earliest stage, then first attack, on ties), calibrate the
    SSIM threshold there and play ``game`` with it.

    Returns ``"stage"``, ``"attack"`` (the chosen config's fields), ``"validation_auc"``
    (``"stage/attack index" -> AUC``), ``"metrics"`` (test accuracy, recall, precision,
    AUC, TPR at 1% and 10% FPR at that threshold), ``"validation"`` (the same on the
    validation trials) and ``"records"`` (one per test trial, with its prediction).

    ``extra`` (names of :data:`mamlpriv.scores.EXTRA_SCORES`) scores the same validation
    and test trials at the chosen stage and settings with those tests too; ``"scores"``
    then gives, for SSIM and each of them, the test AUC and TPR at 1% and 0.1% FPR and the
    validation AUC (``"combined"``: z(SSIM) + z(profile), standardised with the validation
    trials' means and spreads), and ``"best_test"`` the practical one with the highest
    validation AUC (:func:`best_test`)."""
    return _evaluate(f, snapshots, dataset, game, maml, attacks, validation_trials, noise, extra)[0]


def _evaluate(f: Forward, snapshots: dict[int, Params], dataset: ImageDataset, game: GameConfig, maml: MAMLConfig,
              attacks: Sequence[AttackConfig], validation_trials: int, noise: TaskNoise | None, extra: Sequence[str],
              reuse: tuple[GameResult, GameResult] | None = None) -> tuple[dict, GameResult, GameResult]:  # fmt: skip
    """:func:`evaluate_selected`, also returning the chosen validation and the test results;
    ``reuse`` (one snapshot and one attack only): another game's (validation, test) results
    whose member trials are taken over (:func:`score_trials`)."""
    from .metrics import best_threshold, membership_metrics, roc_auc

    if not snapshots or not attacks:
        raise ValueError("snapshots and attacks must each hold at least one candidate")
    if reuse is not None and (len(snapshots) != 1 or len(attacks) != 1):
        raise ValueError("reuse needs one snapshot and one attack (the stage and settings already chosen)")
    prior_val, prior_test = reuse if reuse is not None else (None, None)
    val_game = game.validation(validation_trials)
    val_trials = draw_trials(dataset, val_game)  # drawn once: the same trials for every candidate
    vals = {
        (st, a): score_trials(f, snapshots[st], val_trials, maml, attack, noise, reuse=prior_val)
        for st in sorted(snapshots)
        for a, attack in enumerate(attacks)
    }
    aucs = {k: roc_auc(v.scores, v.members) for k, v in vals.items()}
    stage, a = max(aucs, key=lambda k: (aucs[k], -k[0], -k[1]))
    chosen = vals[stage, a]
    threshold = best_threshold(chosen.scores, chosen.members)
    test_trials = draw_trials(dataset, game)
    test = score_trials(f, snapshots[stage], test_trials, maml, attacks[a], noise, reuse=prior_test)
    out = {
        "stage": stage,
        "attack": asdict(attacks[a]),
        "validation_auc": {f"{st}/{i}": v for (st, i), v in aucs.items()},
        "metrics": membership_metrics(test.scores, test.members, threshold),
        "validation": membership_metrics(chosen.scores, chosen.members, threshold),
    }
    if extra:
        for name in extra:
            checks.choice("extra", name, EXTRA_SCORES)
        wanted = [n for n in ("profile", "ceiling") if n in extra or (n == "profile" and "combined" in extra)]
        done = []
        for trials, res in ((val_trials, chosen), (test_trials, test)):
            other = alternatives(dataset, trials) if "ceiling" in wanted else None
            done.append(add_scores(f, snapshots[stage], trials, res, maml, attacks[a], noise, wanted, other))
        chosen, test = done
        summary, combined = _score_summary(chosen, test, extra)
        out["scores"], out["best_test"] = summary, best_test(summary)
        if combined is not None:  # the per-trial combined score, beside the raw ones
            test = dataclasses.replace(
                test, records=[dict(r, score_combined=float(c)) for r, c in zip(test.records, combined)]
            )
    out["records"] = [dict(r, prediction=bool(r["score"] > threshold)) for r in test.records]
    return out, chosen, test


def evaluate_games(f: Forward, snapshots: dict[int, Params], dataset: ImageDataset, games: Sequence[GameConfig],
                   maml: MAMLConfig, attack: AttackConfig | None = None, attacks: Sequence[AttackConfig] = (),
                   validation_trials: int = 100, noise: TaskNoise | None = None,
                   extra: Sequence[str] = ()) -> dict[str, dict]:  # fmt: skip
    """Several games on the same tasks: the first chooses the stage (and, among ``attacks``,
    the settings) on its validation trials, the others use that stage. With one attack
    config, the later games take over the first game's member trials (the same task,
    slot, target and start, so the same result) and attack only their non-members.
    Returns ``{game name: result}``: :func:`evaluate_selected`'s results with ``attacks``,
    :func:`evaluate_stages`' with ``attack`` (default: the target's)."""
    if not games:
        raise ValueError("games must hold at least one game")
    candidates = list(attacks) or [attack if attack is not None else attack_for(games[0].target).defaults]
    out: dict[str, dict] = {}
    prior: tuple[GameResult, GameResult] | None = None
    for game in games:
        stage = out[games[0].game]["stage"] if out else None
        snaps = snapshots if stage is None else {stage: snapshots[stage]}
        reuse = prior if len(candidates) == 1 else None
        r, val, test = _evaluate(f, snaps, dataset, game, maml, candidates, validation_trials, noise, extra, reuse)
        out[game.game] = r if attacks else _by_stage(r)
        prior = prior or (val, test)
    return out


# The tests open to the paper's adversary (the ceiling is given what no adversary holds).
PRACTICAL = ("ssim", "profile", "combined")


def best_test(summary: dict[str, dict[str, float]]) -> str:
    """The practical test with the highest validation AUC (SSIM, the paper's, on ties):
    chosen without looking at the test trials."""
    names = [n for n in PRACTICAL if n in summary]
    return max(names, key=lambda n: (summary[n]["validation_auc"], -names.index(n)))


def _score_summary(val: GameResult, test: GameResult,
                   extra: Sequence[str]) -> tuple[dict[str, dict[str, float]], torch.Tensor | None]:  # fmt: skip
    """Test AUC, TPR at 1% and 0.1% FPR and validation AUC of SSIM and each ``extra``
    score, and the combined score of each test trial (None unless ``extra`` asks for it)."""
    from .metrics import roc_auc, tpr_at_fpr

    def z(s: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return (s.double() - ref.double().mean()) / ref.double().std().clamp(min=1e-12)

    pairs = {"ssim": (val.scores, test.scores), **{k: (val.extra[k], test.extra[k]) for k in test.extra}}
    if "combined" in extra:
        (vs, ts), (vp, tp) = pairs["ssim"], pairs["profile"]
        pairs["combined"] = (z(vs, vs) + z(vp, vp), z(ts, vs) + z(tp, vp))
    summary = {
        name: {
            "auc": roc_auc(t, test.members),
            "tpr_at_1pct_fpr": tpr_at_fpr(t, test.members, 0.01),
            "tpr_at_0.1pct_fpr": tpr_at_fpr(t, test.members, 0.001),
            "validation_auc": roc_auc(v, val.members),
        }
        for name, (v, t) in pairs.items()
        if name == "ssim" or name in extra
    }
    return summary, (pairs["combined"][1] if "combined" in extra else None)


def evaluate_stages(
    f: Forward,
    snapshots: dict[int, Params],
    dataset: ImageDataset,
    game: GameConfig,
    maml: MAMLConfig,
    attack: AttackConfig | None = None,
    validation_trials: int = 100,
    noise: TaskNoise | None = None,
    extra: Sequence[str] = (),
) -> dict:
    """:func:`evaluate_selected` with one attack config: only the training stage is
    chosen on the validation trials. Reports ``"stage"`` and
    ``"validation_auc_by_stage"`` (``"stage" -> AUC``) beside the metrics and records."""
    attack = attack if attack is not None else attack_for(game.target).defaults
    return _by_stage(evaluate_selected(f, snapshots, dataset, game, maml, [attack], validation_trials, noise, extra))


def _by_stage(r: dict) -> dict:
    """An :func:`evaluate_selected` result of one attack config in :func:`evaluate_stages`' form."""
    by_stage = {k.split("/")[0]: v for k, v in r["validation_auc"].items()}
    return {
        "stage": r["stage"],
        "validation_auc_by_stage": by_stage,
        **{k: r[k] for k in ("metrics", "validation", "scores", "best_test", "records") if k in r},
    }

"""The paper's experiments as grids of cells, per profile.

A :class:`Profile` says how large every grid is: ``quick`` (CI and laptops, minutes)
and ``paper`` (the paper's scale: 100 test trials with 50 members and 100 separate
validation trials per cell). Each experiment function returns a
:class:`~mamlpriv.runner.Experiment` of typed cells (:mod:`mamlpriv.cells`) for a
profile; its keyword arguments override the profile's grid (the knobs a chapter exposes
to papermill), so ``training_stages("quick", datasets=("fashion-mnist",), ways=5,
stages=(0, 300))`` is the stage sweep on Fashion-MNIST 5-way tasks.

- ``tables-1-2``: Tables I (support) and II (query): dataset x ways x shots x attack,
  each cell playing the paper's game and the strict game. The query attack runs on the
  untrained :data:`~mamlpriv.models.ATTACK_NET`; the support attack on that network
  meta-trained on the task shape of the cell, at the stage with the best validation AUC.
- ``tables-3-4``: attack runtime against iterations and data size (one process).
- ``stronger-tests``: Tables I-II's cells scored by the ceiling and the stronger tests
  of :mod:`mamlpriv.scores` beside SSIM; ``stronger-tests-replication``: its support
  cells in the strict game on a fresh model and fresh trials.
- ``ways-shots``, ``training-stages``: Figures 5-6 (with Tables I-II's cells) and 7-8.
- ``first-order``, ``inner-loop``: first-order MAML; inner learning rate and steps.
- ``defence-attacks``, ``defence-learning``: Figures 9-12 and the Gaussian mechanism.
- ``defence-tests``: the defence-attack cells scored by the stronger tests too.
- ``game-control``: both attacks and games against a gradient drowned in noise.
- ``audit``: the worst-case distinguisher of every defence level, on many trials.
- ``aggregation``: both attacks against sums of task gradients; learning under the
  Gaussian mechanism with the noise per task and once per meta-batch.

``python -m mamlpriv run --profile paper`` runs them all (resumably) into
``results/<profile>/``; the book's chapters read them back through :mod:`mamlpriv.pages`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from . import checks
from .attacks import TARGETS, AttackConfig, attack_for
from .cells import DATASETS, META_BATCH, AnatomyCell, AuditCell, LearningCell, MembershipCell, RuntimeCell, maml_run
from .defenses import LOCATIONS, Defence, GaussianMechanismSpec, RawNoise
from .maml import MAMLConfig
from .runner import PROFILES, Experiment
from .scores import EXTRA_SCORES

# The knobs of the experiment functions; None takes the profile's value.
Names = Sequence[str] | None  # data sets
Shapes = Sequence[tuple[int, int]] | None  # (ways, shots) pairs
Levels = Sequence[float] | None  # noise levels, rates
Counts = Sequence[int] | None  # stages, steps, seeds, sizes
Count = int | None  # trials, validation trials, meta-iterations

INNER_LR = 0.1  # the task-learners' inner rate in every attack experiment
# Figures 5-6: ways at one shot, shots at three ways (the other points are Tables I-II cells)
FIG5_WAYS, FIG6_SHOTS = (3, 5, 7, 10), (1, 2, 3, 5)
# attack learning rates tuned per training stage on validation trials (Figures 7-8)
STAGE_TUNED_LRS = (0.03, 0.1)
# Defences (Figures 9-12): the support attack runs at this stage of noise-free training;
# the Gaussian mechanism clips at DP_CLIP (task gradients of the untrained 3-way 1-shot
# network have norms 0.06-0.10).
DEFENCE_STAGE, DP_CLIP = 300, 0.1
# Per-coordinate std of the validation-gradient noise that drowns the shared gradient in
# the game-control cells: a norm of about 17,000, against task-gradient norms of about
# 0.08 on the untrained network and at most about 20 after 300 meta-iterations (3-way
# 1-shot). At std 1 the support attack's AUC was still 0.6-0.65 in the paper's game.
CONTROL_NOISE = 100.0


@dataclass(frozen=True)
class Profile:
    """The size of every grid. Membership cells: ``trials`` test and ``validation``
    trials, ``train_iterations`` of meta-training, candidate ``stages`` of the support
    attack, the ``grid`` of (ways, shots) of Tables I-II. Runtime: ``runtime_*``.
    Sensitivity: ``sensitivity_datasets``, ``extra_shapes`` (Figures 5-6 beyond the
    grid), ``curve_stages`` (Figures 7-8), ``fo_shapes``, ``inner_lrs``,
    ``inner_steps``. Defences: ``defence_datasets``, image-noise levels ``data_noise``,
    gradient-noise levels ``grad_noise``, ``dp_sigmas``, ``baseline_seeds``. The MAML and
    anatomy chapters: ``maml_iterations``, ``maml_epoch`` (the anatomy's snapshot spacing),
    ``analysis_tasks``, ``sweep_lrs``, ``sweep_steps``. The audit: ``audit_trials`` per
    defence level, ``aggregates`` (task gradients summed), ``audit_seeds`` of the noisy
    learning runs."""

    name: str
    trials: int
    validation: int
    train_iterations: int
    stages: tuple[int, ...]
    grid: tuple[tuple[int, int], ...]
    runtime_iterations: tuple[int, ...]
    runtime_sizes: tuple[int, ...]
    runtime_trials: int
    sensitivity_datasets: tuple[str, ...]
    extra_shapes: tuple[tuple[int, int], ...]
    curve_stages: tuple[int, ...]
    fo_shapes: tuple[tuple[int, int], ...]
    inner_lrs: tuple[float, ...]
    inner_steps: tuple[int, ...]
    defence_datasets: tuple[str, ...]
    data_noise: tuple[float, ...]
    grad_noise: tuple[float, ...]
    dp_sigmas: tuple[float, ...]
    baseline_seeds: tuple[int, ...]
    maml_iterations: int
    maml_epoch: int
    analysis_tasks: int
    sweep_lrs: tuple[float, ...]
    sweep_steps: tuple[int, ...]
    audit_trials: int
    aggregates: tuple[int, ...]
    audit_seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        checks.choice("name", self.name, PROFILES)
        for name in ("trials", "validation"):
            if checks.integer(name, getattr(self, name), 2) % 2:
                raise ValueError(f"{name} must be even, got {getattr(self, name)}")
        for ds in self.sensitivity_datasets + self.defence_datasets:
            checks.choice("datasets", ds, DATASETS)


PROFILE_SETTINGS = {
    "quick": Profile(
        name="quick",
        trials=20,
        validation=20,
        train_iterations=300,
        stages=(300,),
        grid=((3, 1), (5, 1)),
        runtime_iterations=(50,),
        runtime_sizes=(3, 5),
        runtime_trials=4,
        sensitivity_datasets=("mnist",),
        extra_shapes=((10, 1),),
        curve_stages=(0, 300),
        fo_shapes=((3, 1),),
        inner_lrs=(0.3,),
        inner_steps=(2,),
        defence_datasets=("mnist",),
        data_noise=(0.3,),
        grad_noise=(1e-3,),
        dp_sigmas=(0.0, 1.0),  # 0: clipping alone, the baseline of the mechanism
        baseline_seeds=(0,),
        maml_iterations=1000,
        maml_epoch=100,
        analysis_tasks=16,
        sweep_lrs=(0.05, 0.1, 0.2, 0.4, 0.8),
        sweep_steps=(1, 2),
        audit_trials=200,
        aggregates=(1, 4),
        audit_seeds=(0,),
    ),
    "paper": Profile(
        name="paper",
        trials=100,
        validation=100,
        train_iterations=1000,
        stages=(300, 1000),
        grid=tuple((w, s) for w in (3, 5, 7) for s in (1, 2, 3)),
        runtime_iterations=(50, 100, 200),
        runtime_sizes=(3, 5, 10, 15, 20),
        runtime_trials=8,
        sensitivity_datasets=DATASETS,
        extra_shapes=((10, 1), (3, 5)),
        curve_stages=(0, 100, 200, 300, 500, 700, 1000),
        fo_shapes=((3, 1), (5, 1)),
        inner_lrs=(0.01, 0.03, 0.3, 1.0),
        inner_steps=(2, 5),
        defence_datasets=DATASETS,
        data_noise=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
        grad_noise=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
        dp_sigmas=(0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),  # 0: clipping alone
        baseline_seeds=(0, 1, 2, 3, 4),
        maml_iterations=10000,
        maml_epoch=500,
        analysis_tasks=200,
        sweep_lrs=(0.01, 0.05, 0.1, 0.2, 0.4, 0.8),
        sweep_steps=(1, 2, 3, 5),
        audit_trials=1000,
        aggregates=(1, 2, 4, 8),
        audit_seeds=(0, 1, 2),
    ),
}


def profile(name: str) -> Profile:
    """The :class:`Profile` called ``name`` (one of :data:`~mamlpriv.runner.PROFILES`)."""
    return PROFILE_SETTINGS[checks.choice("profile", name, PROFILES)]


def membership(
    p: Profile, dataset: str, target: str, ways: int, shots: int, stages: Sequence[int] | None = None, **extra
) -> MembershipCell:
    """A membership cell of profile ``p`` with the default attack of ``target``; the
    support attack chooses among ``p.stages`` unless ``stages`` is given, the query attack
    runs on the untrained network. ``extra``: other :class:`MembershipCell` fields."""
    if stages is None:
        stages = p.stages if target == "support" else (0,)
    fields = dict(
        dataset=dataset,
        target=target,
        ways=ways,
        shots=shots,
        trials=p.trials,
        validation=p.validation,
        seed=0,
        maml=MAMLConfig(INNER_LR, 1, False),
        train_iterations=p.train_iterations,
        stages=tuple(stages),
        attack=attack_for(target).defaults,
    )
    return MembershipCell(**{**fields, **extra})


def _knob(name: str, value, default):
    """A grid knob: ``default`` (the profile's value) when ``value`` is None; an empty list
    is refused by name (it would silently mean the profile's grid)."""
    if value is None:
        return default
    if isinstance(value, (list, tuple)) and not value:
        raise ValueError(f"{name} must hold at least one value, got {value!r}")
    return value


def _sized(p: Profile, trials: int | None, validation: int | None, train_iterations: int | None) -> Profile:
    """``p`` with the trial counts and training length a chapter asked for."""
    return replace(
        p,
        trials=_knob("trials", trials, p.trials),
        validation=_knob("validation", validation, p.validation),
        train_iterations=_knob("train_iterations", train_iterations, p.train_iterations),
    )


def _shape_cells(p: Profile, datasets: Sequence[str], shapes: Sequence[tuple[int, int]], **extra) -> tuple:
    """Both attacks at every (ways, shots) of ``shapes`` on every data set: the cells of
    Tables I-II and Figures 5-6 (``extra``: other :class:`MembershipCell` fields)."""
    return tuple(membership(p, d, t, w, s, **extra) for d in datasets for w, s in shapes for t in TARGETS)


def tables_1_2(
    name: str, datasets: Names = None, grid: Shapes = None, trials: Count = None, validation: Count = None
) -> Experiment:
    p = _sized(profile(name), trials, validation, None)
    return Experiment("tables-1-2", _shape_cells(p, _knob("datasets", datasets, DATASETS), _knob("grid", grid, p.grid)))


def stronger_tests(
    name: str, datasets: Names = None, grid: Shapes = None, trials: Count = None, validation: Count = None
) -> Experiment:
    """Tables I-II's cells (same trials, stages and attack) scored by the tests beyond
    SSIM too (:data:`~mamlpriv.scores.EXTRA_SCORES`): the ceiling, the profile likelihood
    and SSIM and profile combined; the best practical one is chosen on validation trials."""
    p = _sized(profile(name), trials, validation, None)
    shapes = _knob("grid", grid, p.grid)
    cells = _shape_cells(p, _knob("datasets", datasets, DATASETS), shapes, scores=EXTRA_SCORES)
    return Experiment("stronger-tests", cells)


# The replication of ``stronger-tests``: a fresh model and fresh trials (seed 1), and for
# each shape of the paper profile the stage its seed-0 cell chose on validation trials
# (a test checks the stored cells), so the replication attacks one stage, not two.
REPLICATION_SEED = 1
SEED0_STAGES = {
    **{("fashion-mnist", w, s): 300 for w in (3, 5, 7) for s in (1, 2, 3)},
    ("fashion-mnist", 5, 2): 1000, ("fashion-mnist", 5, 3): 1000,
    **{("mnist", w, s): 1000 for w in (3, 5, 7) for s in (1, 2, 3)},
    ("mnist", 3, 1): 300, ("mnist", 3, 3): 300, ("mnist", 5, 1): 300, ("mnist", 5, 2): 300,
}  # fmt: skip


def stronger_tests_replication(
    name: str, datasets: Names = None, grid: Shapes = None, trials: Count = None, validation: Count = None
) -> Experiment:
    """The support cells of ``stronger-tests`` again with seed :data:`REPLICATION_SEED`
    (a model meta-trained afresh, new validation and test trials), strict game only,
    scored by SSIM, the profile likelihood and their sum: the fresh data on which the
    test chosen once for the whole grid on the seed-0 cells
    (:func:`mamlpriv.strength.grid_choice`) is checked. Each cell attacks the stage of
    :data:`SEED0_STAGES` when it is one of the profile's candidates, else chooses among
    them on its validation trials."""
    p = _sized(profile(name), trials, validation, None)
    cells = []
    for d in _knob("datasets", datasets, DATASETS):
        for w, s in _knob("grid", grid, p.grid):
            stage = SEED0_STAGES.get((d, w, s))
            cells.append(
                membership(
                    p, d, "support", w, s, stages=(stage,) if stage in p.stages else None, seed=REPLICATION_SEED,
                    games=("strict",), scores=("profile", "combined"),
                )
            )  # fmt: skip
    return Experiment("stronger-tests-replication", tuple(cells))


def ways_shots(
    name: str, datasets: Names = None, shapes: Shapes = None, trials: Count = None, validation: Count = None
) -> Experiment:
    """Figures 5-6: the task shapes beyond Tables I-II's grid (10-way 1-shot, 3-way 5-shot)."""
    p = _sized(profile(name), trials, validation, None)
    datasets = _knob("datasets", datasets, p.sensitivity_datasets)
    return Experiment("ways-shots", _shape_cells(p, datasets, _knob("shapes", shapes, p.extra_shapes)))


def maml_variants(name: str, dataset: str = "mnist", ways: int = 5, shots: int = 1, seed: int = 0,
                  inner_lr: float = 0.4, inner_steps: int = 1, fo_long_steps: int = 5,
                  iterations: Count = None) -> Experiment:  # fmt: skip
    """The MAML chapter's runs: second- and first-order MAML with ``inner_steps`` inner
    steps and first-order MAML with ``fo_long_steps``, meta-trained on the default
    :class:`~mamlpriv.models.NetConfig` (GroupNorm) for ``iterations`` (the profile's
    ``maml_iterations``); each keeps its meta-test curve (200 held-out tasks every 100
    iterations)."""
    its = _knob("iterations", iterations, profile(name).maml_iterations)
    cells = tuple(
        maml_run(dataset, ways, shots, seed, MAMLConfig(inner_lr, k, fo), its)
        for fo, k in ((False, inner_steps), (True, inner_steps), (True, fo_long_steps))
    )
    return Experiment("maml-variants", cells)


def gradient_anatomy(name: str, dataset: str = "mnist", ways: int = 5, shots: int = 1, seed: int = 0,
                     inner_lr: float = 0.4, iterations: Count = None) -> Experiment:  # fmt: skip
    """The gradient-anatomy chapter's measurements (:class:`~mamlpriv.cells.AnatomyCell`)
    on the first two runs of :func:`maml_variants`: snapshots every ``maml_epoch`` of the
    profile (a tenth of ``iterations`` when given), ``analysis_tasks`` held-out tasks, the
    sweep over ``sweep_lrs`` and ``sweep_steps``."""
    p = profile(name)
    its = _knob("iterations", iterations, p.maml_iterations)
    every = p.maml_epoch if iterations is None else max(1, its // 10)
    cell = AnatomyCell(dataset, ways, shots, seed, inner_lr, its, every, p.analysis_tasks, p.sweep_lrs, p.sweep_steps,
                       INNER_LR)  # fmt: skip
    return Experiment("gradient-anatomy", (cell,))


def _with_iterations(target: str, iterations: int | None) -> AttackConfig:
    """The default attack of ``target`` with ``iterations`` Adam iterations (None: its own)."""
    spec = attack_for(target)
    return replace(spec.defaults, iterations=_knob("attack_iterations", iterations, spec.defaults.iterations))


def training_stages(name: str, datasets: Names = None, ways: int = 3, shots: int = 1, stages: Counts = None,
                    trials: Count = None, validation: Count = None, train_iterations: Count = None,
                    lrs: Sequence[float] = STAGE_TUNED_LRS, attack_iterations: Count = None) -> Experiment:  # fmt: skip
    """Figures 7-8 (and their strict-game twins): each attack at each training stage of
    ``ways``-way ``shots``-shot meta-training, the attack's learning rate chosen among
    ``lrs`` per stage on validation trials; ``attack_iterations``: the attack's Adam
    iterations (None: its default)."""
    p = _sized(profile(name), trials, validation, train_iterations)
    stages = _knob("stages", stages, None)
    if stages is None:
        stages = p.curve_stages  # the profile's training length reaches its last stage
    else:
        for st in stages:  # before the run's length is derived from them
            checks.integer("stages", st, 0)
        if train_iterations is None:
            p = replace(p, train_iterations=max(1, *stages))  # one run, as long as the last stage
    attack = {t: _with_iterations(t, attack_iterations) for t in TARGETS}
    cells = [
        membership(
            p,
            d,
            t,
            ways,
            shots,
            stages=(st,),
            learning=True,
            attack=attack[t],
            attacks=tuple(replace(attack[t], lr=lr) for lr in lrs),
        )
        for d in (_knob("datasets", datasets, p.sensitivity_datasets))
        for t in TARGETS
        for st in stages
    ]
    return Experiment("training-stages", tuple(cells))


def first_order(
    name: str, datasets: Names = None, shapes: Shapes = None, trials: Count = None, validation: Count = None
) -> Experiment:
    """Both attacks against first-order MAML (paper eq. 7); the second-order twins are
    the Tables I-II cells of the same shape."""
    p = _sized(profile(name), trials, validation, None)
    shapes = _knob("shapes", shapes, p.fo_shapes)
    cells = _shape_cells(p, _knob("datasets", datasets, DATASETS), shapes, maml=MAMLConfig(INNER_LR, 1, True))
    return Experiment("first-order", cells)


def inner_loop(name: str, dataset: str = "mnist", ways: int = 3, shots: int = 1, inner_lrs: Levels = None,
               inner_steps: Counts = None, trials: Count = None, validation: Count = None) -> Experiment:  # fmt: skip
    """Leakage against the inner learning rate and the number of inner steps (inner rate
    :data:`INNER_LR` with one step is the Tables I-II cell)."""
    p = _sized(profile(name), trials, validation, None)
    cells = [
        membership(p, dataset, t, ways, shots, maml=MAMLConfig(lr, 1, False))
        for lr in (_knob("inner_lrs", inner_lrs, p.inner_lrs))
        for t in TARGETS
    ]
    cells += [
        membership(p, dataset, t, ways, shots, maml=MAMLConfig(INNER_LR, k, False))
        for k in (_knob("inner_steps", inner_steps, p.inner_steps))
        for t in TARGETS
    ]
    return Experiment("inner-loop", tuple(cells))


def defences(
    p: Profile, data_noise: Levels = None, grad_noise: Levels = None, dp_sigmas: Levels = None
) -> list[Defence]:
    """Every defence level: the paper's noise at each of :data:`~mamlpriv.defenses.LOCATIONS`
    (image noise at the data locations, gradient noise at the others), then the
    Gaussian mechanism at each noise multiplier."""
    out: list[Defence] = []
    for location in LOCATIONS:
        levels = (
            (_knob("data_noise", data_noise, p.data_noise))
            if location.endswith("_data")
            else (_knob("grad_noise", grad_noise, p.grad_noise))
        )
        out += [RawNoise(location, float(v)) for v in levels]
    return out + [GaussianMechanismSpec(DP_CLIP, float(s)) for s in (_knob("dp_sigmas", dp_sigmas, p.dp_sigmas))]


def _attack_stage(target: str) -> tuple[int]:
    return (0,) if target == "query" else (DEFENCE_STAGE,)


def defence_attacks(
    name: str, datasets: Names = None, trials: Count = None, validation: Count = None, **levels: Levels
) -> Experiment:
    """Figures 9-12 and the Gaussian mechanism, attack side: each attack (paper's game,
    3-way 1-shot) against task gradients perturbed by each defence."""
    return Experiment("defence-attacks", _defence_cells(name, datasets, trials, validation, levels))


def defence_tests(
    name: str, datasets: Names = None, trials: Count = None, validation: Count = None, **levels: Levels
) -> Experiment:
    """The defence-attack cells (same trials, stage and attack, so SSIM is the same) scored
    by the tests beyond SSIM too (:data:`~mamlpriv.scores.EXTRA_SCORES`): how much of each
    defence's protection holds against the best practical test and the ceiling."""
    return Experiment("defence-tests", _defence_cells(name, datasets, trials, validation, levels, scores=EXTRA_SCORES))


def _defence_cells(name: str, datasets: Names, trials: Count, validation: Count, levels: dict[str, Levels],
                   **extra) -> tuple[MembershipCell, ...]:  # fmt: skip
    """Each attack (paper's game, 3-way 1-shot) against each defence level of profile
    ``name``; ``extra``: other :class:`MembershipCell` fields."""
    p = _sized(profile(name), trials, validation, None)
    return tuple(
        membership(p, d, t, 3, 1, stages=_attack_stage(t), games=("paper",), noise=spec, **extra)
        for d in (_knob("datasets", datasets, p.defence_datasets))
        for spec in defences(p, **levels)
        for t in TARGETS
    )


def game_control(name: str, datasets: Names = None, trials: Count = None, validation: Count = None) -> Experiment:
    """What each game gives away without the gradient: both attacks (the defences'
    setting, both games) against task gradients drowned in validation-gradient noise of
    std :data:`CONTROL_NOISE`. Any accuracy above 0.5 here comes from what the attacker
    knows besides the gradient (labels, query set, the target itself), not from it."""
    p = _sized(profile(name), trials, validation, None)
    spec = RawNoise("validation_grad", CONTROL_NOISE)
    cells = [
        membership(p, d, t, 3, 1, stages=_attack_stage(t), noise=spec)
        for d in (_knob("datasets", datasets, p.defence_datasets))
        for t in TARGETS
    ]
    return Experiment("game-control", tuple(cells))


def defence_learning(name: str, datasets: Names = None, baseline_seeds: Counts = None, **levels: Levels) -> Experiment:
    """Figures 9-12 and the Gaussian mechanism, learning side: meta-training under each
    defence, and without one (the baseline) from ``baseline_seeds``: runs of the same
    configuration differ by a few points of meta-test accuracy from seed to seed, so the
    baseline the confident area is measured against is their mean."""
    p = profile(name)
    datasets = _knob("datasets", datasets, p.defence_datasets)

    def cell(d: str, spec: Defence | None, seed: int) -> LearningCell:
        return LearningCell(d, 3, 1, seed, MAMLConfig(INNER_LR), p.train_iterations, spec)

    cells = [cell(d, None, s) for d in datasets for s in (_knob("baseline_seeds", baseline_seeds, p.baseline_seeds))]
    cells += [cell(d, spec, 0) for d in datasets for spec in defences(p, **levels)]
    return Experiment("defence-learning", tuple(cells))


def audit(name: str, datasets: Names = None, trials: Count = None, **levels: Levels) -> Experiment:
    """The worst-case distinguisher (the ceiling, :class:`~mamlpriv.cells.AuditCell`) of
    each attacked set against every defence level of :func:`defence_attacks` and no
    defence, 3-way 1-shot, on ``trials`` trials (the profile's ``audit_trials``)."""
    p = profile(name)
    n = _knob("trials", trials, p.audit_trials)
    cells = [
        AuditCell(d, t, 3, 1, n, 0, MAMLConfig(INNER_LR), p.train_iterations, _attack_stage(t)[0], spec)
        for d in (_knob("datasets", datasets, p.defence_datasets))
        for spec in (None, *defences(p, **levels))
        for t in TARGETS
    ]
    return Experiment("audit", tuple(cells))


def aggregation(name: str, datasets: Names = None, aggregates: Counts = None, seeds: Counts = None,
                dp_sigmas: Levels = None, trials: Count = None, validation: Count = None) -> Experiment:  # fmt: skip
    """Secure aggregation. Attack side: both attacks (paper's game, 3-way 1-shot, with the
    tests of :data:`~mamlpriv.scores.EXTRA_SCORES`) against the sum of m task gradients,
    m in ``aggregates``. Learning side: meta-training under the Gaussian mechanism at
    each of ``dp_sigmas`` with the noise added to each task gradient and once to the
    meta-batch's sum (``shares``), from each of ``seeds``, beside noise-free runs."""
    p = _sized(profile(name), trials, validation, None)
    datasets = _knob("datasets", datasets, p.defence_datasets)
    cells: list = [
        membership(p, d, t, 3, 1, stages=_attack_stage(t), games=("paper",), aggregate=m, scores=EXTRA_SCORES)
        for d in datasets
        for m in (_knob("aggregates", aggregates, p.aggregates))
        for t in TARGETS
    ]
    seeds = _knob("seeds", seeds, p.audit_seeds)
    sigmas = [
        float(v) for v in (_knob("dp_sigmas", dp_sigmas, p.dp_sigmas)) if v > 0
    ]  # 0: clipping alone, no noise to share
    for d in datasets:
        cells += [LearningCell(d, 3, 1, s, MAMLConfig(INNER_LR), p.train_iterations) for s in seeds]
        cells += [
            LearningCell(
                d, 3, 1, s, MAMLConfig(INNER_LR), p.train_iterations, GaussianMechanismSpec(DP_CLIP, v, shares)
            )
            for v in sigmas
            for shares in (1, META_BATCH)
            for s in seeds
        ]
    return Experiment("aggregation", tuple(cells))


def tables_3_4(
    name: str, iterations: Sequence[int] | None = None, sizes: Sequence[int] | None = None, trials: int | None = None
) -> Experiment:
    p = profile(name)
    cells = tuple(
        RuntimeCell(t, it, n, _knob("trials", trials, p.runtime_trials), INNER_LR)
        for t in TARGETS
        for it in (_knob("iterations", iterations, p.runtime_iterations))
        for n in (_knob("sizes", sizes, p.runtime_sizes))
    )
    return Experiment("tables-3-4", cells, parallel=False)


EXPERIMENTS: dict[str, Callable[..., Experiment]] = {
    "tables-1-2": tables_1_2,
    "tables-3-4": tables_3_4,
    "maml-variants": maml_variants,
    "gradient-anatomy": gradient_anatomy,
    "stronger-tests": stronger_tests,
    "stronger-tests-replication": stronger_tests_replication,
    "ways-shots": ways_shots,
    "training-stages": training_stages,
    "first-order": first_order,
    "inner-loop": inner_loop,
    "defence-attacks": defence_attacks,
    "defence-tests": defence_tests,
    "defence-learning": defence_learning,
    "game-control": game_control,
    "audit": audit,
    "aggregation": aggregation,
}


def experiment(name: str, profile_name: str, **knobs) -> Experiment:
    """The experiment called ``name`` (:data:`EXPERIMENTS`) in ``profile_name``."""
    return EXPERIMENTS[checks.choice("experiment", name, tuple(EXPERIMENTS))](profile_name, **knobs)


def experiments(profile_name: str) -> list[Experiment]:
    """Every experiment of ``profile_name``, in the order the book presents them."""
    return [fn(profile_name) for fn in EXPERIMENTS.values()]

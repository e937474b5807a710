"""What one grid cell computes, as typed, frozen configurations.

A cell is a pure function of its configuration (seeds included). Three kinds:

- :class:`MembershipCell`: the membership game against one attacked set (Tables I-II,
  Figures 5-12, first-order MAML, the inner loop, the game control);
- :class:`LearningCell`: meta-test accuracy of MAML meta-trained under a defence
  (Figures 9-12, the Gaussian mechanism's budget);
- :class:`RuntimeCell`: seconds per trial of one attack (Tables III-IV).

Each serialises with ``to_config()`` to the JSON the runner stores (and names the file
by, :func:`mamlpriv.runner.cell_id`) and is rebuilt by ``from_config``; a field at its
default is left out of the JSON, so the stored cells of earlier versions keep their ids.
``compute()`` returns the cell's JSON-able result.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import checks, devices
from .attacks import TARGETS, AttackConfig, attack_for
from .defenses import Defence, defence_from_json, epsilon
from .maml import MAMLConfig, TaskNoise
from .membership import GAMES
from .models import ATTACK_NET, NetConfig, Params, init_params
from .scores import EXTRA_SCORES
from .seeds import Stream, derive_seed

if TYPE_CHECKING:
    import torch

    from .training import TrainConfig

DATASETS = ("mnist", "fashion-mnist")
# The Gaussian mechanism's accounting (LearningCell): meta-batch 4 of a population of
# DP_POPULATION task-learners (Poisson sampling rate META_BATCH / DP_POPULATION), at DP_DELTA.
META_BATCH, DP_POPULATION, DP_DELTA = 4, 1000, 1e-5
# data size (images in the attacked set) -> (ways, shots) used for Tables III-IV
RUNTIME_SHAPES = {3: (3, 1), 5: (5, 1), 10: (5, 2), 15: (5, 3), 20: (5, 4)}


EPOCH_ITERATIONS = 100  # meta-training keeps a snapshot every this many iterations (and at the end)


def runs_dir() -> Path:
    """Where cells cache meta-training runs: ``$MAMLPRIV_RUNS`` or ``~/.cache/mamlpriv/runs``
    (a cache only: a cell's result does not depend on it)."""
    return Path(os.environ.get("MAMLPRIV_RUNS") or Path.home() / ".cache" / "mamlpriv" / "runs")


def _check_keys(kind: str, config: dict, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    if not isinstance(config, dict):
        raise TypeError(f"a {kind} config must be a dict, got {type(config).__name__}")
    missing = [k for k in required if k not in config]
    unknown = sorted(set(config) - set(required) - set(optional))
    if missing or unknown:
        raise ValueError(f"{kind} config: missing keys {missing}, unknown keys {unknown}")


def train_config(cell: MembershipCell | LearningCell | AuditCell, eval_tasks: int = 200,
                 noise: TaskNoise | None = None) -> TrainConfig:  # fmt: skip
    """The meta-training run of ``cell``: ``cell.net`` on its data set and task shape with
    its inner loop, seed and length, meta-batch :data:`META_BATCH`, evaluated on
    ``eval_tasks`` held-out tasks every :data:`EPOCH_ITERATIONS` (a snapshot each time)."""
    from .training import TrainConfig

    extra: dict[str, Any] = {"noise": noise} if noise is not None else {}
    return TrainConfig(
        dataset=cell.dataset, ways=cell.ways, shots=cell.shots, net=cell.net, maml=cell.maml, seed=cell.seed,
        iterations=cell.train_iterations, meta_batch=META_BATCH, epoch_iterations=EPOCH_ITERATIONS,
        eval_tasks=eval_tasks, **extra,
    )  # fmt: skip


def _train(cell: MembershipCell | LearningCell | AuditCell, eval_tasks: int, noise: TaskNoise | None = None):
    """Meta-train (or load from :func:`runs_dir`) the run of :func:`train_config`;
    returns its ``TrainResult``."""
    from .training import meta_train, run_folder

    tc = train_config(cell, eval_tasks, noise)
    return meta_train(tc, out_dir=run_folder(runs_dir(), tc), progress=False)


def _check_run(cell: Any) -> None:
    """The fields every cell that meta-trains shares: data set, task shape, seed, length."""
    checks.choice("dataset", cell.dataset, DATASETS)
    checks.integer("ways", cell.ways, 2)
    checks.integer("shots", cell.shots, 1)
    checks.integer("seed", cell.seed, 0)
    checks.integer("train_iterations", cell.train_iterations, 1)


def _maml_of(c: dict) -> MAMLConfig:
    return MAMLConfig(c["inner_lr"], c.get("inner_steps", 1), c.get("first_order", False))


def _net_of(c: dict) -> NetConfig:
    return NetConfig(**c["net"]) if "net" in c else ATTACK_NET


@dataclass(frozen=True)
class MembershipCell:
    """One membership cell: ``trials`` test trials (half members) and ``validation``
    separate trials of the game against the ``target`` set of ``ways``-way ``shots``-shot
    tasks from ``dataset``'s test split, in each of ``games``.

    The attacked model is ``net`` at each of ``stages`` (meta-iterations; ``(0,)`` alone =
    the untrained network) of meta-training with the task-learners' inner loop ``maml``
    for ``train_iterations``; the stage with the best validation AUC in the first game is
    used for the others too. ``attacks``, when given, are candidate settings chosen on the
    validation trials (else ``attack``); ``learning`` meta-trains even for stage 0 to
    report each stage's learning accuracy; ``noise`` perturbs the real task gradients (a
    defence; the attacked model is trained without it); ``scores`` adds membership tests
    beyond SSIM on the same trials (:data:`mamlpriv.scores.EXTRA_SCORES`); ``aggregate`` =
    m > 1 shows the adversary only the sum of each trial's task gradient and those of
    m - 1 other tasks (secure aggregation; no defence with it)."""

    dataset: str
    target: str
    ways: int
    shots: int
    trials: int
    validation: int
    seed: int
    maml: MAMLConfig
    train_iterations: int
    stages: tuple[int, ...]
    attack: AttackConfig
    attacks: tuple[AttackConfig, ...] = ()
    learning: bool = False
    games: tuple[str, ...] = GAMES
    noise: Defence | None = None
    net: NetConfig = ATTACK_NET
    scores: tuple[str, ...] = ()
    aggregate: int = 1

    kind: ClassVar[str] = "membership"
    _REQUIRED: ClassVar[tuple[str, ...]] = (
        "dataset",
        "target",
        "ways",
        "shots",
        "trials",
        "validation",
        "seed",
        "inner_lr",
        "train_iterations",
        "stages",
        "attack",
    )
    _OPTIONAL: ClassVar[tuple[str, ...]] = (
        "attacks",
        "learning",
        "first_order",
        "inner_steps",
        "games",
        "noise",
        "net",
        "scores",
        "aggregate",
    )

    def __post_init__(self) -> None:
        _check_run(self)
        checks.choice("target", self.target, TARGETS)
        if checks.integer("trials", self.trials, 2) % 2 or checks.integer("validation", self.validation, 2) % 2:
            raise ValueError(f"trials and validation must be even, got {self.trials} and {self.validation}")
        if not self.stages:
            raise ValueError("stages must hold at least one meta-iteration")
        for st in self.stages:
            checks.integer("stages", st, 0, self.train_iterations)
            if st % EPOCH_ITERATIONS and st != self.train_iterations:
                raise ValueError(
                    f"stages must be multiples of {EPOCH_ITERATIONS} or train_iterations="
                    f"{self.train_iterations} (the snapshots meta-training keeps), got {st}"
                )
        if not self.games or len(set(self.games)) != len(self.games):
            raise ValueError(f"games must be distinct names from {GAMES}, got {self.games!r}")
        for g in self.games:
            checks.choice("games", g, GAMES)
        checks.flag("learning", self.learning)
        if len(set(self.scores)) != len(self.scores):
            raise ValueError(f"scores must be distinct, got {self.scores!r}")
        for name in self.scores:
            checks.choice("scores", name, EXTRA_SCORES)
        if "combined" in self.scores and "profile" not in self.scores:
            raise ValueError("scores: 'combined' needs 'profile' too")
        checks.integer("aggregate", self.aggregate, 1)
        if self.aggregate > 1 and self.noise is not None:
            raise ValueError(f"aggregate={self.aggregate} cannot be combined with a defence (noise={self.noise})")
        object.__setattr__(self, "scores", tuple(self.scores))
        object.__setattr__(self, "stages", tuple(int(s) for s in self.stages))
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "games", tuple(self.games))

    @property
    def shape(self) -> tuple[str, str, int, int]:
        """``(dataset, target, ways, shots)``: a point of Tables I-II and Figures 5-6, and
        what pairs a first-order cell with its second-order twin."""
        return (self.dataset, self.target, self.ways, self.shots)

    def to_config(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "dataset": self.dataset,
            "target": self.target,
            "ways": self.ways,
            "shots": self.shots,
            "trials": self.trials,
            "validation": self.validation,
            "seed": self.seed,
            "inner_lr": self.maml.inner_lr,
            "train_iterations": self.train_iterations,
            "stages": list(self.stages),
            "attack": asdict(self.attack),
        }
        if self.attacks:
            d["attacks"] = [asdict(a) for a in self.attacks]
        if self.learning:
            d["learning"] = True
        if self.maml.first_order:
            d["first_order"] = True
        if self.maml.inner_steps != 1:
            d["inner_steps"] = self.maml.inner_steps
        if self.games != GAMES:
            d["games"] = list(self.games)
        if self.noise is not None:
            d["noise"] = self.noise.to_json()
        if self.net != ATTACK_NET:
            d["net"] = asdict(self.net)
        if self.scores:
            d["scores"] = list(self.scores)
        if self.aggregate != 1:
            d["aggregate"] = self.aggregate
        return d

    @classmethod
    def from_config(cls, c: dict) -> MembershipCell:
        _check_keys("membership cell", c, cls._REQUIRED, cls._OPTIONAL)
        plain = ("dataset", "target", "ways", "shots", "trials", "validation", "seed", "train_iterations")
        return cls(
            **{k: c[k] for k in plain}, maml=_maml_of(c), stages=tuple(c["stages"]), net=_net_of(c),
            attack=AttackConfig(**c["attack"]), attacks=tuple(AttackConfig(**a) for a in c.get("attacks", ())),
            learning=c.get("learning", False), games=tuple(c.get("games", GAMES)),
            noise=defence_from_json(c.get("noise")), scores=tuple(c.get("scores", ())),
            aggregate=c.get("aggregate", 1),
        )  # fmt: skip

    def snapshots(self) -> tuple[dict[int, Params], list[dict]]:
        """The attacked models ``({stage: params}, training history)``: stage 0 alone
        (without ``learning``) is the untrained network, no training; otherwise the net
        meta-trained for ``train_iterations`` (cached), at each of ``stages``."""
        if max(self.stages) == 0 and not self.learning:
            return {0: devices.move(init_params(self.net.build(self.ways), seed=self.seed), devices.resolve())}, []
        res = _train(self, eval_tasks=100)
        return {st: res.snapshots[st] for st in self.stages}, res.history

    def compute(self) -> dict:
        """Each game's result (:func:`~mamlpriv.membership.evaluate_selected`, or
        :func:`~mamlpriv.membership.evaluate_stages` with one attack) and ``"learning"``:
        the training history at the attacked stages."""
        from .data import load_dataset
        from .membership import GameConfig, evaluate_games
        from .models import forward

        data = load_dataset(self.dataset, "test")  # never the images the meta-learner trained on
        f = forward(self.net.build(self.ways))
        noise = self.noise.task_noise() if self.noise is not None else None
        snapshots, history = self.snapshots()
        games = [
            GameConfig(self.target, game, self.ways, self.shots, self.trials, self.seed, self.aggregate)
            for game in self.games
        ]
        out: dict[str, Any] = evaluate_games(
            f, snapshots, data, games, self.maml, self.attack, self.attacks, self.validation, noise, self.scores
        )
        out["learning"] = [h for h in history if h.get("iteration") in snapshots] if history else []
        return out

    def gradient_norms(self, tasks: int = 100) -> dict[int, list[float]]:
        """Norms of the noise-free task gradients (all parameters together) of ``tasks``
        test tasks of this cell's shape at each attacked stage: the scale that
        per-coordinate gradient noise must be compared with. ``{stage: [norm, ...]}``."""
        from .data import TaskSampler, load_dataset, stack_tasks
        from .maml import task_gradients
        from .metrics import flat_rows
        from .models import forward

        snapshots, _ = self.snapshots()
        sampler = TaskSampler(load_dataset(self.dataset, "test"), self.ways, self.shots)
        batch = stack_tasks([sampler.sample(derive_seed(self.seed, Stream.PROBE, t)) for t in range(tasks)])
        f = forward(self.net.build(self.ways))
        out = {}
        for st, params in snapshots.items():
            p = {k: v.detach() for k, v in params.items()}
            g = task_gradients(f, p, batch.to(devices.of(p)), self.maml)[0]
            out[st] = flat_rows(g).norm(dim=1).tolist()
        return out


# The optional keys of a learning or audit cell's stored config (absent at their defaults,
# so the ids of the cells stored before them did not change).
_RUN_EXTRAS = ("inner_steps", "first_order", "net")


def _with_run_extras(d: dict[str, Any], maml: MAMLConfig, net: NetConfig) -> dict[str, Any]:
    """``d`` with the inner loop's steps and order (unless MAML's defaults) and the network
    (unless :data:`~mamlpriv.models.ATTACK_NET`) added."""
    if maml != MAMLConfig(maml.inner_lr):
        d.update(inner_steps=maml.inner_steps, first_order=maml.first_order)
    if net != ATTACK_NET:
        d["net"] = asdict(net)
    return d


@dataclass(frozen=True)
class LearningCell:
    """Meta-test accuracy (200 held-out tasks) of ``net`` meta-trained with meta-batch
    :data:`META_BATCH` for ``train_iterations`` under a defence (``noise``; None: the
    noise-free baseline). For the Gaussian mechanism the privacy budget of the whole
    training is added (:data:`DP_POPULATION`, :data:`DP_DELTA`)."""

    dataset: str
    ways: int
    shots: int
    seed: int
    maml: MAMLConfig
    train_iterations: int
    noise: Defence | None = None
    net: NetConfig = ATTACK_NET

    kind: ClassVar[str] = "learning"

    def __post_init__(self) -> None:
        _check_run(self)

    def to_config(self) -> dict[str, Any]:
        d = {
            "dataset": self.dataset,
            "ways": self.ways,
            "shots": self.shots,
            "seed": self.seed,
            "inner_lr": self.maml.inner_lr,
            "train_iterations": self.train_iterations,
            "noise": self.noise.to_json() if self.noise is not None else None,
        }
        return _with_run_extras(d, self.maml, self.net)

    @classmethod
    def from_config(cls, c: dict) -> LearningCell:
        plain = ("dataset", "ways", "shots", "seed", "train_iterations")
        _check_keys("learning cell", c, (*plain, "inner_lr", "noise"), _RUN_EXTRAS)
        return cls(**{k: c[k] for k in plain}, maml=_maml_of(c), noise=defence_from_json(c["noise"]), net=_net_of(c))

    def compute(self) -> dict:
        res = _train(self, eval_tasks=200, noise=self.noise.task_noise() if self.noise is not None else None)
        out: dict[str, Any] = {
            "test_acc": res.history[-1]["test_acc"],
            "test_ci95": res.history[-1]["test_ci95"],
            "history": res.history,
        }
        spec = self.noise.to_json() if self.noise is not None else {}
        if "noise_multiplier" in spec:
            q = META_BATCH / DP_POPULATION
            eps = epsilon(spec["noise_multiplier"], q, self.train_iterations, DP_DELTA)
            out["epsilon"] = eps if math.isfinite(eps) else None  # clipping alone: no finite budget
            out["accounting"] = {
                "sample_rate": q,
                "steps": self.train_iterations,
                "delta": DP_DELTA,
                "population": DP_POPULATION,
                "accountant": "opacus RDP",
            }
        return out


@dataclass(frozen=True)
class RuntimeCell:
    """Seconds per trial of one attack (Tables III-IV): ``trials`` trials batched against
    an untrained :data:`~mamlpriv.models.ATTACK_NET`, attacked sets of ``size`` images
    (:data:`RUNTIME_SHAPES`), default settings but ``iterations``. Only the attack's
    optimisation is timed; run it alone on the machine."""

    target: str
    iterations: int
    size: int
    trials: int
    inner_lr: float

    kind: ClassVar[str] = "runtime"

    def __post_init__(self) -> None:
        checks.choice("target", self.target, TARGETS)
        checks.integer("iterations", self.iterations, 1)
        checks.choice("size", self.size, tuple(RUNTIME_SHAPES))
        checks.integer("trials", self.trials, 1)
        checks.real("inner_lr", self.inner_lr, 0.0, lo_open=True)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, c: dict) -> RuntimeCell:
        _check_keys("runtime cell", c, ("target", "iterations", "size", "trials", "inner_lr"))
        return cls(**c)

    def compute(self) -> dict:
        import torch

        from .data import TaskSampler, load_dataset, stack_tasks
        from .maml import task_gradients
        from .models import forward

        ways, shots = RUNTIME_SHAPES[self.size]
        model = ATTACK_NET.build(ways)
        dev = devices.resolve()
        f, p = forward(model), devices.move(init_params(model, seed=0), dev)
        sampler = TaskSampler(load_dataset("mnist", "test"), ways, shots)
        # tasks seeded (size, trial): the stored runtime cells were drawn so
        batch = stack_tasks([sampler.sample(derive_seed(self.size, t)) for t in range(self.trials)]).to(dev)
        maml = MAMLConfig(self.inner_lr, 1, False)
        g, _, _ = task_gradients(f, p, batch, maml)
        slot = torch.zeros(self.trials, dtype=torch.long, device=dev)
        spec = attack_for(self.target)
        cfg = AttackConfig(**dict(asdict(spec.defaults), iterations=self.iterations))
        x0 = getattr(batch, f"{self.target}_x")[:, 0]
        devices.synchronize(dev)
        t0 = time.perf_counter()
        spec.run(f, p, g, batch, x0, slot, maml, cfg, None)
        devices.synchronize(dev)
        seconds = (time.perf_counter() - t0) / self.trials
        out: dict[str, Any] = {"seconds_per_trial": seconds, "threads": torch.get_num_threads()}
        if dev.type != "cpu":
            out["device"] = str(dev)
        return out


# The audit's lower bound on epsilon: at this delta, one-sided intervals of this level
AUDIT_DELTA, AUDIT_ALPHA = DP_DELTA, 0.05


@dataclass(frozen=True)
class AuditCell:
    """The worst-case distinguisher against one defence: the ceiling statistic
    (:func:`mamlpriv.scores.ceiling_scores`, the adversary given both candidate images
    and the rest of the task) on ``trials`` trials of the paper's game against the
    ``target`` set of ``ways``-way ``shots``-shot tasks from ``dataset``'s test split,
    the task gradients released under ``noise`` by ``net`` at meta-iteration ``stage``
    of ``train_iterations`` of noise-free meta-training (0: the untrained network).
    Under gradient noise (the validation-gradient location, the Gaussian mechanism with
    its clip) the statistic is the exact log-likelihood ratio of the two worlds. No
    attack is run, so the trials can be many: the empirical lower bound on epsilon it
    yields (:func:`mamlpriv.audit.empirical_epsilon`) can only be as large as about
    ``log(trials / 2 / 3)``."""

    dataset: str
    target: str
    ways: int
    shots: int
    trials: int
    seed: int
    maml: MAMLConfig
    train_iterations: int
    stage: int
    noise: Defence | None = None
    net: NetConfig = ATTACK_NET

    kind: ClassVar[str] = "audit"

    def __post_init__(self) -> None:
        _check_run(self)
        checks.choice("target", self.target, TARGETS)
        if checks.integer("trials", self.trials, 2) % 2:
            raise ValueError(f"trials must be even, got {self.trials}")
        checks.integer("stage", self.stage, 0, self.train_iterations)
        if self.stage % EPOCH_ITERATIONS and self.stage != self.train_iterations:
            raise ValueError(f"stage must be a multiple of {EPOCH_ITERATIONS} or train_iterations, got {self.stage}")

    def to_config(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "audit": True, "dataset": self.dataset, "target": self.target, "ways": self.ways,
            "shots": self.shots, "trials": self.trials, "seed": self.seed, "inner_lr": self.maml.inner_lr,
            "train_iterations": self.train_iterations, "stage": self.stage,
            "noise": self.noise.to_json() if self.noise is not None else None,
        }  # fmt: skip
        return _with_run_extras(d, self.maml, self.net)

    @classmethod
    def from_config(cls, c: dict) -> AuditCell:
        plain = ("dataset", "target", "ways", "shots", "trials", "seed", "train_iterations", "stage")
        _check_keys("audit cell", c, ("audit", *plain, "inner_lr", "noise"), _RUN_EXTRAS)
        return cls(**{k: c[k] for k in plain}, maml=_maml_of(c), noise=defence_from_json(c["noise"]), net=_net_of(c))

    def compute(self) -> dict:
        """``auc``, ``tpr_at_1pct_fpr``, ``tpr_at_0.1pct_fpr``, ``empirical`` (the lower
        bound on epsilon and where it was found) and the per-trial ``scores`` and
        ``members`` (for the ROC)."""
        from .audit import empirical_epsilon
        from .data import load_dataset
        from .membership import GameConfig, _released, alternatives, draw_trials
        from .metrics import roc_auc, tpr_at_fpr
        from .models import forward
        from .scores import ceiling_scores

        data = load_dataset(self.dataset, "test")
        f = forward(self.net.build(self.ways))
        if self.stage == 0:
            params = devices.move(init_params(self.net.build(self.ways), seed=self.seed), devices.resolve())
        else:
            params = _train(self, eval_tasks=100).snapshots[self.stage]
        trials = draw_trials(data, GameConfig(self.target, "paper", self.ways, self.shots, self.trials, self.seed))
        tn = self.noise.task_noise() if self.noise is not None else None
        p, batch, g, _ = _released(f, params, trials, self.maml, tn)
        dev = devices.of(p)
        other = alternatives(data, trials).to(dev)
        x0, slots = trials.x0.to(dev), trials.slots.to(dev)
        s = ceiling_scores(f, p, g, batch, self.target, x0, other, slots, self.maml,
                           clip=tn.clip if tn is not None else None).cpu()  # fmt: skip
        m = trials.members
        return {
            "auc": roc_auc(s, m),
            "tpr_at_1pct_fpr": tpr_at_fpr(s, m, 0.01),
            "tpr_at_0.1pct_fpr": tpr_at_fpr(s, m, 0.001),
            "empirical": empirical_epsilon(s, m, delta=AUDIT_DELTA, alpha=AUDIT_ALPHA),
            "scores": [float(f"{v:.7g}") for v in s.tolist()],
            "members": m.tolist(),
        }


def maml_run(dataset: str, ways: int, shots: int, seed: int, maml: MAMLConfig, train_iterations: int) -> LearningCell:
    """A run of the MAML chapter: ``maml`` meta-training the default
    :class:`~mamlpriv.models.NetConfig` (GroupNorm); :class:`AnatomyCell` analyses two."""
    return LearningCell(dataset, ways, shots, seed, maml, train_iterations, net=NetConfig())


@dataclass(frozen=True)
class AnatomyCell:
    """The gradient-anatomy chapter's measurements on the MAML chapter's second- and
    first-order runs (one inner step at ``inner_lr``, the default
    :class:`~mamlpriv.models.NetConfig`, ``train_iterations``; the same cached runs as
    their :class:`LearningCell`), on ``tasks`` held-out tasks of the test split:

    - ``decomposition``: per run and snapshot (every ``every`` meta-iterations and the
      last) the support share |g - g_FO| / |g| (mean, sd), cos(g, g_FO) and |g|;
    - ``swaps``: per run and snapshot, the cosine between the gradient the run shares and
      the one after one set is swapped (:func:`mamlpriv.analysis.swap_cosines`), mean over
      tasks (and at the last snapshot ``per_task``, for paired comparisons);
    - ``sweep``: on the final second-order model, the support share and the same-class
      swap cosines at each inner rate of ``sweep_lrs`` and step count of ``sweep_steps``;
    - ``attack_swaps``: the swap cosines on the untrained attacked network
      (:data:`~mamlpriv.models.ATTACK_NET`, 3-way 1-shot, inner rate ``attack_inner_lr``),
      mean and ``per_task``."""

    dataset: str
    ways: int
    shots: int
    seed: int
    inner_lr: float
    train_iterations: int
    every: int
    tasks: int
    sweep_lrs: tuple[float, ...]
    sweep_steps: tuple[int, ...]
    attack_inner_lr: float

    kind: ClassVar[str] = "anatomy"

    def __post_init__(self) -> None:
        _check_run(self)
        checks.real("inner_lr", self.inner_lr, 0.0, lo_open=True)
        checks.real("attack_inner_lr", self.attack_inner_lr, 0.0, lo_open=True)
        checks.integer("every", self.every, 1)
        checks.integer("tasks", self.tasks, 2)
        for name in ("sweep_lrs", "sweep_steps"):
            if not isinstance(getattr(self, name), tuple) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty tuple, got {getattr(self, name)!r}")
        for lr in self.sweep_lrs:
            checks.real("sweep_lrs", lr, 0.0, lo_open=True)
        for k in self.sweep_steps:
            checks.integer("sweep_steps", k, 1)

    def run(self, first_order: bool) -> LearningCell:
        """The MAML chapter's run this cell analyses."""
        maml = MAMLConfig(self.inner_lr, 1, first_order)
        return maml_run(self.dataset, self.ways, self.shots, self.seed, maml, self.train_iterations)

    def to_config(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(anatomy=True, sweep_lrs=list(self.sweep_lrs), sweep_steps=list(self.sweep_steps))
        return d

    @classmethod
    def from_config(cls, c: dict) -> AnatomyCell:
        names = ("dataset", "ways", "shots", "seed", "inner_lr", "train_iterations", "every", "tasks",
                 "sweep_lrs", "sweep_steps", "attack_inner_lr")  # fmt: skip
        _check_keys("anatomy cell", c, ("anatomy", *names))
        d = {k: c[k] for k in names}
        return cls(**{**d, "sweep_lrs": tuple(d["sweep_lrs"]), "sweep_steps": tuple(d["sweep_steps"])})

    def compute(self) -> dict:
        from .analysis import decomposition_stats, swap_cosines
        from .data import TaskSampler, load_dataset, stack_tasks
        from .models import forward

        test = load_dataset(self.dataset, "test")

        def probe_tasks(ways: int, shots: int) -> list:
            sampler = TaskSampler(test, ways, shots)
            return [sampler.sample(derive_seed(self.seed, Stream.PROBE, i)) for i in range(self.tasks)]

        def mean(v: torch.Tensor) -> float:
            return float(v.mean())

        def per_task(v: torch.Tensor) -> list[float]:  # kept for paired comparisons
            return [round(float(c), 6) for c in v]

        tasks = probe_tasks(self.ways, self.shots)
        batch = stack_tasks(tasks)
        second_order = MAMLConfig(self.inner_lr, 1, False)  # the decomposition of g, for both runs
        out: dict[str, Any] = {"decomposition": [], "swaps": [], "sweep": [], "attack_swaps": [], "train_seconds": {}}
        for run, fo in (("second-order", False), ("first-order", True)):
            res = _train(self.run(fo), eval_tasks=200)
            f, last = res.forward, max(res.snapshots)
            out["train_seconds"][run] = res.history[-1]["train_seconds"]
            for it, params in sorted(res.snapshots.items()):
                if it % self.every and it != last:
                    continue
                st = decomposition_stats(f, params, batch, second_order)
                out["decomposition"].append({
                    "run": run, "iteration": it, "support_share": mean(st["support_share"]),
                    "support_share_sd": float(st["support_share"].std()), "cos_fo": mean(st["cos_fo"]),
                    "g_norm": mean(st["g_norm"]),
                })  # fmt: skip
                cos = swap_cosines(f, params, test, tasks, MAMLConfig(self.inner_lr, 1, fo), seed=self.seed)
                out["swaps"] += [
                    {"run": run, "iteration": it, "set": which, "replacement": kind, "cosine": mean(v)}
                    | ({"per_task": per_task(v)} if it == last else {})
                    for (which, kind), v in cos.items()
                ]
            if fo:
                continue
            for k in self.sweep_steps:  # the sweep, on the final second-order model
                for lr in self.sweep_lrs:
                    cfg = MAMLConfig(lr, k, False)
                    st = decomposition_stats(f, res.params, batch, cfg)
                    cos = swap_cosines(f, res.params, test, tasks, cfg, seed=self.seed)
                    out["sweep"].append({
                        "k": k, "alpha": lr, "support_share": mean(st["support_share"]),
                        "cos_support_swap": mean(cos[("support", "same-class")]),
                        "cos_query_swap": mean(cos[("query", "same-class")]),
                    })  # fmt: skip
        model = ATTACK_NET.build(3)
        cos = swap_cosines(forward(model), init_params(model, seed=self.seed), test, probe_tasks(3, 1),
                           MAMLConfig(self.attack_inner_lr, 1, False), seed=self.seed)  # fmt: skip
        out["attack_swaps"] = [
            {"set": which, "replacement": kind, "cosine": mean(v), "per_task": per_task(v)}
            for (which, kind), v in cos.items()
        ]
        return out


Cell = MembershipCell | LearningCell | RuntimeCell | AuditCell | AnatomyCell
KINDS: dict[str, type] = {c.kind: c for c in (MembershipCell, LearningCell, RuntimeCell, AuditCell, AnatomyCell)}


def from_config(config: dict) -> Cell:
    """The typed cell of a stored configuration (its kind read off its keys)."""
    if not isinstance(config, dict):
        raise TypeError(f"a cell config must be a dict, got {type(config).__name__}")
    if "size" in config:
        return RuntimeCell.from_config(config)
    if "audit" in config:
        return AuditCell.from_config(config)
    if "anatomy" in config:
        return AnatomyCell.from_config(config)
    if "target" in config:
        return MembershipCell.from_config(config)
    return LearningCell.from_config(config)


def shape_key(config: dict) -> tuple[str, str, int, int]:
    """``(dataset, target, ways, shots)`` of a stored membership config (:attr:`MembershipCell.shape`)."""
    return MembershipCell.from_config(config).shape


__all__ = [
    "AnatomyCell",
    "AuditCell",
    "Cell",
    "LearningCell",
    "MembershipCell",
    "RuntimeCell",
    "from_config",
    "shape_key",
    "runs_dir",
    "DATASETS",
    "GAMES",
    "KINDS",
    "RUNTIME_SHAPES",
]

"""The paper's experiments as :class:`~mamlpriv.runner.Experiment` grids, per profile.

``experiments(profile)`` lists them; ``python -m mamlpriv run --profile paper`` runs them
all (resumably) into ``results/<profile>/``, and the book's chapters read them back.

- ``tables-1-2``: the membership cells of Tables I (support) and II (query): dataset x
  ways x shots x attack, each cell playing the paper's game and the strict game. The
  query attack runs on the untrained :data:`~mamlpriv.experiments.ATTACK_NET`; the
  support attack on that network meta-trained on the task shape of the cell, at the
  training stage with the best validation AUC among ``stages``.
- ``tables-3-4``: attack runtime against iterations and data size (one process).
- ``ways-shots``, ``training-stages``: Figures 5-6 (with Tables I-II's cells) and 7-8.
- ``first-order``, ``inner-loop``: first-order MAML; inner learning rate and steps.
- ``defence-attacks``, ``defence-learning``: Figures 9-12 and the Gaussian mechanism's
  privacy budget (attack accuracy and learning accuracy under each defence).
- ``game-control``: both attacks and games against a shared gradient drowned in noise
  (what the game gives away without the gradient).

Profiles: ``quick`` (CI and laptops, minutes) and ``paper`` (the paper's scale: 100 test
trials with 50 members and 100 separate validation trials per cell).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from .runner import PROFILES, Experiment

DATASETS = ("mnist", "fashion-mnist")
INNER_LR = 0.1  # the task-learners' inner rate in every attack experiment

_SCALE = {
    "quick": dict(trials=20, validation=20, train_iterations=300, stages=(300,),
                  grid=((3, 1), (5, 1)), runtime_iterations=(50,), runtime_sizes=(3, 5), runtime_trials=4,
                  sensitivity_datasets=("mnist",), extra_shapes=((10, 1),),
                  curve_stages=(0, 300), fo_shapes=((3, 1),), inner_lrs=(0.3,), inner_steps=(2,),
                  defence_datasets=("mnist",), data_noise=(0.3,), grad_noise=(1e-3,), dp_sigmas=(1.0,),
                  baseline_seeds=(0,)),
    "paper": dict(trials=100, validation=100, train_iterations=1000, stages=(300, 1000),
                  grid=tuple((w, s) for w in (3, 5, 7) for s in (1, 2, 3)),
                  runtime_iterations=(50, 100, 200), runtime_sizes=(3, 5, 10, 15, 20), runtime_trials=8,
                  sensitivity_datasets=DATASETS, extra_shapes=((10, 1), (3, 5)),
                  curve_stages=(0, 100, 200, 300, 500, 700, 1000), fo_shapes=((3, 1), (5, 1)),
                  inner_lrs=(0.01, 0.03, 0.3, 1.0), inner_steps=(2, 5),
                  defence_datasets=DATASETS, data_noise=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
                  grad_noise=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
                  dp_sigmas=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0), baseline_seeds=(0, 1, 2, 3, 4)),
}
# Figures 5-6: ways at one shot, shots at three ways (the other points are Tables I-II cells)
FIG5_WAYS, FIG6_SHOTS = (3, 5, 7, 10), (1, 2, 3, 5)
# attack settings tuned per training stage on validation trials (Figures 7-8)
STAGE_TUNED_LRS = (0.03, 0.1)
# Defences (Figures 9-12): the support attack runs at this stage of noise-free training;
# the Gaussian mechanism clips at DP_CLIP (task gradients of the untrained 3-way 1-shot
# network have norms 0.06-0.10) and is accounted for DP_POPULATION task-learners, each
# sampled with probability meta_batch / DP_POPULATION, at DP_DELTA.
DEFENCE_STAGE, DP_CLIP, DP_POPULATION, DP_DELTA, META_BATCH = 300, 0.1, 1000, 1e-5, 4


def scale(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return dict(_SCALE[profile])


def runs_dir() -> Path:
    """Where cells cache meta-training runs: ``$MAMLPRIV_RUNS`` or ``~/.cache/mamlpriv/runs``
    (a cache only: a cell's result does not depend on it)."""
    return Path(os.environ.get("MAMLPRIV_RUNS") or Path.home() / ".cache" / "mamlpriv" / "runs")


def membership_cell(config: dict) -> dict:
    """One membership cell (Tables I-II, Figures 5-8, the first-order and inner-loop
    comparisons). ``config``: dataset, target, ways, shots, trials, validation, seed,
    inner_lr, train_iterations, stages (meta-iterations; ``[0]`` = the untrained
    network, no training), attack (the attack config's fields); optional: attacks (a
    list of candidate attack configs, chosen per game on the validation trials),
    first_order, inner_steps, games (default both), learning (meta-train even for
    stage 0, to report the learning accuracy of every stage), noise (a defence on the
    real task gradients, :func:`noise_from`; the attacked model is trained without it).

    The support attack (and the query attack at a stage > 0) runs on ATTACK_NET
    meta-trained with the cell's ways, shots and inner loop; the stage with the best
    validation AUC in the paper's game is used for the strict game as well."""
    from .attacks import QueryAttackConfig, SupportAttackConfig
    from .data import load_dataset
    from .experiments import ATTACK_NET, GAMES, GameConfig, evaluate_selected, evaluate_stages
    from .models import ConvNet, forward

    w, s, target = config["ways"], config["shots"], config["target"]
    data = load_dataset(config["dataset"], "test")  # never the images the meta-learner trained on
    f = forward(ConvNet(w, **ATTACK_NET))
    maml = _maml(config)
    cls = QueryAttackConfig if target == "query" else SupportAttackConfig
    noise = noise_from(config.get("noise"))
    snapshots, history = attacked_snapshots(config)
    out = {}
    stage = None
    for game in config.get("games", GAMES):
        g = GameConfig(target, game, w, s, config["trials"], config["seed"])
        snaps = snapshots if stage is None else {stage: snapshots[stage]}
        if "attacks" in config:
            r = evaluate_selected(f, snaps, data, g, maml, [cls(**a) for a in config["attacks"]], config["validation"],
                                  noise)
        else:
            r = evaluate_stages(f, snaps, data, g, maml, cls(**config["attack"]), config["validation"], noise)
        stage = r["stage"]
        out[game] = r
    out["learning"] = [h for h in history if h.get("iteration") in snapshots] if history else []
    return out


def _maml(config: dict):
    from .maml import MAMLConfig

    return MAMLConfig(config["inner_lr"], config.get("inner_steps", 1), config.get("first_order", False))


def attacked_snapshots(config: dict) -> tuple[dict, list[dict]]:
    """The models a membership cell attacks: ``({stage: params}, training history)``.
    Stage 0 alone (without ``learning``) is the untrained network, no training;
    otherwise ATTACK_NET meta-trained with the cell's task shape and inner loop for
    ``train_iterations`` (cached in :func:`runs_dir`), at each of ``stages``."""
    from .experiments import ATTACK_NET
    from .models import ConvNet, init_params
    from .training import TrainConfig, meta_train, run_folder

    w, s = config["ways"], config["shots"]
    if max(config["stages"]) == 0 and not config.get("learning", False):
        return {0: init_params(ConvNet(w, **ATTACK_NET), seed=config["seed"])}, []
    maml = _maml(config)
    tc = TrainConfig(dataset=config["dataset"], ways=w, shots=s, **ATTACK_NET, inner_lr=maml.inner_lr,
                     inner_steps=maml.inner_steps, first_order=maml.first_order, seed=config["seed"],
                     iterations=config["train_iterations"], epoch_iterations=100, eval_tasks=100)
    res = meta_train(tc, out_dir=run_folder(runs_dir(), tc), progress=False)
    return {st: res.snapshots[st] for st in config["stages"]}, res.history


def gradient_norms(config: dict, tasks: int = 100) -> dict[int, list[float]]:
    """Norms of the noise-free task gradients (all parameters together) of ``tasks``
    test tasks of a membership cell's shape at each of its attacked ``stages``: the scale
    that per-coordinate gradient noise must be compared with. ``{stage: [norm, ...]}``."""
    from .data import TaskSampler, derive_seed, load_dataset, stack_tasks
    from .experiments import ATTACK_NET
    from .maml import task_gradients
    from .metrics import flat_rows
    from .models import ConvNet, forward

    snapshots, _ = attacked_snapshots(config)
    data = load_dataset(config["dataset"], "test")
    sampler = TaskSampler(data, config["ways"], config["shots"])
    batch = stack_tasks([sampler.sample(derive_seed(config["seed"], 7, t)) for t in range(tasks)])
    f, maml = forward(ConvNet(config["ways"], **ATTACK_NET)), _maml(config)
    out = {}
    for st, params in snapshots.items():
        g = task_gradients(f, {k: v.detach() for k, v in params.items()}, batch, maml)[0]
        out[st] = flat_rows(g).norm(dim=1).tolist()
    return out


def noise_from(spec: dict | None):
    """A defence from its JSON spec: ``{"location": ..., "std": ...}`` (the paper's noise)
    or ``{"clip": ..., "noise_multiplier": ...}`` (the Gaussian mechanism); None: none."""
    from .defenses import gaussian_mechanism, noise_at

    if not spec:
        return None
    if "location" in spec:
        return noise_at(spec["location"], spec["std"])
    return gaussian_mechanism(spec["clip"], spec["noise_multiplier"])


def learning_cell(config: dict) -> dict:
    """Meta-test accuracy of ATTACK_NET meta-trained with a defence (``noise`` spec or
    none): dataset, ways, shots, seed, inner_lr, train_iterations, noise. For the
    Gaussian mechanism the privacy budget of the whole training is added."""
    from .defenses import epsilon
    from .experiments import ATTACK_NET
    from .training import TrainConfig, meta_train, run_folder

    noise = noise_from(config.get("noise"))
    extra = {"noise": noise} if noise is not None else {}
    tc = TrainConfig(dataset=config["dataset"], ways=config["ways"], shots=config["shots"], **ATTACK_NET,
                     inner_lr=config["inner_lr"], seed=config["seed"], iterations=config["train_iterations"],
                     meta_batch=META_BATCH, epoch_iterations=100, eval_tasks=200, **extra)
    res = meta_train(tc, out_dir=run_folder(runs_dir(), tc), progress=False)
    out = {"test_acc": res.history[-1]["test_acc"], "test_ci95": res.history[-1]["test_ci95"],
           "history": res.history}
    spec = config.get("noise") or {}
    if "noise_multiplier" in spec:
        q = META_BATCH / DP_POPULATION
        out["epsilon"] = epsilon(spec["noise_multiplier"], q, config["train_iterations"], DP_DELTA)
        out["accounting"] = {"sample_rate": q, "steps": config["train_iterations"], "delta": DP_DELTA,
                             "population": DP_POPULATION, "accountant": "opacus RDP"}
    return out


def runtime_cell(config: dict) -> dict:
    """Seconds per trial of one attack (Tables III-IV)."""
    import torch

    from .data import load_dataset
    from .experiments import attack_runtime

    data = load_dataset("mnist", "test")
    secs = attack_runtime(config["target"], config["size"], config["iterations"], config["trials"], data,
                          config["inner_lr"])
    return {"seconds_per_trial": secs, "threads": torch.get_num_threads()}


def _cell(p: dict, dataset: str, target: str, w: int, s: int, stages=None, **extra) -> dict:
    """A membership cell's configuration (key order fixed: it names the result file)."""
    from .attacks import QueryAttackConfig, SupportAttackConfig

    attack = QueryAttackConfig() if target == "query" else SupportAttackConfig()
    if stages is None:
        stages = list(p["stages"]) if target == "support" else [0]
    return {"dataset": dataset, "target": target, "ways": w, "shots": s, "trials": p["trials"],
            "validation": p["validation"], "seed": 0, "inner_lr": INNER_LR, "train_iterations": p["train_iterations"],
            "stages": list(stages), "attack": asdict(attack), **extra}


TARGETS = ("query", "support")


def tables_1_2(profile: str) -> Experiment:
    p = scale(profile)
    cells = [_cell(p, d, t, w, s) for d in DATASETS for w, s in p["grid"] for t in TARGETS]
    return Experiment("tables-1-2", membership_cell, tuple(cells))


def ways_shots(profile: str) -> Experiment:
    """Figures 5-6: the task shapes beyond Tables I-II's grid (10-way 1-shot, 3-way 5-shot)."""
    p = scale(profile)
    cells = [_cell(p, d, t, w, s) for d in p["sensitivity_datasets"] for w, s in p["extra_shapes"] for t in TARGETS]
    return Experiment("ways-shots", membership_cell, tuple(cells))


def training_stages(profile: str) -> Experiment:
    """Figures 7-8 (and their strict-game twins): each attack at each training stage of
    3-way 1-shot meta-training, the attack's learning rate tuned per stage on validation."""
    from .attacks import QueryAttackConfig, SupportAttackConfig

    p = scale(profile)
    cells = []
    for d in p["sensitivity_datasets"]:
        for t in TARGETS:
            cls = QueryAttackConfig if t == "query" else SupportAttackConfig
            for st in p["curve_stages"]:
                cells.append(_cell(p, d, t, 3, 1, stages=[st], attacks=[asdict(cls(lr=lr)) for lr in STAGE_TUNED_LRS],
                                   learning=True))
    return Experiment("training-stages", membership_cell, tuple(cells))


def first_order(profile: str) -> Experiment:
    """Both attacks against first-order MAML (paper eq. 7); the second-order twins are
    the Tables I-II cells of the same shape."""
    p = scale(profile)
    cells = [_cell(p, d, t, w, s, first_order=True) for d in DATASETS for w, s in p["fo_shapes"] for t in TARGETS]
    return Experiment("first-order", membership_cell, tuple(cells))


def inner_loop(profile: str) -> Experiment:
    """Leakage against the inner learning rate and the number of inner steps (MNIST
    3-way 1-shot; inner rate 0.1 with one step is the Tables I-II cell)."""
    p = scale(profile)
    cells = [dict(_cell(p, "mnist", t, 3, 1), inner_lr=lr) for lr in p["inner_lrs"] for t in TARGETS]
    cells += [_cell(p, "mnist", t, 3, 1, inner_steps=k) for k in p["inner_steps"] for t in TARGETS]
    return Experiment("inner-loop", membership_cell, tuple(cells))


def _noise_specs(p: dict) -> list[dict]:
    specs = []
    for location in ("support_data", "adaptation_grad", "query_data", "validation_grad"):
        levels = p["data_noise"] if location.endswith("_data") else p["grad_noise"]
        specs += [{"location": location, "std": float(v)} for v in levels]
    return specs


def _dp_specs(p: dict) -> list[dict]:
    return [{"clip": DP_CLIP, "noise_multiplier": float(s)} for s in p["dp_sigmas"]]


def defence_attacks(profile: str) -> Experiment:
    """Figures 9-12 and the DP plot, attack side: each attack (paper's game, 3-way
    1-shot) against task gradients perturbed by each defence."""
    p = scale(profile)
    cells = []
    for d in p["defence_datasets"]:
        for spec in _noise_specs(p) + _dp_specs(p):
            for t in TARGETS:
                stages = [0] if t == "query" else [DEFENCE_STAGE]
                cells.append(_cell(p, d, t, 3, 1, stages=stages, games=["paper"], noise=spec))
    return Experiment("defence-attacks", membership_cell, tuple(cells))


# Per-coordinate std of the validation-gradient noise that drowns the shared gradient in
# the game-control cells: a norm of about 17,000, against task-gradient norms of about
# 0.08 on the untrained network and at most about 20 after 300 meta-iterations (3-way
# 1-shot). At std 1 the support attack's AUC was still 0.6-0.65 in the paper's game.
CONTROL_NOISE = 100.0


def game_control(profile: str) -> Experiment:
    """What each game gives away without the gradient: both attacks (the defences'
    setting, both games) against task gradients drowned in validation-gradient noise of
    std :data:`CONTROL_NOISE`. Any accuracy above 0.5 here comes from what the attacker
    knows besides the gradient (labels, query set, the target itself), not from it."""
    p = scale(profile)
    spec = {"location": "validation_grad", "std": CONTROL_NOISE}
    cells = [_cell(p, d, t, 3, 1, stages=[0] if t == "query" else [DEFENCE_STAGE], noise=spec)
             for d in p["defence_datasets"] for t in TARGETS]
    return Experiment("game-control", membership_cell, tuple(cells))


def defence_learning(profile: str) -> Experiment:
    """Figures 9-12 and the DP plot, learning side: meta-training under each defence, and
    without one (the baseline) from ``baseline_seeds``: runs of the same configuration
    differ by a few points of meta-test accuracy from seed to seed, so the baseline the
    confident area is measured against is their mean."""
    p = scale(profile)

    def cell(d: str, spec: dict | None, seed: int) -> dict:
        return {"dataset": d, "ways": 3, "shots": 1, "seed": seed, "inner_lr": INNER_LR,
                "train_iterations": p["train_iterations"], "noise": spec}

    cells = [cell(d, None, s) for d in p["defence_datasets"] for s in p["baseline_seeds"]]
    cells += [cell(d, spec, 0) for d in p["defence_datasets"] for spec in _noise_specs(p) + _dp_specs(p)]
    return Experiment("defence-learning", learning_cell, tuple(cells))


def tables_3_4(profile: str) -> Experiment:
    p = scale(profile)
    cells = tuple({"target": t, "iterations": it, "size": n, "trials": p["runtime_trials"], "inner_lr": INNER_LR}
                  for t in ("query", "support") for it in p["runtime_iterations"] for n in p["runtime_sizes"])
    return Experiment("tables-3-4", runtime_cell, cells, parallel=False)


def _noise_key(config: dict) -> str:
    from .defenses import spec_key

    return spec_key(config.get("noise"))


def shape_key(config: dict) -> tuple:
    """``(dataset, target, ways, shots)`` of a membership cell's config: what makes it a
    point of Tables I-II and Figures 5-6, and pairs a first-order cell with its
    second-order twin."""
    return (config["dataset"], config["target"], config["ways"], config["shots"])


# What makes a cell a point of a table or figure, whatever the profile's scale (trials,
# training length, candidate stages): a page shows the paper profile's cell of a point
# when it is stored and its own profile's cell otherwise, never both.
POINT_KEYS = {
    "tables-1-2": shape_key,
    "tables-3-4": lambda c: (c["target"], c["iterations"], c["size"]),
    "ways-shots": shape_key,
    "training-stages": lambda c: (c["dataset"], c["target"], tuple(c["stages"])),
    "first-order": shape_key,
    "inner-loop": lambda c: (c["target"], c["inner_lr"], c.get("inner_steps", 1)),
    "defence-attacks": lambda c: (c["dataset"], c["target"], _noise_key(c)),
    "defence-learning": lambda c: (c["dataset"], c["seed"], _noise_key(c)),
    "game-control": lambda c: (c["dataset"], c["target"]),
}


def shown(experiment_for, profile: str, root: str | os.PathLike = "results", compute: bool = True) -> list[dict]:
    """The cells a page of ``profile`` shows for one experiment (``experiment_for``, e.g.
    :func:`tables_1_2`): :func:`mamlpriv.runner.collect` keyed by :data:`POINT_KEYS`.
    ``compute=False`` only reads what is stored (for scripts that must not start work)."""
    from .runner import collect

    name = experiment_for(profile).name
    return collect(experiment_for, profile, root, POINT_KEYS[name], compute=compute)


def experiments(profile: str) -> list[Experiment]:
    """Every experiment of ``profile``, in the order the book presents them."""
    return [tables_1_2(profile), tables_3_4(profile), ways_shots(profile), training_stages(profile),
            first_order(profile), inner_loop(profile), defence_attacks(profile), defence_learning(profile),
            game_control(profile)]

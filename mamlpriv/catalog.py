"""The paper's experiments as :class:`~mamlpriv.runner.Experiment` grids, per profile.

``experiments(profile)`` lists them; ``python -m mamlpriv run --profile paper`` runs them
all (resumably) into ``results/<profile>/``, and the book's chapters read them back.

- ``tables-1-2``: the membership cells of Tables I (support) and II (query): dataset x
  ways x shots x attack, each cell playing the paper's game and the strict game. The
  query attack runs on the untrained :data:`~mamlpriv.experiments.ATTACK_NET`; the
  support attack on that network meta-trained on the task shape of the cell, at the
  training stage with the best validation AUC among ``stages``.
- ``tables-3-4``: attack runtime against iterations and data size (one process).

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
                  grid=((3, 1), (5, 1)), runtime_iterations=(50,), runtime_sizes=(3, 5), runtime_trials=4),
    "paper": dict(trials=100, validation=100, train_iterations=1000, stages=(300, 1000),
                  grid=tuple((w, s) for w in (3, 5, 7) for s in (1, 2, 3)),
                  runtime_iterations=(50, 100, 200), runtime_sizes=(3, 5, 10, 15, 20), runtime_trials=8),
}


def scale(profile: str) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return dict(_SCALE[profile])


def runs_dir() -> Path:
    """Where cells cache meta-training runs: ``$MAMLPRIV_RUNS`` or ``~/.cache/mamlpriv/runs``
    (a cache only: a cell's result does not depend on it)."""
    return Path(os.environ.get("MAMLPRIV_RUNS") or Path.home() / ".cache" / "mamlpriv" / "runs")


def membership_cell(config: dict) -> dict:
    """One cell of Tables I-II (both games). ``config``: dataset, target, ways, shots,
    trials, validation, seed, inner_lr, train_iterations, stages (support only), attack
    (the attack config's fields)."""
    from .attacks import QueryAttackConfig, SupportAttackConfig
    from .data import load_dataset
    from .experiments import ATTACK_NET, GameConfig, evaluate_stages
    from .maml import MAMLConfig
    from .models import ConvNet, forward, init_params
    from .training import TrainConfig, meta_train, run_folder

    w, s, target = config["ways"], config["shots"], config["target"]
    data = load_dataset(config["dataset"], "test")  # never the images the meta-learner trained on
    f = forward(ConvNet(w, **ATTACK_NET))
    maml = MAMLConfig(config["inner_lr"], 1, False)
    if target == "query":
        attack = QueryAttackConfig(**config["attack"])
        snapshots = {0: init_params(ConvNet(w, **ATTACK_NET), seed=config["seed"])}
        history = []
    else:
        attack = SupportAttackConfig(**config["attack"])
        tc = TrainConfig(dataset=config["dataset"], ways=w, shots=s, **ATTACK_NET, inner_lr=config["inner_lr"],
                         seed=config["seed"], iterations=config["train_iterations"], epoch_iterations=100,
                         eval_tasks=100)
        res = meta_train(tc, out_dir=run_folder(runs_dir(), tc), progress=False)
        snapshots = {st: res.snapshots[st] for st in config["stages"]}
        history = res.history
    out = {}
    stage = None
    for game in ("paper", "strict"):
        g = GameConfig(target, game, w, s, config["trials"], config["seed"])
        # the strict game is played at the stage the paper's game selected
        snaps = snapshots if stage is None else {stage: snapshots[stage]}
        r = evaluate_stages(f, snaps, data, g, maml, attack, config["validation"])
        stage = r["stage"]
        out[game] = r
    out["learning"] = [h for h in history if h.get("iteration") in snapshots] if history else []
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


def tables_1_2(profile: str) -> Experiment:
    from .attacks import QueryAttackConfig, SupportAttackConfig

    p = scale(profile)
    cells = []
    for dataset in DATASETS:
        for w, s in p["grid"]:
            for target, attack in (("query", QueryAttackConfig()), ("support", SupportAttackConfig())):
                cells.append({"dataset": dataset, "target": target, "ways": w, "shots": s, "trials": p["trials"],
                              "validation": p["validation"], "seed": 0, "inner_lr": INNER_LR,
                              "train_iterations": p["train_iterations"],
                              "stages": list(p["stages"]) if target == "support" else [0],
                              "attack": asdict(attack)})
    return Experiment("tables-1-2", membership_cell, tuple(cells))


def tables_3_4(profile: str) -> Experiment:
    p = scale(profile)
    cells = tuple({"target": t, "iterations": it, "size": n, "trials": p["runtime_trials"], "inner_lr": INNER_LR}
                  for t in ("query", "support") for it in p["runtime_iterations"] for n in p["runtime_sizes"])
    return Experiment("tables-3-4", runtime_cell, cells, parallel=False)


def experiments(profile: str) -> list[Experiment]:
    """Every experiment of ``profile``, in the order the book presents them."""
    return [tables_1_2(profile), tables_3_4(profile)]

"""Validation search for the support attack: training stage x attack settings.

    python scripts/support_stage_search.py --out results/attacks/search-support.json

Meta-trains the attacked model (conv net 4x32 without normalisation, MNIST 3-way 1-shot,
inner rate 0.1; cached under runs/) and plays validation trials of the paper's game at
each requested snapshot and attack setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch

from mamlpriv.attacks import AttackConfig
from mamlpriv.data import load_dataset
from mamlpriv.maml import MAMLConfig
from mamlpriv.membership import GameConfig, play
from mamlpriv.metrics import best_threshold, classification_at_threshold, roc_auc
from mamlpriv.models import ATTACK_NET, forward
from mamlpriv.provenance import write_result
from mamlpriv.training import TrainConfig, meta_train, run_folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, nargs="+", default=[0, 100, 300, 500, 1000])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--iterations", type=int, nargs="+", default=[100])
    ap.add_argument("--lr", type=float, nargs="+", default=[0.03])
    ap.add_argument("--tv", type=float, nargs="+", default=[1e-2])
    ap.add_argument("--inner-lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = TrainConfig(
        ways=3,
        shots=1,
        net=ATTACK_NET,
        maml=MAMLConfig(args.inner_lr),
        seed=args.seed,
        iterations=max(args.stages),
        epoch_iterations=100,
        eval_tasks=100,
    )
    res = meta_train(cfg, out_dir=run_folder("runs", cfg), progress=False)
    f = forward(res.model)
    data = load_dataset("mnist", "test")
    game = GameConfig("support", "paper", 3, 1, args.trials, args.seed).validation(args.trials)
    rows = []
    for stage, it, lr, tv in itertools.product(args.stages, args.iterations, args.lr, args.tv):
        t0 = time.perf_counter()
        r = play(
            f,
            res.snapshots[stage],
            data,
            game,
            MAMLConfig(args.inner_lr),
            AttackConfig(iterations=it, lr=lr, tv_weight=tv),
        )
        th = best_threshold(r.scores, r.members)
        row = {
            "stage": stage,
            "iterations": it,
            "lr": lr,
            "tv_weight": tv,
            "auc": roc_auc(r.scores, r.members),
            "best_accuracy": classification_at_threshold(r.scores, r.members, th)["accuracy"],
            "seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_result(
        args.out,
        "scripts/support_stage_search.py",
        vars(args),
        setting="MNIST test split, 3-way 1-shot, conv net 4x32 no norm, stride-2 convolutions, paper's game, "
        "validation seeds",
        training=cfg.to_dict(),
        rows=rows,
    )


if __name__ == "__main__":
    main()

"""Paper-scale headline cells of Tables I-II (MNIST 3-way 1-shot): query attack on the
untrained model, support attack at a training stage chosen on validation trials;
paper's and strict games; 100 test trials (50 members) and 100 separate validation
trials per cell. Writes one JSON file with provenance and per-trial records.

    python scripts/headline_cells.py --support-stage 300 --out results/attacks/headline-mnist-3w1s.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mamlpriv.attacks import QueryAttackConfig, SupportAttackConfig
from mamlpriv.data import load_dataset
from mamlpriv.experiments import ATTACK_NET, write_result, GameConfig, evaluate_cell
from mamlpriv.maml import MAMLConfig
from mamlpriv.models import ConvNet, forward, init_params
from mamlpriv.training import TrainConfig, meta_train, run_folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--support-stage", type=int, required=True, help="chosen on validation trials")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--validation", type=int, default=100)
    ap.add_argument("--inner-lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--query-restarts", type=int, default=1)
    ap.add_argument("--targets", nargs="+", default=["query", "support"], choices=["query", "support"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load_dataset("mnist", "test")
    cfg = TrainConfig(ways=3, shots=1, **ATTACK_NET, inner_lr=args.inner_lr, seed=args.seed,
                      iterations=max(args.support_stage, 1000), epoch_iterations=100, eval_tasks=100)
    res = meta_train(cfg, out_dir=run_folder("runs", cfg), progress=False)
    f = forward(ConvNet(3, **ATTACK_NET))
    maml = MAMLConfig(args.inner_lr)
    cells = []
    for target, params, stage, attack in (
        ("query", init_params(ConvNet(3, **ATTACK_NET), seed=args.seed), 0, QueryAttackConfig(restarts=args.query_restarts)),
        ("support", res.snapshots[args.support_stage], args.support_stage, SupportAttackConfig()),
    ):
        if target not in args.targets:
            continue
        for game in ("paper", "strict"):
            t0 = time.perf_counter()
            r = evaluate_cell(f, params, data, GameConfig(target, game, 3, 1, args.trials, args.seed), maml, attack,
                              validation_trials=args.validation)
            cells.append({"target": target, "game": game, "stage": stage, "attack": attack.__dict__,
                          "seconds": time.perf_counter() - t0, **r})
            print(target, game, stage, json.dumps(r["metrics"]), flush=True)
    write_result(args.out, "scripts/headline_cells.py", vars(args),
                 setting="MNIST test split, 3-way 1-shot, conv net 4x32 no norm, stride-2 convolutions, inner rate 0.1, one inner step",
                 training=cfg.to_dict(), cells=cells)


if __name__ == "__main__":
    main()

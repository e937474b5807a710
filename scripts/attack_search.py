"""Search the attack's hyper-parameters on validation trials only, and record the search.

    python scripts/attack_search.py query --out results/attacks/search-query-untrained.json

Each setting is scored by ROC AUC and best accuracy on ``--trials`` validation trials
(seeds disjoint from the test trials of mamlpriv.membership.evaluate_selected).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace

import torch

from mamlpriv.attacks import AttackConfig
from mamlpriv.data import load_dataset
from mamlpriv.maml import MAMLConfig
from mamlpriv.membership import GameConfig, play
from mamlpriv.metrics import best_threshold, classification_at_threshold, roc_auc
from mamlpriv.models import ATTACK_NET, forward, init_params
from mamlpriv.provenance import write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=["query", "support"])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--iterations", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--lr", type=float, nargs="+", default=[0.03, 0.1])
    ap.add_argument("--tv", type=float, nargs="+", default=[0.0, 1e-3, 1e-2])
    ap.add_argument("--init", nargs="+", default=["uniform"])
    ap.add_argument("--restarts", type=int, nargs="+", default=[1])
    ap.add_argument("--hold", type=int, nargs="+", default=[0], help="iterations the target slot is held at its prior")
    ap.add_argument("--inner-lr", type=float, default=0.1)
    ap.add_argument("--params", default=None, help="a params .pt snapshot (default: untrained, seed 0)")
    ap.add_argument("--pool", choices=["max", "stride"], default=ATTACK_NET.pool, help="ConvNet down-sampling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load_dataset("mnist", "test")
    model = replace(ATTACK_NET, pool=args.pool).build(3)
    f = forward(model)
    params = init_params(model, seed=0) if args.params is None else torch.load(args.params, weights_only=True)
    game = GameConfig(args.target, "paper", 3, 1, args.trials, args.seed).validation(args.trials)
    rows = []
    grid = itertools.product(args.iterations, args.lr, args.tv, args.init, args.restarts, args.hold)
    for it, lr, tv, init, rs, hold in grid:
        if hold >= it:
            continue
        t0 = time.perf_counter()
        attack = AttackConfig(iterations=it, lr=lr, tv_weight=tv, init=init, restarts=rs, hold=hold)
        res = play(f, params, data, game, MAMLConfig(args.inner_lr), attack)
        th = best_threshold(res.scores, res.members)
        row = {
            "iterations": it,
            "lr": lr,
            "tv_weight": tv,
            "init": init,
            "restarts": rs,
            "hold": hold,
            "auc": roc_auc(res.scores, res.members),
            "best_accuracy": classification_at_threshold(res.scores, res.members, th)["accuracy"],
            "seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_result(
        args.out,
        "scripts/attack_search.py",
        vars(args),
        setting=f"MNIST test split, 3-way 1-shot, conv net 4x32 no norm, {args.pool} pooling, paper's game, "
        "validation seeds",
        rows=rows,
    )


if __name__ == "__main__":
    main()

"""Runtime of the query and support attacks against iterations and data size, beside
the paper's Tables III and IV (their machine: a dual-core PC with 8 GB of RAM).

Data size is the number of images in the attacked set (ways x shots). Trials run
batched, as in the membership game; the table gives seconds per trial.

    python bench/attack_runtime.py [--trials 8] [--iterations 50 100 200] [--sizes 3 5 10 15 20]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from mamlpriv.attacks import QueryAttackConfig, SupportAttackConfig, query_attack, support_attack
from mamlpriv.data import TaskSampler, derive_seed, load_dataset, stack_tasks
from mamlpriv.maml import MAMLConfig, task_gradients
from mamlpriv.models import ConvNet, forward, init_params

# The paper's Tables III (support) and IV (query): seconds, {iterations: {data size: s}}.
PAPER = {
    "support": {50: {3: 3.54, 5: 4.05, 10: 6.28, 15: 7.16, 20: 8.84},
                100: {3: 7.26, 5: 8.02, 10: 11.29, 15: 14.57, 20: 17.45},
                200: {3: 14.09, 5: 15.93, 10: 21.71, 15: 29.71, 20: 34.79}},
    "query": {50: {3: 1.34, 5: 1.64, 10: 1.94, 15: 2.4, 20: 3.42},
              100: {3: 2.56, 5: 3.08, 10: 3.86, 15: 4.87, 20: 5.79},
              200: {3: 5.12, 5: 6.04, 10: 7.63, 15: 9.22, 20: 14.11}},
}
# data size -> (ways, shots) used to build tasks of that size
SHAPES = {3: (3, 1), 5: (5, 1), 10: (5, 2), 15: (5, 3), 20: (5, 4)}


def seconds_per_trial(attack: str, size: int, iterations: int, trials: int, data) -> float:
    ways, shots = SHAPES[size]
    model = ConvNet(ways, norm="none")
    f, p = forward(model), init_params(model, seed=0)
    sampler = TaskSampler(data, ways, shots)
    batch = stack_tasks([sampler.sample(derive_seed(size, t)) for t in range(trials)])
    maml = MAMLConfig(0.1, 1, False)
    g, _, _ = task_gradients(f, p, batch, maml)
    slot = torch.zeros(trials, dtype=torch.long)
    t0 = time.perf_counter()
    if attack == "query":
        query_attack(f, p, g, batch.query_y, batch.query_x[:, 0], slot, QueryAttackConfig(iterations=iterations))
    else:
        support_attack(f, p, g, batch.support_y, batch.query_x, batch.query_y, batch.support_x[:, 0], slot, maml,
                       SupportAttackConfig(iterations=iterations))
    return (time.perf_counter() - t0) / trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="trials batched per measurement")
    ap.add_argument("--iterations", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 15, 20], choices=sorted(SHAPES))
    ap.add_argument("--attacks", nargs="+", default=["query", "support"], choices=["query", "support"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist", "test")
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; "
          f"{args.trials} trials batched; conv net 4x32, no norm; seconds per trial")
    print(f"{'attack':<8}{'iters':>6}{'size':>6}{'ours s':>10}{'paper s':>10}{'paper/ours':>12}")
    for attack in args.attacks:
        for it in args.iterations:
            for size in args.sizes:
                ours = seconds_per_trial(attack, size, it, args.trials, data)
                paper = PAPER[attack].get(it, {}).get(size)
                ratio = f"{paper / ours:12.1f}" if paper else f"{'-':>12}"
                print(f"{attack:<8}{it:>6}{size:>6}{ours:>10.3f}{(paper or float('nan')):>10.2f}{ratio}", flush=True)


if __name__ == "__main__":
    main()

"""Runtime of the query and support attacks against iterations and data size, beside
the paper's Tables III and IV (their machine: a dual-core PC with 8 GB of RAM).

Data size is the number of images in the attacked set (ways x shots). Trials run
batched, as in the membership game; the table gives seconds per trial.

    python bench/attack_runtime.py [--trials 8] [--iterations 50 100 200] [--sizes 3 5 10 15 20]
"""

from __future__ import annotations

import argparse
import platform

import torch

from mamlpriv.catalog import INNER_LR
from mamlpriv.cells import RUNTIME_SHAPES, RuntimeCell
from mamlpriv.paper import PAPER_RUNTIMES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="trials batched per measurement")
    ap.add_argument("--iterations", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 15, 20], choices=sorted(RUNTIME_SHAPES))
    ap.add_argument("--attacks", nargs="+", default=["query", "support"], choices=["query", "support"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; "
        f"{args.trials} trials batched; conv net 4x32, no norm; seconds per trial"
    )
    print(f"{'attack':<8}{'iters':>6}{'size':>6}{'ours s':>10}{'paper s':>10}{'paper/ours':>12}")
    for attack in args.attacks:
        for it in args.iterations:
            for size in args.sizes:
                ours = RuntimeCell(attack, it, size, args.trials, INNER_LR).compute()["seconds_per_trial"]
                paper = PAPER_RUNTIMES[attack].get(it, {}).get(size)
                ratio = f"{paper / ours:12.1f}" if paper else f"{'-':>12}"
                print(f"{attack:<8}{it:>6}{size:>6}{ours:>10.3f}{(paper or float('nan')):>10.2f}{ratio}", flush=True)


if __name__ == "__main__":
    main()

"""How the experiment runner scales: wall time of membership cells against the number of
trials, and of a small grid against the number of worker processes (1 and 2), side by
side in one run. Each cell is the query attack on the untrained network (MNIST 3-way
1-shot, paper's and strict games), as in Tables I-II.

    python bench/runner_scaling.py [--trials 20 40 80] [--workers 1 2] [--cells 4]

Results go to a temporary folder (nothing is cached between the rows). With w workers
each cell gets cores // w torch threads (runner.threads_per_cell).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

from mamlpriv import catalog, runner
from mamlpriv.cells import MembershipCell


def cell(trials: int, seed: int) -> MembershipCell:
    """The query attack's Tables I-II cell at MNIST 3-way 1-shot, untrained network."""
    return replace(
        catalog.membership(catalog.profile("quick"), "mnist", "query", 3, 1),
        trials=trials,
        validation=trials,
        seed=seed,
        train_iterations=1,
    )


def wall(cells: list[MembershipCell], backend: str, n_jobs: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        runner.run(
            runner.Experiment("bench", tuple(cells)), "quick", root, backend=backend, n_jobs=n_jobs, progress=False
        )
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[20, 40, 80])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cells", type=int, default=4, help="cells in the grid of the workers rows")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; one membership cell = 2 games x (test + validation) trials")
    print(f"{'what':<28}{'wall s':>10}{'s per trial':>14}")
    for t in args.trials:
        secs = wall([cell(t, 0)], "serial", 1)
        print(f"{f'1 cell, {t} trials':<28}{secs:>10.1f}{secs / (4 * t):>14.3f}", flush=True)
    grid = [cell(args.trials[0], s) for s in range(args.cells)]
    for w in args.workers:
        secs = wall(grid, "joblib" if w > 1 else "serial", w)
        print(
            f"{f'{args.cells} cells, {w} worker(s)':<28}{secs:>10.1f}{secs / (4 * args.trials[0] * args.cells):>14.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Runtime of the query and support attacks against iterations and data size, beside
the paper's Tables III and IV (their machine: a dual-core PC with 8 GB of RAM).

Data size is the number of images in the attacked set (ways x shots). Trials run
batched, as in the membership game; the table gives seconds per trial.

With ``--stored``, the stored paper-profile cell of the same settings (8 trials) stands
beside each measurement, with now / stored: the same code on the same 2-core machine
can run at another speed on another day (a shared host), and Tables III-IV show the
stored cells, so check the machine before reading a difference as the code's.

    python bench/attack_runtime.py [--trials 8] [--iterations 50 100 200] [--sizes 3 5 10 15 20] [--stored]
        [--save results/attacks/runtime-recheck.json]

``--save`` (with ``--stored``) writes the rows with their provenance; the attacks chapter
reads that file (:data:`mamlpriv.pages.RUNTIME_RECHECK`) to say how the stored cells
compare with the later measurement.
"""

from __future__ import annotations

import argparse
import platform

import torch

from mamlpriv import catalog, runner
from mamlpriv.catalog import INNER_LR
from mamlpriv.cells import RUNTIME_SHAPES, RuntimeCell
from mamlpriv.paper import PAPER_RUNTIMES
from mamlpriv.provenance import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8, help="trials batched per measurement")
    ap.add_argument("--iterations", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 15, 20], choices=sorted(RUNTIME_SHAPES))
    ap.add_argument("--attacks", nargs="+", default=["query", "support"], choices=["query", "support"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stored", action="store_true", help="beside the stored paper-profile cells (under --root)")
    ap.add_argument("--root", default="results", help="results folder for --stored")
    ap.add_argument("--save", default=None, help="with --stored: write the rows as JSON to this path")
    args = ap.parse_args()
    if args.save and not args.stored:
        ap.error("--save needs --stored")
    rows = []
    tables = catalog.experiment("tables-3-4", "paper") if args.stored else None
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.machine()}; "
        f"{args.trials} trials batched; conv net 4x32, no norm; seconds per trial"
    )
    head = f"{'attack':<8}{'iters':>6}{'size':>6}{'ours s':>10}{'paper s':>10}{'paper/ours':>12}"
    print(head + (f"{'stored s':>10}{'now/stored':>12}" if tables else ""))
    for attack in args.attacks:
        for it in args.iterations:
            for size in args.sizes:
                cell = RuntimeCell(attack, it, size, args.trials, INNER_LR)
                ours = cell.compute()["seconds_per_trial"]
                paper = PAPER_RUNTIMES[attack].get(it, {}).get(size)
                ratio = f"{paper / ours:12.1f}" if paper else f"{'-':>12}"
                line = f"{attack:<8}{it:>6}{size:>6}{ours:>10.3f}{(paper or float('nan')):>10.2f}{ratio}"
                if tables is not None:
                    rec = runner.stored(tables, "paper", args.root, cell)
                    before = rec["result"]["seconds_per_trial"] if rec else None
                    line += f"{before:10.3f}{ours / before:12.2f}" if before else f"{'-':>10}{'-':>12}"
                    if before:
                        rows.append(dict(cell.to_config(), seconds_per_trial=ours, stored_seconds_per_trial=before))
                print(line, flush=True)
    if args.save:
        write_result(args.save, "bench/attack_runtime.py", vars(args), rows=rows)
        print(f"wrote {len(rows)} rows to {args.save}")


if __name__ == "__main__":
    main()

"""Command line: run the paper's experiments into results/<profile>/.

    python -m mamlpriv run --profile paper                       # everything, this process
    python -m mamlpriv run --profile paper --backend joblib --jobs 2
    python -m mamlpriv run --profile paper --backend dask --scheduler tcp://host:8786
    python -m mamlpriv run --profile quick --experiment tables-1-2
    python -m mamlpriv run --profile paper --device cuda          # on a GPU (= MAMLPRIV_DEVICE=cuda)
    python -m mamlpriv status --profile paper                    # finished cells per experiment

A rerun skips finished cells, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import catalog, devices, runner


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mamlpriv", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "status"):
        sp = sub.add_parser(name)
        sp.add_argument("--profile", choices=runner.PROFILES, default="quick")
        sp.add_argument("--experiment", nargs="+", default=None, help="names (default: all)")
        sp.add_argument("--root", default="results", help="results folder (default: results)")
        if name == "run":
            sp.add_argument("--backend", choices=runner.BACKENDS, default="serial")
            sp.add_argument("--jobs", type=int, default=1, help="worker processes (joblib, local dask)")
            sp.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
            sp.add_argument(
                "--device", default=None, help="torch device of the cells (default: $MAMLPRIV_DEVICE or cpu)"
            )
    args = ap.parse_args(argv)
    exps = catalog.experiments(args.profile)
    known = [e.name for e in exps]
    if args.experiment:
        unknown = sorted(set(args.experiment) - set(known))
        if unknown:
            ap.error(f"unknown experiment(s) {unknown}; choose from {known}")
        exps = [e for e in exps if e.name in args.experiment]
    if args.command == "status":
        return _status(exps, args.profile, args.root)
    if args.jobs < 1:
        ap.error(f"--jobs must be an integer >= 1, got {args.jobs}")
    if args.scheduler is not None and args.backend != "dask":
        ap.error(f"--scheduler is used only with --backend dask, got --backend {args.backend}")
    if args.device is not None:
        try:
            devices.resolve(args.device)
        except (ValueError, TypeError) as err:
            ap.error(f"--device: {err}")
        os.environ[devices.ENV] = args.device  # the cells and any local worker processes read it
    for e in exps:
        runner.run(e, args.profile, args.root, backend=args.backend, n_jobs=args.jobs, scheduler=args.scheduler)
    return 0


def _status(exps: list, profile: str, root: str) -> int:
    """Finished cells and cell time per experiment; invalid files are listed, not used."""
    folder = Path(root) / profile
    if not folder.is_dir():
        print(f"warning: {folder} does not exist: no cell of profile {profile!r} is stored under {root!r}")
    total = 0.0
    for e in exps:
        st = runner.status(e, profile, root)
        total += st["seconds"]
        done = st["done"]
        est = f", about {st['seconds'] / done * st['total'] / 3600:.1f} h for all" if done else ""
        print(f"{profile}/{e.name}: {done}/{st['total']} cells, {st['seconds'] / 3600:.2f} h of cell time{est}")
        for msg in st["invalid"]:
            print(f"  invalid (will be computed again): {msg}")
    print(f"total cell time so far: {total / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Execute the book's notebooks with papermill into ``--out``, ``--jobs`` at a time.

Each notebook runs in its own kernel process; with ``--threads N`` every kernel gets N
torch threads (``OMP_NUM_THREADS`` and ``MAMLPRIV_THREADS``), so that ``jobs * threads``
stays within the machine's cores: two kernels of 2 threads on 2 cores run many times
slower each, two of 1 thread about as fast as one of 2. The notebooks whose last
execution (papermill's ``duration`` in ``--out``) took longest start first. Any failure
prints that notebook's error and ends with exit status 1, after the others have finished.

    python scripts/execute_book.py --profile quick --jobs 2 --threads 1 notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= 1, got {text!r}")
        return value

    return parse


def last_duration(path: Path) -> float:
    """Seconds the notebook at ``path`` took when papermill last wrote it (0 if unknown)."""
    try:
        return float(json.loads(path.read_text())["metadata"]["papermill"]["duration"] or 0.0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def slowest_first(notebooks: list[Path], out: Path) -> list[Path]:
    """``notebooks`` by their last execution's duration in ``out``, longest first (the
    order is kept among those never executed there)."""
    return sorted(notebooks, key=lambda nb: -last_duration(out / nb.name))


def execute(nb: Path, out: Path, profile: str, kernel: str, env: dict[str, str]) -> tuple[Path, float, str | None]:
    """Run papermill on ``nb`` (parameter ``profile``) into ``out``; (nb, seconds, error or None)."""
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", kernel, "--cwd", str(nb.parent),
           "-p", "profile", profile, str(nb), str(out / nb.name)]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    error = None if r.returncode == 0 else (r.stdout + r.stderr)[-4000:]
    return nb, time.perf_counter() - t0, error


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("book"), help="folder for the executed notebooks")
    ap.add_argument("--profile", default="quick", help="the chapters' profile parameter")
    ap.add_argument("--kernel", default="mamlpriv", help="the Jupyter kernel")
    ap.add_argument("--jobs", type=_positive("--jobs"), default=1, help="notebooks executed at once")
    ap.add_argument("--threads", type=_positive("--threads"), default=None, help="torch threads per kernel")
    args = ap.parse_args(argv)
    missing = [str(nb) for nb in args.notebooks if not nb.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)}")
    env = dict(os.environ)
    if args.threads is not None:
        env.update(OMP_NUM_THREADS=str(args.threads), MAMLPRIV_THREADS=str(args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    order = slowest_first(args.notebooks, args.out)
    print(f"executing {len(order)} notebooks ({args.jobs} at a time, profile {args.profile}) into {args.out}/")
    failed = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = [pool.submit(execute, nb, args.out, args.profile, args.kernel, env) for nb in order]
        for run in as_completed(runs):
            nb, seconds, error = run.result()
            print(f"  {nb.name}: {'failed' if error else 'done'} in {seconds:.1f} s", flush=True)
            if error:
                failed.append(nb.name)
                print(error, file=sys.stderr, flush=True)
    print(f"{len(order) - len(failed)} of {len(order)} notebooks executed in {time.perf_counter() - t0:.1f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

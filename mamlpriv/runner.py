"""A resumable experiment runner: one JSON file per grid cell, serial, joblib or Dask.

An :class:`Experiment` is a name, a cell function and a tuple of cell configurations.
A cell function is a pure function of its configuration (a JSON-able dict that holds
its own seed) returning a JSON-able dict; it must be importable by name (a module-level
function), so that worker processes and Dask workers can run it.

:func:`run` writes each finished cell atomically to
``<root>/<profile>/<experiment>/<cell id>.json`` with the configuration, the result,
the wall time and the provenance (git commit, versions, machine, date), and skips the
cells whose file already exists: a run that is killed midway loses at most the cells in
flight, and the next run starts where it stopped. Results are written by the calling
process as they arrive, whichever backend computes them:

- ``backend="serial"``: in this process;
- ``backend="joblib"``: ``n_jobs`` local worker processes (joblib's loky backend);
- ``backend="dask"``: a Dask distributed cluster -- ``scheduler`` is its address or a
  ``dask.distributed.Client``; without one a ``LocalCluster`` with ``n_jobs`` workers
  is started for the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .provenance import provenance, write_json

BACKENDS = ("serial", "joblib", "dask")
PROFILES = ("quick", "paper")


@dataclass(frozen=True)
class Experiment:
    """``fn(config) -> dict`` over ``cells``; ``parallel=False`` keeps the experiment in
    one process whatever the backend (timing experiments: workers would disturb it)."""

    name: str
    fn: Callable[[dict], dict]
    cells: tuple[Mapping, ...]
    parallel: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"experiment name must use letters, digits, '.', '_' or '-', got {self.name!r}")
        ids = [cell_id(c) for c in self.cells]
        if len(set(ids)) != len(ids):
            raise ValueError(f"experiment {self.name!r} has two cells with the same configuration")


def cell_id(config: Mapping) -> str:
    """A readable, stable file name for a cell: its scalar values joined by '-', then an
    8-digit hash of the whole configuration (so two configurations never share it)."""
    canon = json.dumps(config, sort_keys=True, default=str)
    digest = hashlib.sha1(canon.encode()).hexdigest()[:8]
    words = [str(v) for v in config.values() if isinstance(v, (str, int, float, bool)) and not isinstance(v, bool)]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(words))[:80].strip("_-")
    return f"{stem}-{digest}" if stem else digest


def cell_path(root: str | os.PathLike, profile: str, experiment: Experiment, config: Mapping) -> Path:
    return Path(root) / profile / experiment.name / f"{cell_id(config)}.json"


def threads_per_cell(n_jobs: int) -> int:
    """Torch threads for each of ``n_jobs`` concurrent cells: ``$MAMLPRIV_THREADS`` if set,
    else the machine's cores shared out. Oversubscribing cores is ruinous for torch on
    CPU (spinning threads): two 2-thread jobs on 2 cores ran about 10x slower each."""
    env = os.environ.get("MAMLPRIV_THREADS")
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 1) // n_jobs)


def compute_cell(fn: Callable[[dict], dict], config: Mapping, threads: int | None = None) -> dict:
    """Run one cell with ``threads`` torch threads and time it (what a worker executes)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = fn(dict(config))
    return {"result": result, "seconds": time.perf_counter() - t0}


def _check(profile: str, backend: str, n_jobs: int) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")


def _serial(fn, configs):
    for i, c in enumerate(configs):
        yield i, compute_cell(fn, c, threads_per_cell(1))


def _joblib(fn, configs, n_jobs):
    from joblib import Parallel, delayed

    threads = threads_per_cell(n_jobs)

    def job(i, c):
        return i, compute_cell(fn, c, threads)

    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(delayed(job)(i, c) for i, c in enumerate(configs))


def _dask(fn, configs, n_jobs, scheduler):
    from dask.distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    if scheduler is None:
        own_cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
        client = own_client = Client(own_cluster)
    elif isinstance(scheduler, str):
        client = own_client = Client(scheduler)
    else:
        client = scheduler
    try:
        # local cluster: n_jobs one-thread workers share this machine's cores; a remote
        # cluster runs one cell per worker thread, so one torch thread each unless
        # $MAMLPRIV_THREADS says otherwise
        threads = threads_per_cell(n_jobs) if own_cluster is not None else int(os.environ.get("MAMLPRIV_THREADS") or 1)
        futures = {client.submit(compute_cell, fn, dict(c), threads, pure=False): i for i, c in enumerate(configs)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def run(
    experiment: Experiment,
    profile: str,
    root: str | os.PathLike = "results",
    backend: str = "serial",
    n_jobs: int = 1,
    scheduler=None,
    progress: bool = True,
) -> list[dict]:
    """Compute every cell of ``experiment`` that has no result file yet; return all the
    cells' stored records (in the experiment's order)."""
    _check(profile, backend, n_jobs)
    todo = [c for c in experiment.cells if not cell_path(root, profile, experiment, c).exists()]
    if todo:
        if not experiment.parallel or backend == "serial" or (backend == "joblib" and n_jobs == 1):
            stream = _serial(experiment.fn, todo)
        elif backend == "joblib":
            stream = _joblib(experiment.fn, todo, n_jobs)
        else:
            stream = _dask(experiment.fn, todo, n_jobs, scheduler)
        # the code that computes the cells is the code loaded now: record its commit once,
        # before any later edit of the working tree could be mistaken for it
        prov = provenance(cell_function=f"{experiment.fn.__module__}.{experiment.fn.__qualname__}",
                          backend=backend, n_jobs=n_jobs)
        bar = tqdm(total=len(experiment.cells), initial=len(experiment.cells) - len(todo),
                   desc=f"{profile}/{experiment.name}", unit="cell", disable=not progress)
        with bar:
            for i, out in stream:
                config = todo[i]
                record = {"experiment": experiment.name, "profile": profile, "cell": cell_id(config),
                          "config": dict(config), "seconds": out["seconds"],
                          "provenance": prov,
                          "result": out["result"]}
                write_json(cell_path(root, profile, experiment, config), record)
                bar.update(1)
    return load(experiment, profile, root)


def load(experiment: Experiment, profile: str, root: str | os.PathLike = "results", missing_ok: bool = False) -> list[dict]:
    """The stored records of ``experiment``'s cells, in order; a missing cell raises
    ``FileNotFoundError`` unless ``missing_ok`` (then it is left out)."""
    out = []
    for c in experiment.cells:
        path = cell_path(root, profile, experiment, c)
        if not path.exists():
            if missing_ok:
                continue
            raise FileNotFoundError(f"no result for cell {cell_id(c)} of {profile}/{experiment.name} ({path})")
        out.append(json.loads(path.read_text()))
    return out


def complete(experiment: Experiment, profile: str, root: str | os.PathLike = "results") -> bool:
    """Whether every cell of ``experiment`` has a stored result."""
    return all(cell_path(root, profile, experiment, c).exists() for c in experiment.cells)


def collect(
    experiment_for: Callable[[str], Experiment],
    profile: str,
    root: str | os.PathLike = "results",
    key: Callable[[Mapping], object] | None = None,
    progress: bool = False,
    compute: bool = True,
) -> list[dict]:
    """What a chapter shows: every stored cell of the paper profile, completed by the
    cells of ``profile`` (run or resumed here) whose ``key(config)`` the paper profile
    has not stored yet. Each record gets ``"shown"``: the profile it comes from. With
    ``profile="paper"`` the missing paper cells are computed. ``compute=False`` runs
    nothing: cells not stored are left out."""
    key = key or (lambda c: cell_id(c))
    paper = experiment_for("paper")
    if profile == "paper":
        done = run(paper, "paper", root, progress=progress) if compute else load(paper, "paper", root, missing_ok=True)
        return [dict(r, shown="paper") for r in done]
    stored = {key(r["config"]): dict(r, shown="paper") for r in load(paper, "paper", root, missing_ok=True)}
    own = experiment_for(profile)
    need = Experiment(own.name, own.fn, tuple(c for c in own.cells if key(c) not in stored), own.parallel)
    if not need.cells:
        computed = []
    elif compute:
        computed = run(need, profile, root, progress=progress)
    else:
        computed = load(need, profile, root, missing_ok=True)
    return list(stored.values()) + [dict(r, shown=profile) for r in computed]


def demo_cell(config: dict) -> dict:
    """A tiny deterministic cell for tests and examples. ``config``: ``seed``, ``n``
    (numbers drawn) and ``sleep`` (seconds to wait, to simulate work)."""
    import torch

    gen = torch.Generator().manual_seed(int(config["seed"]))
    x = torch.randn(int(config.get("n", 100)), generator=gen, dtype=torch.float64)
    time.sleep(float(config.get("sleep", 0.0)))
    return {"mean": float(x.mean()), "norm": float(x.norm())}

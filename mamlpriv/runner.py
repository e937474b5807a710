"""A resumable experiment runner: one JSON file per grid cell, serial, joblib or Dask.

An :class:`Experiment` is a name and a tuple of cells. A cell is any frozen object with
``to_config() -> dict`` (JSON-able, its own seed included: it names the result file,
:func:`cell_id`) and ``compute() -> dict`` (JSON-able), picklable so that worker
processes and Dask workers can run it (:mod:`mamlpriv.cells`).

:func:`run` writes each finished cell atomically to
``<root>/<profile>/<experiment>/<cell id>.json`` with the configuration, the result,
the wall time and the provenance (git commit, versions, machine, date), and skips the
cells whose file already exists and is valid: a run that is killed midway loses at most
the cells in flight, and the next run starts where it stopped. A stored file that cannot
be read, lacks a key, or holds another cell's record is named, moved aside to
``*.invalid`` and computed again. Results are written by the calling process as they
arrive, whichever backend computes them:

- ``backend="serial"``: in this process;
- ``backend="joblib"``: ``n_jobs`` local worker processes (joblib's loky backend), never
  more cells dispatched than workers;
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
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from . import checks
from .provenance import provenance, write_json

BACKENDS = ("serial", "joblib", "dask")
PROFILES = ("quick", "paper")
RECORD_KEYS = ("experiment", "profile", "cell", "config", "seconds", "provenance", "result")


class Cell(Protocol):
    def to_config(self) -> dict[str, Any]: ...

    def compute(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Experiment:
    """``cells`` computed by ``cell.compute()``; ``parallel=False`` keeps the experiment
    in one process whatever the backend (timing experiments: workers would disturb it)."""

    name: str
    cells: tuple[Cell, ...]
    parallel: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"experiment name must use letters, digits, '.', '_' or '-', got {self.name!r}")
        ids = [cell_id(c.to_config()) for c in self.cells]
        if len(set(ids)) != len(ids):
            raise ValueError(f"experiment {self.name!r} has two cells with the same configuration")


def cell_id(config: Mapping) -> str:
    """A readable, stable file name for a cell: its scalar values joined by '-', then an
    8-digit hash of the whole configuration (so two configurations never share it)."""
    canon = json.dumps(config, sort_keys=True, default=str)
    digest = hashlib.sha1(canon.encode()).hexdigest()[:8]
    words = [str(v) for v in config.values() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(words))[:80].strip("_-")
    return f"{stem}-{digest}" if stem else digest


def cell_path(root: str | os.PathLike, profile: str, experiment: Experiment, cell: Cell) -> Path:
    return Path(root) / profile / experiment.name / f"{cell_id(cell.to_config())}.json"


def threads_per_cell(n_jobs: int) -> int:
    """Torch threads for each of ``n_jobs`` concurrent cells: ``$MAMLPRIV_THREADS`` if set,
    else the machine's cores shared out. Oversubscribing cores is ruinous for torch on
    CPU (spinning threads): two 2-thread jobs on 2 cores ran about 10x slower each."""
    return _env_threads() or max(1, (os.cpu_count() or 1) // n_jobs)


def _env_threads() -> int | None:
    """``$MAMLPRIV_THREADS`` as an integer >= 1, or None when it is not set."""
    env = os.environ.get("MAMLPRIV_THREADS")
    if not env:
        return None
    try:
        return checks.integer("MAMLPRIV_THREADS", int(env), 1)
    except ValueError:
        raise ValueError(f"MAMLPRIV_THREADS must be an integer >= 1, got {env!r}") from None


def compute_cell(cell: Cell, threads: int | None = None) -> dict:
    """Run one cell with ``threads`` torch threads and time it (what a worker executes)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = cell.compute()
    return {"result": result, "seconds": time.perf_counter() - t0}


# ----- reading stored cells --------------------------------------------------------------


class InvalidCell(ValueError):
    """A stored cell file that cannot be used (the message names the file and why)."""


def read_cell(path: Path, cell: Cell | None = None) -> dict:
    """The stored record at ``path``, checked: JSON, every key of :data:`RECORD_KEYS`, and
    (with ``cell``) ``record["cell"]`` and the stored config equal to ``cell``'s."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidCell(f"{path}: not a readable JSON record ({type(e).__name__}: {e})") from None
    if not isinstance(record, dict):
        raise InvalidCell(f"{path}: a record must be a JSON object")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise InvalidCell(f"{path}: missing keys {missing}")
    if cell is not None:
        config = cell.to_config()
        if record["cell"] != cell_id(config) or record["config"] != json.loads(json.dumps(config)):
            raise InvalidCell(
                f"{path}: holds the record of cell {record['cell']!r}, not of this cell {cell_id(config)!r}"
            )
    return record


def set_aside(path: Path, reason: str) -> Path:
    """Move an invalid cell file to ``<name>.invalid`` (kept for inspection) and warn."""
    dest = path.with_name(path.name + ".invalid")
    os.replace(path, dest)
    warnings.warn(f"{reason}; moved to {dest.name}, the cell will be computed again", stacklevel=3)
    return dest


def stored(experiment: Experiment, profile: str, root: str | os.PathLike, cell: Cell) -> dict | None:
    """The valid stored record of ``cell``, or None (an invalid file is set aside)."""
    path = cell_path(root, profile, experiment, cell)
    if not path.exists():
        return None
    try:
        return read_cell(path, cell)
    except InvalidCell as e:
        set_aside(path, str(e))
        return None


def load(
    experiment: Experiment, profile: str, root: str | os.PathLike = "results", missing_ok: bool = False
) -> list[dict]:
    """The stored records of ``experiment``'s cells, in order; a missing (or invalid, set
    aside) cell raises ``FileNotFoundError`` unless ``missing_ok`` (then it is left out)."""
    out = []
    for c in experiment.cells:
        rec = stored(experiment, profile, root, c)
        if rec is None:
            if missing_ok:
                continue
            raise FileNotFoundError(
                f"no result for cell {cell_id(c.to_config())} of {profile}/{experiment.name} "
                f"({cell_path(root, profile, experiment, c)})"
            )
        out.append(rec)
    return out


# ----- computing ---------------------------------------------------------------------------


def _check(profile: str, backend: str, n_jobs: int, scheduler=None) -> None:
    checks.choice("profile", profile, PROFILES)
    checks.choice("backend", backend, BACKENDS)
    checks.integer("n_jobs", n_jobs, 1)
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler is used only with backend='dask', got backend={backend!r}")
    _env_threads()  # a bad $MAMLPRIV_THREADS stops the run before anything is computed


def _check_writable(folder: Path) -> None:
    """Fail before any computing if results cannot be written to ``folder``; remove the
    temporary files of earlier, killed writers."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"results folder {folder} is not writable ({e.strerror}); choose another root") from None
    for tmp in folder.glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serial(cells: list[Cell]) -> Iterator[tuple[int, dict]]:
    for i, c in enumerate(cells):
        yield i, compute_cell(c, threads_per_cell(1))


_WATCHING = False  # a worker process watches its parent once


def _exit_when_orphaned(parent: int, every: float = 0.5) -> None:
    """In a worker process: end the process as soon as ``parent`` is gone (a killed run
    leaves no worker computing cells nobody will store)."""
    import threading

    global _WATCHING
    if _WATCHING:
        return
    _WATCHING = True

    def watch() -> None:
        while os.getppid() == parent and _alive(parent):
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mamlpriv-orphan-watch").start()


def _worker_job(i: int, cell: Cell, threads: int, parent: int) -> tuple[int, dict]:
    """What a joblib worker runs: the cell, with a watch on the parent process."""
    if os.getpid() != parent:
        _exit_when_orphaned(parent)
    return i, compute_cell(cell, threads)


def _joblib(cells: list[Cell], n_jobs: int) -> Iterator[tuple[int, dict]]:
    from joblib import Parallel, delayed

    threads = threads_per_cell(n_jobs)
    job = partial(_worker_job, threads=threads, parent=os.getpid())

    # pre_dispatch=n_jobs: a killed parent leaves at most the cells in flight behind
    yield from Parallel(n_jobs=n_jobs, pre_dispatch="n_jobs", return_as="generator_unordered")(
        delayed(job)(i, c) for i, c in enumerate(cells)
    )


def _dask(cells: list[Cell], n_jobs: int, scheduler) -> Iterator[tuple[int, dict]]:
    from dask.distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    if scheduler is None:
        own_cluster = LocalCluster(
            n_workers=n_jobs, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = own_client = Client(own_cluster)
    elif isinstance(scheduler, str):
        client = own_client = Client(scheduler)
    else:
        client = scheduler
    try:
        # local cluster: n_jobs one-thread workers share this machine's cores; a remote
        # cluster runs one cell per worker thread, so one torch thread each unless
        # $MAMLPRIV_THREADS says otherwise
        threads = threads_per_cell(n_jobs) if own_cluster is not None else (_env_threads() or 1)
        futures = {client.submit(compute_cell, c, threads, pure=False): i for i, c in enumerate(cells)}
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
    """Compute every cell of ``experiment`` that has no valid result file yet; return all
    the cells' stored records (in the experiment's order)."""
    _check(profile, backend, n_jobs, scheduler)
    todo = [c for c in experiment.cells if stored(experiment, profile, root, c) is None]
    if todo:
        _check_writable(Path(root) / profile / experiment.name)
        if not experiment.parallel or backend == "serial" or (backend == "joblib" and n_jobs == 1):
            stream = _serial(todo)
        elif backend == "joblib":
            stream = _joblib(todo, n_jobs)
        else:
            stream = _dask(todo, n_jobs, scheduler)
        # the code that computes the cells is the code loaded now: record its commit once,
        # before any later edit of the working tree could be mistaken for it
        kinds = sorted({f"{type(c).__module__}.{type(c).__qualname__}" for c in todo})
        prov = provenance(cell_function=", ".join(f"{k}.compute" for k in kinds), backend=backend, n_jobs=n_jobs)
        bar = tqdm(
            total=len(experiment.cells),
            initial=len(experiment.cells) - len(todo),
            desc=f"{profile}/{experiment.name}",
            unit="cell",
            disable=not progress,
        )
        with bar:
            for i, out in stream:
                config = todo[i].to_config()
                record = {
                    "experiment": experiment.name,
                    "profile": profile,
                    "cell": cell_id(config),
                    "config": config,
                    "seconds": out["seconds"],
                    "provenance": prov,
                    "result": out["result"],
                }
                write_json(cell_path(root, profile, experiment, todo[i]), record)
                bar.update(1)
    return load(experiment, profile, root)


def status(experiment: Experiment, profile: str, root: str | os.PathLike = "results") -> dict:
    """Finished, missing and invalid cells of ``experiment`` and their cell time, read
    only (invalid files are reported, not moved)."""
    done, invalid, secs = 0, [], 0.0
    for c in experiment.cells:
        path = cell_path(root, profile, experiment, c)
        if not path.exists():
            continue
        try:
            secs += float(read_cell(path, c)["seconds"])
            done += 1
        except InvalidCell as e:
            invalid.append(str(e))
    return {"done": done, "total": len(experiment.cells), "seconds": secs, "invalid": invalid}

"""The resumable runner: atomic per-cell files, resume after a kill, invalid files set
aside, unwritable roots refused before computing, joblib and Dask."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import demo_cell
import pytest
from demo_cell import DemoCell, expected

from mamlpriv import runner
from mamlpriv.runner import Experiment, InvalidCell, cell_id, cell_path, read_cell

CELLS = tuple(DemoCell(s) for s in range(6))
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def computed():
    """The seeds of the cells computed in this process during the test."""
    demo_cell.COMPUTED.clear()
    yield demo_cell.COMPUTED
    demo_cell.COMPUTED.clear()


def results_of(records):
    return [(r["cell"], r["result"]) for r in records]


def test_cell_ids_are_stable_readable_and_distinct():
    a = {"dataset": "mnist", "ways": 3, "attack": {"lr": 0.1}}
    b = {"dataset": "mnist", "ways": 3, "attack": {"lr": 0.03}}
    assert cell_id(a) == cell_id(dict(a)) and cell_id(a).startswith("mnist-3-")
    assert cell_id(a) != cell_id(b)  # nested values count through the hash
    assert cell_id({"ways": 3, "dataset": "mnist", "attack": {"lr": 0.1}}) != cell_id(a)  # the stem follows key order
    assert cell_id({"flag": True, "x": [1]}).isalnum()  # no scalar words: the hash alone


def test_experiment_refuses_duplicate_cells_and_bad_names():
    with pytest.raises(ValueError, match="same configuration"):
        Experiment("x", (DemoCell(1), DemoCell(1)))
    with pytest.raises(ValueError, match="name"):
        Experiment("a b", (DemoCell(1),))


def test_run_writes_one_file_per_cell_with_provenance_and_skips_finished(tmp_path, computed):
    exp = Experiment("demo", CELLS)
    first = runner.run(exp, "quick", tmp_path, progress=False)
    assert sorted(computed) == list(range(6))
    path = cell_path(tmp_path, "quick", exp, CELLS[2])
    assert path == tmp_path / "quick" / "demo" / f"{cell_id(CELLS[2].to_config())}.json"
    rec = json.loads(path.read_text())
    assert rec["config"] == CELLS[2].to_config() and rec["result"] == expected(CELLS[2]) and rec["seconds"] >= 0
    assert (rec["experiment"], rec["profile"], rec["cell"]) == ("demo", "quick", path.stem)
    for key in ("git_commit", "versions", "machine", "date"):
        assert key in rec["provenance"]
    assert "demo_cell.DemoCell.compute" in rec["provenance"]["cell_function"]
    assert [r["result"] for r in first] == [expected(c) for c in CELLS]  # in the experiment's order
    computed.clear()
    again = runner.run(exp, "quick", tmp_path, progress=False)
    assert computed == [] and results_of(again) == results_of(first)
    assert runner.status(exp, "quick", tmp_path) == {"done": 6, "total": 6, "seconds": pytest.approx(
        sum(r["seconds"] for r in first)), "invalid": []}
    assert not list((tmp_path / "quick" / "demo").glob(".*"))  # no temporary or probe file left


def test_killed_run_resumes_without_losing_or_recomputing_cells(tmp_path, computed):
    """Kill a run (SIGKILL) after some cells finished; the rerun computes exactly the
    missing cells and leaves the finished files untouched."""
    cells = tuple(DemoCell(s, sleep=0.4) for s in range(8))
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from demo_cell import DemoCell
        from mamlpriv.runner import Experiment, run
        run(Experiment("demo", tuple(DemoCell(s, sleep=0.4) for s in range(8))), "quick", {str(tmp_path)!r},
            progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    folder = tmp_path / "quick" / "demo"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in folder.glob("*.json")}
    assert 3 <= len(finished) < 8, "the run should have been killed midway"
    records = runner.run(Experiment("demo", cells), "quick", tmp_path, progress=False)
    assert len(records) == 8 and len(computed) == 8 - len(finished)
    for name, (mtime, text) in finished.items():
        assert (folder / name).stat().st_mtime_ns == mtime and (folder / name).read_text() == text
    assert [r["result"] for r in records] == [expected(c) for c in cells]


def test_joblib_and_dask_local_cluster_give_the_serial_results(tmp_path):
    pytest.importorskip("dask.distributed")
    exp = Experiment("demo", CELLS)
    serial = runner.run(exp, "quick", tmp_path / "serial", progress=False)
    parallel = runner.run(exp, "quick", tmp_path / "joblib", backend="joblib", n_jobs=2, progress=False)
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask = runner.run(exp, "quick", tmp_path / "dask", backend="dask", scheduler=client, progress=False)
    assert results_of(serial) == results_of(parallel) == results_of(dask)
    assert [r["result"] for r in dask] == [expected(c) for c in CELLS]


def test_bad_runner_arguments_raise(tmp_path, computed):
    exp = Experiment("demo", CELLS[:1])
    with pytest.raises(ValueError, match="profile"):
        runner.run(exp, "huge", tmp_path)
    with pytest.raises(ValueError, match="backend"):
        runner.run(exp, "quick", tmp_path, backend="mpi")
    with pytest.raises(ValueError, match="n_jobs"):
        runner.run(exp, "quick", tmp_path, n_jobs=0)
    with pytest.raises(ValueError, match="scheduler is used only with backend='dask', got backend='joblib'"):
        runner.run(exp, "quick", tmp_path, backend="joblib", scheduler="tcp://host:8786")
    with pytest.raises(FileNotFoundError, match="no result"):
        runner.load(exp, "quick", tmp_path)
    assert runner.load(exp, "quick", tmp_path, missing_ok=True) == [] and computed == []


# ----- invalid stored files --------------------------------------------------------------------

def _spoil(path: Path, how: str, other: Path) -> None:
    if how == "empty":
        path.write_text("")
    elif how == "truncated":
        path.write_text(path.read_text()[:40])
    elif how == "empty object":
        path.write_text("{}")
    elif how == "not an object":
        path.write_text("[1, 2]")
    else:  # another cell's record under this cell's name
        path.write_text(other.read_text())


@pytest.mark.parametrize("how", ["empty", "truncated", "empty object", "not an object", "another cell"])
def test_an_invalid_cell_file_is_reported_set_aside_and_recomputed(tmp_path, computed, how):
    exp = Experiment("demo", CELLS[:3])
    good = runner.run(exp, "quick", tmp_path, progress=False)
    path = cell_path(tmp_path, "quick", exp, CELLS[1])
    _spoil(path, how, cell_path(tmp_path, "quick", exp, CELLS[2]))
    spoilt = path.read_text()
    with pytest.raises(InvalidCell, match=path.name):
        read_cell(path, CELLS[1])
    # status reports it, names the file, and moves nothing
    st = runner.status(exp, "quick", tmp_path)
    assert st["done"] == 2 and st["total"] == 3 and len(st["invalid"]) == 1 and str(path) in st["invalid"][0]
    assert path.read_text() == spoilt and not path.with_name(path.name + ".invalid").exists()
    # run sets it aside with a warning naming the file, and computes that cell alone again
    computed.clear()
    with pytest.warns(UserWarning, match=path.name) as warned:
        again = runner.run(exp, "quick", tmp_path, progress=False)
    assert any(".invalid" in str(w.message) for w in warned)
    aside = path.with_name(path.name + ".invalid")
    assert aside.read_text() == spoilt
    assert computed == [1] and results_of(again) == results_of(good)
    assert runner.status(exp, "quick", tmp_path)["invalid"] == []


def test_read_cell_accepts_a_record_without_a_cell_to_compare(tmp_path):
    exp = Experiment("demo", CELLS[:2])
    runner.run(exp, "quick", tmp_path, progress=False)
    path = cell_path(tmp_path, "quick", exp, CELLS[0])
    assert read_cell(path)["config"] == CELLS[0].to_config()
    with pytest.raises(InvalidCell, match="not of this cell"):
        read_cell(path, CELLS[1])
    rec = json.loads(path.read_text())
    del rec["seconds"]
    path.write_text(json.dumps(rec))
    with pytest.raises(InvalidCell, match="seconds"):
        read_cell(path)


# ----- the results folder --------------------------------------------------------------------

def test_an_unwritable_root_fails_before_any_cell_is_computed(tmp_path, computed):
    """We run as root, so chmod does not stop writing: the root lies under a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    exp = Experiment("demo", CELLS)
    with pytest.raises(PermissionError, match="not writable") as err:
        runner.run(exp, "quick", blocker / "results", progress=False)
    assert str(blocker / "results") in str(err.value)
    assert computed == [] and blocker.read_text() == "not a folder"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_run_removes_stale_temporary_files_of_killed_writers(tmp_path, computed):
    folder = tmp_path / "quick" / "demo"
    folder.mkdir(parents=True)
    stale = folder / f".x.json.{_dead_pid()}.tmp"
    odd = folder / ".y.json.notapid.tmp"
    live = folder / f".z.json.{os.getpid()}.tmp"  # a writer still running: left alone
    for p in (stale, odd, live):
        p.write_text("half a rec")
    runner.run(Experiment("demo", CELLS[:2]), "quick", tmp_path, progress=False)
    assert not stale.exists() and not odd.exists() and live.exists()
    assert sorted(computed) == [0, 1]


def test_threads_per_cell_reads_mamlpriv_threads(monkeypatch):
    monkeypatch.setenv("MAMLPRIV_THREADS", "3")
    assert runner.threads_per_cell(4) == 3
    for bad in ("abc", "0", "-2", "1.5"):
        monkeypatch.setenv("MAMLPRIV_THREADS", bad)
        with pytest.raises(ValueError, match="MAMLPRIV_THREADS") as err:
            runner.threads_per_cell(1)
        assert repr(bad) in str(err.value)
    monkeypatch.delenv("MAMLPRIV_THREADS")
    assert runner.threads_per_cell(1) == max(1, os.cpu_count() or 1)
    assert runner.threads_per_cell(10**6) == 1


def test_a_bad_mamlpriv_threads_stops_run_before_computing(tmp_path, monkeypatch, computed):
    monkeypatch.setenv("MAMLPRIV_THREADS", "abc")
    with pytest.raises(ValueError, match="MAMLPRIV_THREADS"):
        runner.run(Experiment("demo", CELLS[:2]), "quick", tmp_path, progress=False)
    assert computed == []


def test_a_bad_mamlpriv_threads_is_named_with_a_given_dask_scheduler_too(tmp_path, monkeypatch, computed):
    pytest.importorskip("dask.distributed")

    class NoCluster:  # a scheduler that must never be reached: the check comes first
        def submit(self, *args, **kwargs):
            raise AssertionError("a cell was submitted")

    monkeypatch.setenv("MAMLPRIV_THREADS", "abc")
    with pytest.raises(ValueError, match="MAMLPRIV_THREADS"):
        runner.run(Experiment("demo", CELLS[:2]), "quick", tmp_path, backend="dask", scheduler=NoCluster(),
                   progress=False)
    assert computed == []


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_killed_joblib_run_leaves_no_worker_computing(tmp_path):
    """Issue 16: after SIGKILL of a joblib run, its workers stop within seconds instead of
    computing the cells already dispatched, and no more cells than workers were dispatched."""
    pids = tmp_path / "pids"
    pids.mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from orphan_cell import PidCell
        from mamlpriv.runner import Experiment, run
        cells = tuple(PidCell(s, {str(pids)!r}) for s in range(6))
        run(Experiment("orphans", cells), "quick", {str(tmp_path / "results")!r}, backend="joblib", n_jobs=2,
            progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, MAMLPRIV_THREADS="1"))
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        started = {int(p.read_text()) for p in pids.iterdir()}
        assert len(started) == 2, f"expected the 2 workers to start one cell each, got {len(started)}"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(pid) for pid in started), "a worker kept computing after its run was killed"
    time.sleep(1.0)
    assert len(list(pids.iterdir())) == 2  # nothing else was dispatched or started
    assert not list((tmp_path / "results").rglob("*.json"))

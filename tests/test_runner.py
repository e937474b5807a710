"""The resumable runner: atomic per-cell files, resume after a kill, joblib and Dask."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mamlpriv import catalog, runner
from mamlpriv.runner import Experiment, cell_id, cell_path, demo_cell

CELLS = tuple({"seed": s, "n": 50, "sleep": 0.0} for s in range(6))


def results_of(records):
    return [(r["cell"], r["result"]) for r in records]


def test_cell_ids_are_stable_readable_and_distinct():
    a, b = {"dataset": "mnist", "ways": 3, "attack": {"lr": 0.1}}, {"dataset": "mnist", "ways": 3, "attack": {"lr": 0.03}}
    assert cell_id(a) == cell_id(dict(a)) and cell_id(a).startswith("mnist-3-")
    assert cell_id(a) != cell_id(b)  # nested values count through the hash
    with pytest.raises(ValueError, match="same configuration"):
        Experiment("x", demo_cell, (a, dict(a)))
    with pytest.raises(ValueError, match="name"):
        Experiment("a b", demo_cell, (a,))


def test_run_writes_one_file_per_cell_with_provenance_and_skips_finished(tmp_path):
    calls = []

    def counted(config):
        calls.append(config["seed"])
        return demo_cell(config)

    exp = Experiment("demo", counted, CELLS)
    first = runner.run(exp, "quick", tmp_path, progress=False)
    assert sorted(calls) == list(range(6))
    rec = json.loads(cell_path(tmp_path, "quick", exp, CELLS[2]).read_text())
    assert rec["config"] == CELLS[2] and rec["result"] == demo_cell(CELLS[2]) and rec["seconds"] >= 0
    for key in ("git_commit", "versions", "machine", "date"):
        assert key in rec["provenance"]
    calls.clear()
    again = runner.run(exp, "quick", tmp_path, progress=False)
    assert calls == [] and results_of(again) == results_of(first)
    assert runner.complete(exp, "quick", tmp_path)


def test_killed_run_resumes_without_losing_or_recomputing_cells(tmp_path):
    """Kill a run (SIGKILL) after some cells finished; the rerun computes exactly the
    missing cells and leaves the finished files untouched."""
    cells = tuple({"seed": s, "n": 50, "sleep": 0.4} for s in range(8))
    script = textwrap.dedent(f"""
        from mamlpriv.runner import Experiment, demo_cell, run
        run(Experiment("demo", demo_cell, {cells!r}), "quick", {str(tmp_path)!r}, progress=False)
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
    calls = []

    def counted(config):
        calls.append(config["seed"])
        return demo_cell(config)

    records = runner.run(Experiment("demo", counted, cells), "quick", tmp_path, progress=False)
    assert len(records) == 8 and len(calls) == 8 - len(finished)
    for name, (mtime, text) in finished.items():
        assert (folder / name).stat().st_mtime_ns == mtime and (folder / name).read_text() == text
    assert [r["result"] for r in records] == [demo_cell(c) for c in cells]


def test_joblib_and_dask_local_cluster_give_the_serial_results(tmp_path):
    pytest.importorskip("dask.distributed")
    exp = Experiment("demo", demo_cell, CELLS)
    serial = runner.run(exp, "quick", tmp_path / "serial", progress=False)
    parallel = runner.run(exp, "quick", tmp_path / "joblib", backend="joblib", n_jobs=2, progress=False)
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask = runner.run(exp, "quick", tmp_path / "dask", backend="dask", scheduler=client, progress=False)
    assert results_of(serial) == results_of(parallel) == results_of(dask)


def test_bad_runner_arguments_raise(tmp_path):
    exp = Experiment("demo", demo_cell, CELLS[:1])
    with pytest.raises(ValueError, match="profile"):
        runner.run(exp, "huge", tmp_path)
    with pytest.raises(ValueError, match="backend"):
        runner.run(exp, "quick", tmp_path, backend="mpi")
    with pytest.raises(ValueError, match="n_jobs"):
        runner.run(exp, "quick", tmp_path, n_jobs=0)
    with pytest.raises(FileNotFoundError, match="no result"):
        runner.load(exp, "quick", tmp_path)


def test_catalog_profiles_have_distinct_cells():
    for profile in runner.PROFILES:
        for exp in catalog.experiments(profile):
            assert len({cell_id(c) for c in exp.cells}) == len(exp.cells) > 0
    paper = catalog.tables_1_2("paper")
    assert len(paper.cells) == 2 * 9 * 2  # datasets x (ways, shots) x attacks
    assert all(c["trials"] == 100 and c["validation"] == 100 for c in paper.cells)


def test_point_keys_name_each_point_once_and_the_paper_profile_covers_the_quick_one():
    """A page shows one cell per point: the keys are injective in every profile, and
    every quick point is a paper point (a complete paper profile replaces the quick one)."""
    quick = {e.name: e for e in catalog.experiments("quick")}
    for exp in catalog.experiments("paper"):
        key = catalog.POINT_KEYS[exp.name]
        points = [key(c) for c in exp.cells]
        assert len(set(points)) == len(points), exp.name
        small = [key(c) for c in quick[exp.name].cells]
        assert len(set(small)) == len(small) and set(small) <= set(points), exp.name
    # a key that ignored the noise would merge the defence levels
    assert len({catalog.POINT_KEYS["defence-attacks"](c) for c in catalog.defence_attacks("paper").cells}) == 160


def test_collect_prefers_stored_paper_cells_and_fills_in_the_profile(tmp_path):
    def exp(profile):
        seeds = range(4) if profile == "paper" else range(2)
        n = 50 if profile == "paper" else 10
        return Experiment("demo", demo_cell, tuple({"seed": s, "n": n} for s in seeds))

    key = lambda c: c["seed"]  # noqa: E731
    runner.run(Experiment("demo", demo_cell, exp("paper").cells[1:2]), "paper", tmp_path, progress=False)
    # compute=False only reads: the stored paper cell, nothing computed or written
    assert [r["config"]["seed"] for r in runner.collect(exp, "quick", tmp_path, key, compute=False)] == [1]
    assert [r["config"]["seed"] for r in runner.collect(exp, "paper", tmp_path, key, compute=False)] == [1]
    assert not (tmp_path / "quick").exists() and len(list((tmp_path / "paper").rglob("*.json"))) == 1
    shown = {r["config"]["seed"]: r["shown"] for r in runner.collect(exp, "quick", tmp_path, key)}
    assert shown == {1: "paper", 0: "quick"}  # seed 1 from the stored paper cell, seed 0 computed quickly
    full = runner.collect(exp, "paper", tmp_path, key)  # computes the three missing paper cells
    assert sorted(r["config"]["seed"] for r in full) == [0, 1, 2, 3] and {r["shown"] for r in full} == {"paper"}
    assert {r["config"]["seed"]: r["shown"] for r in runner.collect(exp, "quick", tmp_path, key)} == {
        0: "paper", 1: "paper", 2: "paper", 3: "paper"}
    # a stored quick cell is read back without computing when its point is not stored for paper
    assert {r["shown"] for r in runner.collect(exp, "quick", tmp_path, lambda c: (c["seed"], c["n"]),
                                               compute=False)} == {"paper", "quick"}


def test_gradient_norms_match_a_per_task_loop():
    """catalog.gradient_norms (vmapped, summed over parameter tensors) against each task's
    gradient computed on its own and flattened."""
    import torch

    from mamlpriv.data import TaskSampler, derive_seed, load_dataset
    from mamlpriv.experiments import ATTACK_NET
    from mamlpriv.maml import MAMLConfig, task_gradient
    from mamlpriv.metrics import flat
    from mamlpriv.models import ConvNet, forward

    config = {"dataset": "mnist", "ways": 3, "shots": 1, "seed": 0, "inner_lr": 0.1, "stages": [0]}
    norms = catalog.gradient_norms(config, tasks=3)
    snaps, history = catalog.attacked_snapshots(config)
    assert list(norms) == [0] and history == []
    f, p = forward(ConvNet(3, **ATTACK_NET)), snaps[0]
    sampler = TaskSampler(load_dataset("mnist", "test"), 3, 1)
    for t, n in enumerate(norms[0]):
        task = sampler.sample(derive_seed(0, 7, t))
        g, _, _ = task_gradient(f, p, task.support_x, task.support_y, task.query_x, task.query_y, MAMLConfig(0.1))
        assert n == pytest.approx(float(torch.linalg.vector_norm(flat(g))), rel=1e-5) and n > 0

"""What the book's pages show: the numbers from the stored paper cells are those of the
snapshot taken before the upper layer was redrawn; stored paper points are preferred,
missing ones computed in the page's own profile, and knobs show exactly their points."""

import json
import shutil
import sys
from pathlib import Path

import demo_cell
import pytest
from conftest import REPO
from demo_cell import DemoCell, expected

from mamlpriv import catalog, cells, pages
from mamlpriv.runner import Experiment

BEFORE = Path(__file__).resolve().parent / "data" / "pages_before.json"
# the same after the verdict vocabulary became CONFIRMED / NOT CONFIRMED / INCONCLUSIVE
# (issue 15; made by tests/data/make_pages_snapshot.py, every changed word reviewed)
AFTER = Path(__file__).resolve().parent / "data" / "pages_after_verdicts.json"


# ----- the pages' numbers do not move ---------------------------------------------------------

@pytest.fixture(scope="module")
def paper_results(tmp_path_factory):
    """A copy of the stored paper results (reading them could set an invalid file aside:
    never in the checkout)."""
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(REPO / "results" / "paper", root / "paper")
    return root


def test_pages_show_the_numbers_of_the_snapshot_taken_before_the_refactor(paper_results):
    """tests/data/pages_before.json was written by tests/data/make_pages_before.py with the
    old API (catalog.shown, catalog.tables_1_2, ...). The same structure, recomputed from
    the same stored cells through pages.shown, must be identical."""
    from mamlpriv.report import (
        defence_claims,
        defence_rows,
        first_effective,
        membership_rows,
        order_comparison,
        shape_claims,
        stage_claims,
    )

    def shown(name):
        return pages.shown(name, "paper", paper_results, compute=False)

    t12, ws, st = shown("tables-1-2"), shown("ways-shots"), shown("training-stages")
    assert {len(t12), len(ws), len(st)} != {0}
    rows12 = membership_rows(t12)
    # rows are computed record by record (bootstraps seeded per row), so the paper-game rows
    # of Tables I-II are those of membership_rows(t12, games=("paper",)): not computed twice
    paper12 = [r for r in rows12 if r["game"] == "paper"]
    stages = membership_rows(st)
    drows = defence_rows(shown("defence-attacks"), shown("defence-learning"))
    # the points added after the snapshot: clipping alone (the Gaussian mechanism at noise
    # multiplier 0, issue 15); every other row must be as it was
    drows = [r for r in drows if not (r["location"] == "gaussian mechanism" and r["level"] == 0.0)]
    new = {
        "tables_1_2": rows12,
        "shape_claims": shape_claims(paper12 + membership_rows(ws, games=("paper",))),
        "stage_claims": stage_claims(stages, "paper") + stage_claims(stages, "strict"),
        "defence_rows": drows,
        "defence_claims": defence_claims(drows),
        "first_effective": first_effective(drows),
        "order_comparison": order_comparison(shown("first-order"), t12),
        "inner_loop": membership_rows(shown("inner-loop"), games=("paper",)),
        "game_control": membership_rows(shown("game-control")),
    }
    # to 10 decimals: the bootstrap's AUCs are exact pair counts now, the trapezoid before
    new = rounded(json.loads(json.dumps(new, sort_keys=True)))
    old = rounded(json.loads(BEFORE.read_text()))
    assert set(new) == set(old)
    for key in old:
        assert len(new[key]) == len(old[key]) > 0, key
        for a, b in zip(old[key], new[key]):
            assert without_verdict(a) == without_verdict(b), key
    assert new == rounded(json.loads(AFTER.read_text()))  # and the verdicts are those reviewed


def rounded(item, digits: int = 10):
    """``item`` with every float rounded to ``digits`` decimals (last-bit noise aside)."""
    if isinstance(item, float):
        return round(item, digits)
    if isinstance(item, dict):
        return {k: rounded(v, digits) for k, v in item.items()}
    if isinstance(item, list):
        return [rounded(v, digits) for v in item]
    return item


def without_verdict(item):
    """A row as is; a claim without its verdict word. The claims' numbers and evidence
    must not move; the words the rules conclude with are report's vocabulary (tested in
    test_report.py), not something a refactor of the layers below may change silently --
    but a change of vocabulary must not break this check of the numbers."""
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k != "verdict"}
    if isinstance(item, str) and " -- " in item:  # "claim: VERDICT -- evidence"
        head, evidence = item.split(" -- ", 1)
        return head.rsplit(": ", 1)[0], evidence
    return item


# ----- shown: stored paper points first, the own profile fills in --------------------------------

PAPER_SEEDS, QUICK_SEEDS = (0, 1, 2, 3), (0, 1)


def demo_experiment(profile, seeds=None, trials=None):
    """A cheap experiment: the paper profile has four points at n=50, the quick one two at
    n=10; ``trials`` sets n (a knob that changes the measurement, not the point)."""
    n = trials or (50 if profile == "paper" else 10)
    default = PAPER_SEEDS if profile == "paper" else QUICK_SEEDS
    return Experiment("demo", tuple(DemoCell(s, n) for s in (seeds or default)))


@pytest.fixture
def demo(monkeypatch):
    """The "demo" experiment in the catalog, its point (the seed) in POINT_KEYS, and its
    configurations typed as DemoCells; yields the seeds computed in this process."""
    monkeypatch.setitem(catalog.EXPERIMENTS, "demo", demo_experiment)
    monkeypatch.setitem(pages.POINT_KEYS, "demo", lambda c: c.seed)
    monkeypatch.setattr(cells, "from_config", lambda config: DemoCell(**config))
    demo_cell.COMPUTED.clear()
    yield demo_cell.COMPUTED
    demo_cell.COMPUTED.clear()


def seen(records):
    return {(r["config"]["seed"], r["config"]["n"]): r["shown"] for r in records}


def test_shown_prefers_stored_paper_points_and_computes_the_rest_in_its_profile(tmp_path, demo):
    from mamlpriv import runner

    runner.run(Experiment("demo", (DemoCell(1, 50),)), "paper", tmp_path, progress=False)
    demo.clear()
    # compute=False only reads: the stored paper cell, nothing computed or written
    assert seen(pages.shown("demo", "quick", tmp_path, compute=False)) == {(1, 50): "paper"}
    assert seen(pages.shown("demo", "paper", tmp_path, compute=False)) == {(1, 50): "paper"}
    assert demo == [] and not (tmp_path / "quick").exists()
    # seed 1 from the stored paper cell, seed 0 computed in the quick profile (n=10)
    records = pages.shown("demo", "quick", tmp_path)
    assert seen(records) == {(1, 50): "paper", (0, 10): "quick"} and demo == [0]
    assert all(r["result"] == expected(DemoCell(r["config"]["seed"], r["config"]["n"])) for r in records)
    assert len(list((tmp_path / "quick" / "demo").glob("*.json"))) == 1
    # the paper page computes its missing points, then the quick page shows only paper points
    demo.clear()
    full = pages.shown("demo", "paper", tmp_path)
    assert sorted(demo) == [0, 2, 3] and seen(full) == {(s, 50): "paper" for s in PAPER_SEEDS}
    assert seen(pages.shown("demo", "quick", tmp_path)) == {(0, 50): "paper", (1, 50): "paper", (2, 50): "paper",
                                                            (3, 50): "paper"}


def test_shown_with_knobs_shows_exactly_the_requested_points(tmp_path, demo):
    from mamlpriv import runner

    runner.run(Experiment("demo", (DemoCell(1, 50), DemoCell(2, 50))), "paper", tmp_path, progress=False)
    runner.run(Experiment("demo", (DemoCell(0, 10),)), "quick", tmp_path, progress=False)
    demo.clear()
    # seed 1 is a stored paper point, seed 5 is computed; seeds 0 and 2, though stored, are not asked for
    assert seen(pages.shown("demo", "quick", tmp_path, seeds=(1, 5))) == {(1, 50): "paper", (5, 10): "quick"}
    assert demo == [5]
    assert seen(pages.shown("demo", "quick", tmp_path, compute=False, seeds=(0, 7))) == {(0, 10): "quick"}
    # in the paper profile too: the stored point read, the missing one computed at paper scale
    demo.clear()
    assert seen(pages.shown("demo", "paper", tmp_path, seeds=(2, 7))) == {(2, 50): "paper", (7, 50): "paper"}
    assert demo == [7]


def test_with_a_measurement_knob_only_the_very_cell_asked_for_stands_in(tmp_path, demo):
    """A rerun asking for more trials was shown the stored 100-trial cells at its points."""
    from mamlpriv import runner

    runner.run(Experiment("demo", (DemoCell(1, 50), DemoCell(2, 50))), "paper", tmp_path, progress=False)
    demo.clear()
    # 30 trials at seeds 1 and 5: computed, though seed 1 is stored (with 50)
    assert seen(pages.shown("demo", "quick", tmp_path, seeds=(1, 5), trials=30)) == {(1, 30): "quick", (5, 30): "quick"}
    assert sorted(demo) == [1, 5]
    # 50 trials is what the paper profile stored: seed 2 stands in, seed 7 is computed
    demo.clear()
    assert seen(pages.shown("demo", "quick", tmp_path, seeds=(2, 7), trials=50)) == {(2, 50): "paper", (7, 50): "quick"}
    assert demo == [7]
    # a measurement knob given as None (the chapter's default) changes nothing
    demo.clear()
    assert seen(pages.shown("demo", "quick", tmp_path, seeds=(1,), trials=None)) == {(1, 50): "paper"} and demo == []
    assert set(pages.MEASURES) >= {"trials", "validation", "train_iterations", "iterations", "attack_iterations", "lrs"}


def test_planned_counts_the_points_shown_once_every_cell_is_stored(tmp_path, demo, monkeypatch):
    # nothing stored: the quick page computes its own two points, of the four planned
    assert pages.planned("demo", "quick") == 4 and len(pages.shown("demo", "quick", tmp_path)) == 2
    pages.shown("demo", "paper", tmp_path)  # the paper profile stores its four points
    assert pages.planned("demo", "quick") == 4 == len(pages.shown("demo", "quick", tmp_path))
    assert pages.planned("demo", "paper") == 4
    # with knobs: exactly the points asked for, stored or not
    asked = {"seeds": (1, 5, 9)}
    assert pages.planned("demo", "quick", **asked) == 3 == len(pages.shown("demo", "quick", tmp_path, **asked))
    # a quick point the paper profile lacks is counted once beside the paper's
    monkeypatch.setattr(sys.modules[__name__], "QUICK_SEEDS", (0, 7))
    assert pages.planned("demo", "quick") == 5


def test_shown_without_paper_points_computes_exactly_the_knobs_cells(tmp_path, demo):
    """paper_points=False: a stored paper point does not stand in (the MAML chapter's
    training length changes what a point measures, not the point)."""
    from mamlpriv import runner

    runner.run(Experiment("demo", (DemoCell(1, 50),)), "paper", tmp_path, progress=False)
    demo.clear()
    assert seen(pages.shown("demo", "quick", tmp_path, paper_points=False, seeds=(1, 5))) == {
        (1, 10): "quick", (5, 10): "quick"}  # fmt: skip
    assert sorted(demo) == [1, 5]
    demo.clear()  # compute=False reads what that run stored, and computes nothing
    assert seen(pages.shown("demo", "quick", tmp_path, compute=False, paper_points=False, seeds=(1, 6))) == {
        (1, 10): "quick"}  # fmt: skip
    assert demo == []


# ----- a chapter's parameters ----------------------------------------------------------------

def test_parameters_returns_the_chapter_s_values():
    import math

    ns = {"profile": "quick", "ways": 3, "math": math, "helper": len, "_private": 1, "In": [], "get_ipython": None}
    assert pages.parameters(ns, ["profile", "ways"]) == {"profile": "quick", "ways": 3}


def test_parameters_refuses_unknown_names_listing_the_known_ones():
    with pytest.raises(NameError, match=r"unknown parameter\(s\) \['wyas'\]") as err:
        pages.parameters({"profile": "quick", "wyas": 5, "ways": 3}, ["profile", "ways"])
    assert "['profile', 'ways']" in str(err.value)
    with pytest.raises(NameError, match=r"\['shots'\]"):
        pages.parameters({"profile": "quick"}, ["profile", "shots"])


def test_parameters_checks_the_profile():
    with pytest.raises(ValueError, match="profile must be one of"):
        pages.parameters({"profile": "huge"}, ["profile"])


def test_parameters_accept_a_rerun_in_an_open_notebook():
    """Run again after later cells defined more names: those names are not parameters."""
    ns = {"profile": "quick", "ways": 3}
    assert pages.parameters(ns, ["profile", "ways"]) == {"profile": "quick", "ways": 3}
    ns.update(results=[1, 2], table=None, ways=5)
    assert pages.parameters(ns, ["profile", "ways"]) == {"profile": "quick", "ways": 5}


def test_parameters_check_the_profile_on_a_rerun_too():
    ns = {"profile": "quick"}
    pages.parameters(ns, ["profile"])
    ns["profile"] = "papr"
    with pytest.raises(ValueError, match="profile must be one of"):
        pages.parameters(ns, ["profile"])


def test_as_tuple_reads_papermill_values():
    for value in ("0, 300", "[0, 300]", "(0,300)", "0 300", [0, 300], (0, 300), ["0", "300"]):
        assert pages.as_tuple("stages", value) == (0, 300), value
    assert pages.as_tuple("stages", None) is None
    assert pages.as_tuple("stages", 7) == (7,)
    assert pages.as_tuple("lrs", "0.03, 0.1", float) == (0.03, 0.1)
    assert pages.as_tuple("datasets", "mnist, fashion-mnist", str) == ("mnist", "fashion-mnist")
    with pytest.raises(ValueError, match="stages must be a list of int"):
        pages.as_tuple("stages", "zero, 300")


def test_shape_pairs_reads_ways_and_shots_in_pairs():
    for value in ("3 1 5 2", "3, 1, 5, 2", [3, 1, 5, 2]):
        assert pages.shape_pairs("shapes", value) == [(3, 1), (5, 2)], value
    assert pages.shape_pairs("shapes", None) is None
    with pytest.raises(ValueError, match=r"shapes must be \(ways, shots\) pairs.*'3 1 5'"):
        pages.shape_pairs("shapes", "3 1 5")
    with pytest.raises(ValueError, match="shapes must be"):
        pages.shape_pairs("shapes", "")


def test_grid_knobs_drop_the_unset_ones():
    assert pages.grid_knobs(datasets=None, ways=5, stages=(0, 20), trials=None) == {"ways": 5, "stages": (0, 20)}
    assert pages.grid_knobs() == {}


def test_point_reads_a_stored_config():
    cell = catalog.membership(catalog.profile("quick"), "mnist", "support", 5, 1)
    assert pages.point("tables-1-2", cell.to_config()) == ("mnist", "support", 5, 1)
    assert pages.point("training-stages", cell.to_config()) == ("mnist", "support", 5, 1, (300,))


def test_where_from_counts_stored_and_computed_cells():
    prov = {"git_commit": "abcdef0123", "date": "2026-11-29"}
    records = [
        {"shown": "paper", "provenance": prov, "config": {"trials": 100, "validation": 100}},
        {"shown": "quick", "provenance": prov, "config": {"trials": 20, "validation": 20}},
    ]
    line = pages.where_from(records, "Cells")
    assert line == ("Cells: 1 stored cells of the paper profile (commit abcdef0, 2026-11-29), 1 computed for "
                    "this build (quick profile); 20 test and 20 validation trials, 100 test and 100 validation "
                    "trials per cell.")
    assert "trials" not in pages.where_from(records, "Cells", trials=False)


def _runtime_record(shown, target, iterations, size, seconds, date="2026-11-29"):
    config = {"target": target, "iterations": iterations, "size": size, "trials": 8, "inner_lr": 0.1}
    return {"shown": shown, "config": config, "result": {"seconds_per_trial": seconds},
            "provenance": {"git_commit": "abcdef0123", "date": date}}


def test_runtime_recheck_compares_the_stored_cells_with_the_later_measurement(tmp_path):
    from mamlpriv.provenance import write_result

    paper_times = {"support": {50: {3: 4.0, 5: 6.0}}, "query": {50: {3: 2.0}}}
    records = [
        _runtime_record("paper", "support", 50, 3, 0.2),
        _runtime_record("paper", "support", 50, 5, 0.5),
        _runtime_record("quick", "query", 50, 3, 1.0),  # computed for this build: not compared
    ]
    row = {"inner_lr": 0.1, "trials": 8}
    rows = [
        dict(row, target="support", iterations=50, size=3, seconds_per_trial=0.4, stored_seconds_per_trial=0.2),
        dict(row, target="support", iterations=50, size=5, seconds_per_trial=0.6, stored_seconds_per_trial=0.5),
        dict(row, target="query", iterations=50, size=3, seconds_per_trial=0.3, stored_seconds_per_trial=0.1),
    ]
    path = write_result(tmp_path / "recheck.json", "bench/attack_runtime.py", {}, rows=rows)
    date = json.loads(path.read_text())["provenance"]["date"]
    text = pages.runtime_recheck(records, path, paper_times)
    # later / stored: 2.0 and 1.2; paper / ours now 10 and 10, when stored 20 and 12
    assert text is not None and text.startswith(f"Measured again on {date} (")
    assert "2 of these cells took 1.2-2.0 times as long per trial as when stored (2026-11-29)" in text
    assert text.endswith("against the paper 10.0-10.0x instead of 12.0-20.0x.")
    assert pages.runtime_recheck(records, tmp_path / "missing.json", paper_times) is None
    assert pages.runtime_recheck(records[2:], path, paper_times) is None
    # a stored cell computed again after the recheck is not compared with it
    records[1]["result"]["seconds_per_trial"] = 0.4
    assert "1 of these cells took 2.0-2.0 times" in pages.runtime_recheck(records, path, paper_times)


@pytest.mark.parametrize("content", ["{not json", '{"rows": []}', '{"provenance": {"date": "d", "machine": "m"}, '
                                     '"rows": [{"target": "query", "iterations": 50, "size": 3, "trials": 8, '
                                     '"seconds_per_trial": -1, "stored_seconds_per_trial": 0.1}]}'])
def test_a_broken_runtime_recheck_file_is_named(tmp_path, content):
    path = tmp_path / "recheck.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="recheck.json is not a runtime recheck"):
        pages.runtime_recheck([_runtime_record("paper", "query", 50, 3, 0.1)], path, {})


def test_the_parameter_line_lists_the_checked_values_in_order():
    values = pages.parameters({"profile": "quick", "ways": None, "stages": "0, 20"}, ["profile", "ways", "stages"])
    assert pages.summary(values) == (
        "**This page's parameters:** `profile = 'quick'`, `ways = None`, `stages = '0, 20'`. `None` takes the "
        "profile's value. To build the page with other values, give them to papermill "
        "(`-p NAME VALUE`; see the README)."
    )

"""The benchmark scripts' own bookkeeping (their timings are never tested)."""

import importlib.util

from conftest import REPO


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_profile_table_gives_the_days_the_stored_cells_were_computed(tmp_path):
    import shutil

    root = tmp_path / "results"
    shutil.copytree(REPO / "results" / "paper" / "tables-3-4", root / "paper" / "tables-3-4")
    rows = {r["experiment"]: r for r in _script("paper_profile").summary("paper", root)}
    assert rows["tables-3-4"]["done"] == 30 and rows["tables-3-4"]["dates"] == "2026-11-29"
    assert rows["tables-1-2"]["done"] == 0 and rows["tables-1-2"]["dates"] == "-"
    # cells of two days: the span
    one = next((root / "paper" / "tables-3-4").glob("*.json"))
    one.write_text(one.read_text().replace('"date": "2026-11-29"', '"date": "2026-11-30"'))
    rows = {r["experiment"]: r for r in _script("paper_profile").summary("paper", root)}
    assert rows["tables-3-4"]["dates"] == "2026-11-29 to 2026-11-30"

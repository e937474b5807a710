"""scripts/execute_book.py: notebooks executed several at a time, failures named, the
slowest (by their last execution) started first, bad options refused."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "execute_book.py"
spec = importlib.util.spec_from_file_location("execute_book", SCRIPT)
assert spec is not None and spec.loader is not None
execute_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_book)


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"name": "mamlpriv", "language": "python", "display_name": "Python"},
                       language_info={"name": "python"})  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell("profile = 'quick'", metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_two_notebooks_at_once_and_a_failure_is_named(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "import os\nprint('threads', os.environ['MAMLPRIV_THREADS'], profile)")
    bad = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('this chapter is broken')")
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--jobs", "2", "--threads", "1", "--profile", "paper", "--out", str(out)]
    r = subprocess.run([*cmd, str(good), str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "this chapter is broken" in r.stderr and "failed: bad.ipynb" in r.stderr
    assert "1 of 2 notebooks executed" in r.stdout
    executed = nbformat.read(out / "good.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert printed.strip() == "threads 1 paper"  # the parameter injected, the threads set
    assert execute_book.last_duration(out / "good.ipynb") > 0


def test_the_slowest_last_time_starts_first(tmp_path):
    for name, seconds in (("a", 3.0), ("b", None), ("c", 9.0)):
        meta = {"papermill": {"duration": seconds}}
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"metadata": meta, "cells": []}))
    (tmp_path / "d.ipynb").write_text("{not json")
    notebooks = [Path("notebooks") / f"{n}.ipynb" for n in "abcde"]  # e: never executed
    order = execute_book.slowest_first(notebooks, tmp_path)
    assert [nb.stem for nb in order] == ["c", "a", "b", "d", "e"]


@pytest.mark.parametrize("option", [["--jobs", "0"], ["--threads", "two"]])
def test_bad_options_are_refused_by_name(tmp_path, option, capsys):
    nb = _notebook(tmp_path / "x.ipynb")
    with pytest.raises(SystemExit):
        execute_book.main([*option, str(nb)])
    assert f"{option[0]} must be an integer >= 1, got {option[1]!r}" in capsys.readouterr().err


def test_a_missing_notebook_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        execute_book.main([str(tmp_path / "nowhere.ipynb")])
    err = capsys.readouterr().err
    assert "no such notebook" in err and "nowhere.ipynb" in err

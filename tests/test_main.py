"""The command line (`python -m mamlpriv`): status reads, names and carries on."""

import json
import shutil
from pathlib import Path

from mamlpriv.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def test_status_warns_when_the_results_root_does_not_exist(tmp_path, capsys):
    assert main(["status", "--profile", "paper", "--root", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out
    assert "does not exist" in out and str(tmp_path / "nowhere") in out
    assert "tables-1-2: 0/36 cells" in out


def test_status_names_invalid_cell_files_and_lists_every_experiment(tmp_path, capsys):
    """Issue 16: a truncated or empty cell file used to crash `status` with a JSONDecodeError
    naming no file, and the experiments after it went unlisted."""
    root = tmp_path / "results"
    shutil.copytree(REPO / "results" / "paper" / "tables-1-2", root / "paper" / "tables-1-2")
    files = sorted((root / "paper" / "tables-1-2").glob("*.json"))
    files[0].write_text('{"experiment": "tables-1-2", "cel')  # truncated
    files[1].write_text("")  # empty
    record = json.loads(files[3].read_text())
    files[2].write_text(json.dumps(record))  # another cell's record under this name
    assert main(["status", "--profile", "paper", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tables-1-2: 33/36 cells" in out
    assert out.count("invalid (will be computed again)") == 3
    assert all(f.name in out for f in files[:3])
    assert "game-control: 0/4 cells" in out  # the listing went on past the bad files
    assert all(f.exists() for f in files[:3])  # status only reads: nothing moved aside


def test_run_refuses_bad_jobs_and_a_scheduler_without_dask(tmp_path, capsys):
    """A bad --jobs is a usage error naming the option (it was a traceback naming n_jobs),
    and --scheduler without --backend dask is refused (it was silently ignored)."""
    import pytest

    for argv, words in (
        (["--jobs", "0"], "--jobs must be an integer >= 1, got 0"),
        (["--scheduler", "tcp://host:8786"], "--scheduler is used only with --backend dask, got --backend serial"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--profile", "quick", "--experiment", "first-order", "--root", str(tmp_path), *argv])
        assert exit_info.value.code == 2 and words in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was computed or written

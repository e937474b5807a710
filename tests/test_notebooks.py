"""The notebooks stay paired with their jupytext sources and expose papermill parameters.
(Their execution is tested by nbval: `make nbval`.)"""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))


def cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert SOURCES


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_ipynb_matches_its_py_source(src):
    ipynb = src.with_suffix(".ipynb")
    assert ipynb.exists(), f"run `make sync` to create {ipynb.name}"
    assert cells(jupytext.read(src)) == cells(jupytext.read(ipynb)), f"{ipynb.name} is stale: run `make sync`"
    assert all(not c.get("outputs") for c in jupytext.read(ipynb).cells if c.cell_type == "code")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_parameters_cell(src):
    nb = jupytext.read(src)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    # chapters built only on the runner's catalogue take their datasets and seeds from it
    catalogue_only = "catalog" in src.read_text() and "\ndataset = " not in "\n" + tagged[0].source
    for name in ("profile",) if catalogue_only else ("dataset", "seed", "profile"):
        assert f"\n{name} = " in "\n" + tagged[0].source
    assert '\nprofile = "quick"' in "\n" + tagged[0].source  # nbval runs the defaults

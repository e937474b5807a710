"""Hide papermill's injected parameters cell in executed notebooks (tag it ``remove-cell``,
which the book drops): the reader sees the chapter's own parameters cell, not a copy.

    python scripts/hide_injected.py book/*.ipynb
"""

from __future__ import annotations

import sys

import nbformat


def hide(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    n = 0
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            n += 1
    nbformat.write(nb, path)
    return n


if __name__ == "__main__":
    for p in sys.argv[1:]:
        hide(p)

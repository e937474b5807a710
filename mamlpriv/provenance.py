"""Where a result came from, and writing it so that an interruption never leaves half a file.

Every stored result carries :func:`provenance`: the git commit of the library (and
whether the checkout had uncommitted changes), library versions, the machine and the
date. :func:`write_json` writes through a temporary file and ``os.replace``, which is
atomic on POSIX and Windows: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent


def _git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=_HERE).stdout.strip()
    except OSError:  # no git on this machine
        return ""


def provenance(**extra) -> dict:
    """The git commit, a dirty flag for the library folder, versions, machine, date."""
    import numpy

    return {
        "git_commit": _git("rev-parse", "HEAD") or "unknown (not a git checkout)",
        "library_modified_since_commit": bool(_git("status", "--porcelain", ".")),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "platform": f"{platform.system()} {platform.release()}; {sys.implementation.name}",
        "date": datetime.date.today().isoformat(),
        **extra,
    }


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``data`` (text, bytes, or a function that writes a given path, e.g.
    ``lambda p: torch.save(obj, p)``) to ``path`` atomically: into a temporary file of
    this process beside it, flushed to disk, then renamed over ``path``. A failed write
    removes its temporary file; the old ``path`` is never touched before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            data(tmp)
        elif isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, json.dumps(obj, indent=1))


def write_result(path: str | os.PathLike, script: str, args: dict, **content) -> Path:
    """Write a result file (JSON) with its provenance: the script and its arguments, the
    git commit, the machine, torch's version and the date; written atomically."""
    return write_json(path, {"provenance": provenance(script=script, args=args), **content})

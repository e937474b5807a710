"""What a book page shows, and the checks every chapter runs first.

A chapter shows the points of its experiments. For each point the paper profile's stored
cell is shown when it exists; otherwise the chapter's own profile computes the cell
(through the runner: cached, resumable). :data:`POINT_KEYS` says what makes two cells
the same point whatever the profile's scale (trials, training length, candidate
stages). Each shown record gets ``"shown"``: the profile it comes from.

:func:`parameters` is the first call of every chapter: it refuses parameters the chapter
does not know (papermill only warns about them) and checks the profile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from . import catalog, checks
from . import cells as _cells  # from_config looked up at call time (tests register demo cells)
from .cells import Cell, LearningCell, MembershipCell, RuntimeCell
from .defenses import defence_point
from .runner import PROFILES, Experiment, load, run


def _membership(c: Cell) -> MembershipCell:
    assert isinstance(c, MembershipCell)
    return c


def _learning(c: Cell) -> LearningCell:
    assert isinstance(c, LearningCell)
    return c


def _runtime(c: Cell) -> RuntimeCell:
    assert isinstance(c, RuntimeCell)
    return c


def _run_point(c: LearningCell) -> tuple:
    """A MAML chapter's run, whatever its length."""
    return (c.dataset, c.ways, c.shots, c.seed, c.maml.inner_lr, c.maml.inner_steps, c.maml.first_order)


# experiment -> the point of a typed cell
POINT_KEYS: dict[str, Callable[[Any], tuple]] = {
    "tables-1-2": lambda c: _membership(c).shape,
    "tables-3-4": lambda c: (_runtime(c).target, _runtime(c).iterations, _runtime(c).size),
    "stronger-tests": lambda c: _membership(c).shape,
    "stronger-tests-replication": lambda c: _membership(c).shape,
    "maml-variants": lambda c: _run_point(_learning(c)),
    "gradient-anatomy": lambda c: (c.dataset, c.ways, c.shots, c.seed, c.inner_lr),
    "ways-shots": lambda c: _membership(c).shape,
    "training-stages": lambda c: (*_membership(c).shape, _membership(c).stages),
    "first-order": lambda c: _membership(c).shape,
    "inner-loop": lambda c: (*_membership(c).shape, _membership(c).maml.inner_lr, _membership(c).maml.inner_steps),
    "defence-attacks": lambda c: (*_membership(c).shape, defence_point(_membership(c).noise)),
    "defence-tests": lambda c: (*_membership(c).shape, defence_point(_membership(c).noise)),
    "defence-learning": lambda c: (_learning(c).dataset, _learning(c).seed, defence_point(_learning(c).noise)),
    "game-control": lambda c: _membership(c).shape,
    "audit": lambda c: (c.dataset, c.target, defence_point(c.noise)),
    "aggregation": lambda c: (
        ("attack", *c.shape, c.aggregate)
        if isinstance(c, MembershipCell)
        else ("learning", c.dataset, c.seed, defence_point(c.noise))
    ),
}


def point(experiment_name: str, config: Mapping) -> tuple:
    """The point of a stored cell's configuration in ``experiment_name``."""
    return POINT_KEYS[experiment_name](_cells.from_config(dict(config)))


# knobs that change what a cell measures but not its point (POINT_KEYS): trials, the length
# of meta-training or of the attack, the attack's candidate learning rates
MEASURES = ("trials", "validation", "train_iterations", "iterations", "attack_iterations", "lrs")


def shown(
    experiment_name: str,
    profile: str,
    root: str | os.PathLike = "results",
    compute: bool = True,
    paper_points: bool = True,
    **knobs: Any,
) -> list[dict]:
    """The records a page of ``profile`` shows for one experiment of :mod:`.catalog`.

    Without ``knobs``: every stored cell of the paper profile, completed by the cells of
    ``profile`` whose points the paper profile has not stored (run or resumed here).
    With ``knobs`` (a chapter rerun with other parameters): exactly the points of
    ``catalog.experiment(experiment_name, profile, **knobs)``, each from the paper
    profile when stored there, else computed in ``profile``; with a knob of
    :data:`MEASURES` (more trials, another training length) a stored cell stands in only
    when it is the very cell asked for. ``compute=False`` runs
    nothing: cells not stored are left out. ``paper_points=False``: exactly the cells of
    ``profile`` with ``knobs``, none taken from the paper profile (for a knob that changes
    what a point measures but not the point, such as the MAML chapter's training length)."""
    key = POINT_KEYS[experiment_name]
    paper = catalog.experiment(experiment_name, "paper")
    own = catalog.experiment(experiment_name, profile, **knobs)

    def records(exp: Experiment, prof: str) -> list[dict]:  # run (or resume) them, or only read them
        got = run(exp, prof, root, progress=False) if compute else load(exp, prof, root, missing_ok=True)
        return [dict(r, shown=prof) for r in got]

    if not paper_points:
        return records(own, profile)
    if profile == "paper" and not knobs:
        return records(paper, "paper")
    parsed = {}  # point -> (cell, record) of the stored paper cells, each config parsed once
    for r in load(paper, "paper", root, missing_ok=True):
        c = _cells.from_config(dict(r["config"]))
        parsed[key(c)] = (c, dict(r, shown="paper"))
    asked = {key(c): c for c in own.cells}
    exact = any(knobs.get(k) is not None for k in MEASURES)  # measured otherwise: only the same cell stands in
    stored = {pt: r for pt, (c, r) in parsed.items() if not exact or asked.get(pt) == c}
    need = Experiment(own.name, tuple(c for c in own.cells if key(c) not in stored), own.parallel)
    computed = records(need, profile) if need.cells else []
    if knobs:
        return [r for pt, r in stored.items() if pt in asked] + computed
    return list(stored.values()) + computed


def inner_loop_shown(
    profile: str, root: str | os.PathLike = "results", compute: bool = True, **knobs: Any
) -> list[dict]:
    """:func:`shown` of the inner-loop points together with their Tables I-II twin: the
    cell of the same shape at inner rate :data:`~mamlpriv.catalog.INNER_LR` with one step,
    which the inner-loop experiment does not repeat. ``knobs`` as for
    :func:`mamlpriv.catalog.inner_loop` (shape defaults: MNIST 3-way 1-shot)."""
    shape = (knobs.get("dataset") or "mnist", knobs.get("ways") or 3, knobs.get("shots") or 1)
    sizes = {k: knobs[k] for k in ("trials", "validation") if knobs.get(k) is not None}
    twin_knobs = dict(datasets=(shape[0],), grid=[shape[1:]], **sizes) if knobs else {}
    twin = [
        r
        for r in shown("tables-1-2", profile, root, compute, **twin_knobs)
        if (r["config"]["dataset"], r["config"]["ways"], r["config"]["shots"]) == shape
    ]
    return shown("inner-loop", profile, root, compute, **knobs) + twin


def planned(experiment_name: str, profile: str, **knobs: Any) -> int:
    """How many points :func:`shown` gives for the same arguments once every cell is
    stored: the paper profile's points together with ``profile``'s, or with ``knobs``
    exactly the points of ``catalog.experiment(experiment_name, profile, **knobs)``."""
    key = POINT_KEYS[experiment_name]
    own = {key(c) for c in catalog.experiment(experiment_name, profile, **knobs).cells}
    if knobs:
        return len(own)
    return len(own | {key(c) for c in catalog.experiment(experiment_name, "paper").cells})


# names a notebook namespace holds before its parameters: IPython's own
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_CHECKED = "_mamlpriv_parameters_checked"


def parameters(namespace: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Check a chapter's parameters: ``namespace`` is the notebook's ``globals()`` right
    after the parameters cell (and papermill's injected cell); ``names`` the chapter's
    parameters. A name the chapter does not know (a misspelt ``-p`` option) raises
    ``NameError`` listing the known ones; ``profile`` must be one of
    :data:`~mamlpriv.runner.PROFILES`. Returns ``{name: value}``."""
    rerun = isinstance(namespace, dict) and namespace.get(_CHECKED)  # the cell runs again in an open notebook
    unknown = sorted(
        k
        for k, v in namespace.items()
        if not k.startswith("_")
        and k not in names
        and k not in _IPYTHON_NAMES
        and not isinstance(v, ModuleType)
        and not callable(v)
    )
    if unknown and not rerun:
        raise NameError(f"unknown parameter(s) {unknown}; this chapter takes {sorted(names)}")
    missing = [k for k in names if k not in namespace]
    if missing:
        raise NameError(f"parameter(s) {missing} are not defined in the parameters cell")
    values = {k: namespace[k] for k in names}
    if "profile" in values and values["profile"] not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {values['profile']!r}")
    if isinstance(namespace, dict):
        namespace[_CHECKED] = True
    return values


def summary(values: Mapping[str, Any]) -> str:
    """The line a chapter shows under its title: its parameters (as :func:`parameters`
    returned them) and how to build the page with others."""
    shown = ", ".join(f"`{k} = {v!r}`" for k, v in values.items())
    return (
        f"**This page's parameters:** {shown}. `None` takes the profile's value. To build the page "
        "with other values, give them to papermill (`-p NAME VALUE`; see the README)."
    )


def as_tuple(name: str, value: Any, kind: type = int) -> tuple | None:
    """A grid knob given on papermill's command line: None (the profile's value), a list,
    or a string such as ``"0, 300"`` or ``"[0, 300]"``; each item converted to ``kind``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.strip("[]() ").replace(",", " ").split()]
    if not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of {kind.__name__} values, got {value!r}") from None


def shape_pairs(name: str, value: Any) -> list[tuple[int, int]] | None:
    """A knob of (ways, shots) pairs given on papermill's command line, e.g. ``"3 1 5 2"``
    (3-way 1-shot and 5-way 2-shot) or ``[3, 1, 5, 2]``: the pairs, or None (the
    profile's grid)."""
    flat = as_tuple(name, value)
    if flat is None:
        return None
    if not flat or len(flat) % 2:
        raise ValueError(f"{name} must be (ways, shots) pairs, an even number of integers, got {value!r}")
    return list(zip(flat[::2], flat[1::2]))


def grid_knobs(**values: Any) -> dict[str, Any]:
    """The knobs a chapter was run with: the given ``values`` that are not None (None
    takes the profile's value, so no knob at all is the chapter's default grid)."""
    return {k: v for k, v in values.items() if v is not None}


def shape_records(
    profile: str,
    root: str | os.PathLike = "results",
    compute: bool = True,
    datasets: Sequence[str] | None = None,
    fig5_ways: Sequence[int] | None = None,
    fig6_shots: Sequence[int] | None = None,
    trials: int | None = None,
    validation: int | None = None,
) -> list[dict]:
    """The records of Figures 5-6: one shot at each of ``fig5_ways`` and three ways at
    each of ``fig6_shots`` (None: the paper's). Shapes of Tables I-II's grid come from
    ``tables-1-2``, the others from ``ways-shots``; without knobs, every stored point."""
    knobs = grid_knobs(datasets=datasets, trials=trials, validation=validation)
    if not knobs and fig5_ways is None and fig6_shots is None:
        return shown("tables-1-2", profile, root, compute) + shown("ways-shots", profile, root, compute)
    shapes = {(w, 1) for w in (fig5_ways or catalog.FIG5_WAYS)} | {(3, s) for s in (fig6_shots or catalog.FIG6_SHOTS)}
    grid = set(catalog.profile("paper").grid)
    out = []
    if shapes & grid:
        out += shown("tables-1-2", profile, root, compute, grid=sorted(shapes & grid), **knobs)
    if shapes - grid:
        out += shown("ways-shots", profile, root, compute, shapes=sorted(shapes - grid), **knobs)
    return out


def where_from(records: list[dict], label: str, trials: bool = True) -> str:
    """A line for a chapter's "Where these numbers come from": how many of ``records``
    (as :func:`shown` returns them) are stored cells of the paper profile (their commits
    and dates), how many were computed for this build, and the trials per cell."""
    stored = [r for r in records if r["shown"] == "paper"]
    here = [r for r in records if r["shown"] != "paper"]
    text = f"{label}: {len(stored)} stored cells of the paper profile"
    if stored:
        commits = ", ".join(sorted({r["provenance"]["git_commit"][:7] for r in stored}))
        dates = sorted({r["provenance"]["date"] for r in stored})
        span = " to ".join(dict.fromkeys([dates[0], dates[-1]]))
        text += f" (commit {commits}, {span})"
    text += f", {len(here)} computed for this build"
    if here:
        text += f" ({', '.join(sorted({r['shown'] for r in here}))} profile)"
    if trials and records:
        sizes = sorted({(r["config"]["trials"], r["config"]["validation"]) for r in records})
        per = ", ".join(f"{t} test and {v} validation trials" for t, v in sizes)
        text += f"; {per} per cell"
    return text + "."


# A fresh measurement of the Tables III-IV grid beside the stored cells, written by
# ``bench/attack_runtime.py --stored --save`` (relative to the results folder).
RUNTIME_RECHECK = "attacks/runtime-recheck.json"
_RECHECK_KEYS = ("target", "iterations", "size", "trials", "seconds_per_trial", "stored_seconds_per_trial")


def runtime_recheck(records: list[dict], path: str | os.PathLike, paper_times: Mapping) -> str | None:
    """A sentence on how the stored runtime ``records`` (as :func:`shown` returns them)
    compare with a later measurement of the same cells in ``path``: the range of
    later / stored seconds per trial and the paper / ours ratios both ways.
    ``paper_times``: ``{target: {iterations: {size: seconds}}}``. None when the file is
    missing or none of its rows was measured beside a shown stored cell; a file that cannot be read as
    such raises ``ValueError`` naming it."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            data = json.load(fh)
        rows = [{k: r[k] for k in _RECHECK_KEYS} for r in data["rows"]]
        when, machine = data["provenance"]["date"], data["provenance"]["machine"]
        for r in rows:
            for k in _RECHECK_KEYS[-2:]:
                checks.real(k, r[k], 0.0, lo_open=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"runtime recheck file {path} is not a runtime recheck ({e})") from None
    later = {(r["target"], r["iterations"], r["size"], r["trials"]): r for r in rows}
    pairs, dates = [], set()
    for rec in records:
        c, then = rec["config"], rec["result"]["seconds_per_trial"]
        again = later.get((c["target"], c["iterations"], c["size"], c["trials"]))
        # only a measurement taken beside this very stored cell (not one it replaced)
        if rec["shown"] != "paper" or again is None or again["stored_seconds_per_trial"] != then:
            continue
        paper = paper_times[c["target"]][c["iterations"]][c["size"]]
        pairs.append((then, again["seconds_per_trial"], paper))
        dates.add(rec["provenance"]["date"])
    if not pairs:
        return None
    slower = [now / then for then, now, _ in pairs]
    then_x = [p / then for then, _, p in pairs]
    now_x = [p / now for _, now, p in pairs]
    return (
        f"Measured again on {when} ({machine}), {len(pairs)} of these cells took "
        f"{min(slower):.1f}-{max(slower):.1f} times as long per trial as when stored "
        f"({', '.join(sorted(dates))}): against the paper {min(now_x):.1f}-{max(now_x):.1f}x "
        f"instead of {min(then_x):.1f}-{max(then_x):.1f}x."
    )

"""Figures for the book. Each function draws on a matplotlib ``Axes`` and returns it, or
builds and returns a whole figure.

Every figure is drawn to be read at the width of the book's main column: about 8.5
inches at 100 dpi (:data:`PAGE_WIDTH`), with no text smaller than 8 points. One colour
stands for one quantity across the book (:data:`PALETTE`): the query attack red, the
support attack purple, learning (meta-test) accuracy blue, second-order MAML teal,
first-order MAML orange, the confident noise area green.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from . import paper

PAGE_WIDTH = 8.5  # inches: the book's main column at 100 dpi

# one colour per quantity, the same on every page
PALETTE = {
    "query attack": "#d62728",
    "support attack": "#9467bd",
    "learning accuracy": "#1f77b4",
    "second order": "#00897b",
    "first order": "#ff7f0e",
    "first order, more steps": "#a0522d",
    "confident area": "#2ca02c",
    "chance": "grey",
    "paper": "black",
}
ATTACK_COLORS = {"query": PALETTE["query attack"], "support": PALETTE["support attack"]}


def integer_ticks(ax: Axes, axis: str = "x") -> Axes:
    """Integer ticks only on ``axis`` ("x" or "y") of ``ax``: for steps, shots, ways."""
    locator = MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10])
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(locator)
    return ax


def learning_curves(
    histories: Mapping[str, Sequence[dict]],
    ax: Axes | None = None,
    chance: float | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """Held-out few-shot accuracy against meta-iterations, one line per run, with the
    95% confidence band. ``histories`` maps a label to a ``meta_train`` history;
    ``colors`` optionally maps a label to its colour."""
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.75, 3.6))
    for label, hist in histories.items():
        it = [h["iteration"] for h in hist]
        acc = [h["test_acc"] for h in hist]
        ci = [h["test_ci95"] for h in hist]
        color = (colors or {}).get(label)
        (line,) = ax.plot(it, acc, marker="o", ms=3, label=label, color=color)
        ax.fill_between(
            it,
            [a - c for a, c in zip(acc, ci)],
            [a + c for a, c in zip(acc, ci)],
            color=line.get_color(),
            alpha=0.2,
            lw=0,
        )
    if chance is not None:
        ax.axhline(chance, color=PALETTE["chance"], ls=":", lw=1, label="chance")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("meta-test accuracy")
    ax.set_ylim(0, 1)
    integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return ax


def attack_samples(rows, title: str | None = None):
    """Figure 4 of the paper: each row is ``(label, target image, reconstruction, score)``;
    the target (the attack's input) is drawn left, the reconstruction of its slot right.
    Images are ``(1, H, W)`` or ``(H, W)`` in [0, 1]. Returns the figure."""
    return attack_sample_grid({title or "": rows})


def attack_sample_grid(groups: Mapping[str, Sequence]):
    """Figure 4 of the paper for several attacks side by side: ``groups`` maps a title
    (e.g. "query attack") to rows as in :func:`attack_samples`; each group is a pair of
    columns, target left and reconstruction right, under its title. Returns the figure."""
    groups = {k: list(v) for k, v in groups.items()}
    n_rows = max(len(v) for v in groups.values())
    fig = plt.figure(figsize=(2.1 * 2 * len(groups), 1.7 * n_rows + 0.6), layout="constrained")
    for sub, (title, rows) in zip(fig.subfigures(1, len(groups), squeeze=False)[0], groups.items()):
        axes = sub.subplots(n_rows, 2, squeeze=False)
        for r, (a, b) in enumerate(axes):
            for ax in (a, b):
                ax.set_xticks([])
                ax.set_yticks([])
            if r >= len(rows):
                a.axis("off")
                b.axis("off")
                continue
            label, x0, rec, score = rows[r]
            for ax, img in ((a, x0), (b, rec)):
                ax.imshow(img.reshape(img.shape[-2], img.shape[-1]), cmap="gray", vmin=0, vmax=1)
            a.set_ylabel(label, fontsize=9)
            b.set_xlabel(f"SSIM {score:.2f}", fontsize=9)
        axes[0][0].set_title("target (input)", fontsize=9)
        axes[0][1].set_title("reconstruction", fontsize=9)
        if title:
            sub.suptitle(title, fontsize=10, weight="bold")
    return fig


def metric_curve(
    rows: Sequence[Mapping],
    x: str,
    y: str = "accuracy",
    ax: Axes | None = None,
    label: str | None = None,
    band: bool = True,
    **style,
) -> Axes:
    """One line of ``y`` against ``x`` over report rows (:func:`mamlpriv.report.membership_rows`),
    sorted by ``x``, with the 95% band ``y_lo``..``y_hi`` when the rows carry it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    rows = sorted(rows, key=lambda r: r[x])
    xs, ys = [r[x] for r in rows], [r[y] for r in rows]
    style.setdefault("marker", "o")
    style.setdefault("ms", 4)
    (line,) = ax.plot(xs, ys, label=label, **style)
    if band and rows and rows[0].get(f"{y}_lo") is not None:
        ax.fill_between(
            xs, [r[f"{y}_lo"] for r in rows], [r[f"{y}_hi"] for r in rows], color=line.get_color(), alpha=0.15, lw=0
        )
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.grid(alpha=0.3)
    return ax


# ----- defences (Figures 9-12) --------------------------------------------------------------


def noise_panel(
    rows: Sequence[Mapping], ax: Axes | None = None, title: str | None = None, attack: str | None = None
) -> Axes:
    """One panel of Figures 9-12: attack accuracy (the attack's colour, red for the query
    attack by default) and learning accuracy (blue) against the noise level (log scale),
    the noise-free learning accuracy dashed, and the confident noise area shaded green.
    ``rows``: :func:`mamlpriv.report.defence_rows` of one dataset, attack and location."""
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    rows = sorted(rows, key=lambda r: r["level"])
    attack = attack or (rows[0]["attack"] if rows else "query")
    color = ATTACK_COLORS.get(attack, PALETTE["query attack"])
    x = [r["level"] for r in rows]
    ax.plot(x, [r["attack_accuracy"] for r in rows], "o-", color=color, ms=4, label=f"{attack} attack accuracy")
    learn = [(r["level"], r["learning_accuracy"]) for r in rows if r["learning_accuracy"] is not None]
    if learn:
        ax.plot(*zip(*learn), "s-", color=PALETTE["learning accuracy"], ms=4, label="learning accuracy")
    base = next((r["baseline_learning"] for r in rows if r["baseline_learning"] is not None), None)
    if base is not None:
        ax.axhline(base, color=PALETTE["learning accuracy"], ls="--", lw=1, label="learning, no noise")
    # shade each confident level over half a log-step either side
    logs = np.log10(x)
    half = (np.diff(logs).min() / 2) if len(logs) > 1 else 0.25
    shaded = False
    for r, lx in zip(rows, logs):
        if r.get("confident"):
            ax.axvspan(
                10 ** (lx - half),
                10 ** (lx + half),
                color=PALETTE["confident area"],
                alpha=0.2,
                lw=0,
                label=None if shaded else "confident noise area",
            )
            shaded = True
    ax.axhline(0.5, color=PALETTE["chance"], ls=":", lw=1, label="chance (0.5)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("noise standard deviation")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def noise_legend_handles(attack: str) -> tuple[list, list[str]]:
    """Legend entries of a figure of :func:`noise_panel` panels, the confident area
    included even where no panel has one (so the green is always explained)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=ATTACK_COLORS.get(attack, PALETTE["query attack"]), marker="o", ms=4),
        Line2D([], [], color=PALETTE["learning accuracy"], marker="s", ms=4),
        Line2D([], [], color=PALETTE["learning accuracy"], ls="--", lw=1),
        Line2D([], [], color=PALETTE["chance"], ls=":", lw=1),
        Patch(color=PALETTE["confident area"], alpha=0.2, lw=0),
    ]
    labels = [f"{attack} attack accuracy", "learning accuracy", "learning, no noise", "chance", "confident noise area"]
    return handles, labels


def noise_grid(rows: Sequence[Mapping], attack: str, locations: Sequence[str], title: str | None = None):
    """Figures 9-12 as a 2x2 grid, one :func:`noise_panel` per noise location (in
    ``locations`` order, lettered (a)-(d)), with one legend for the figure. ``rows``:
    :func:`mamlpriv.report.defence_rows` of one dataset and attack. Returns the figure."""
    n = len(locations)
    ncols = 2 if n > 1 else 1
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 2.9 * nrows + 0.9), sharey=True, squeeze=False)
    flat = [ax for line in axes for ax in line]
    for i, (ax, location) in enumerate(zip(flat, locations)):
        sel = [r for r in rows if r["location"] == location]
        noise_panel(
            sel,
            ax=ax,
            title=f"({'abcdefgh'[i]}) {location.replace('_grad', '_gradient').replace('_', ' ')}",
            attack=attack,
        )
        if i % ncols:
            ax.set_ylabel("")
    for ax in flat[n:]:
        ax.axis("off")
    handles, labels = noise_legend_handles(attack)
    fig.legend(handles, labels, loc="upper center", ncol=5, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.0))
    if title:
        fig.suptitle(title, fontsize=10, y=0.94)
    fig.tight_layout(rect=(0, 0, 1, 0.9 if title else 0.94))
    return fig


# ----- sensitivity figures (5-8, inner loop) ----------------------------------------------


def dataset_panels(datasets: Sequence[str], width: float | None = None, height: float = 3.4):
    """A row of panels, one per dataset: ``(figure, [(axis, dataset), ...])``. The row is
    :data:`PAGE_WIDTH` wide unless ``width`` (per panel) is given."""
    datasets = sorted(set(datasets))
    total = PAGE_WIDTH if width is None else width * len(datasets)
    fig, axes = plt.subplots(1, len(datasets), figsize=(total, height), squeeze=False)
    return fig, list(zip(axes[0], datasets))


def finish_accuracy(ax: Axes, title: str, legend: str = "lower left") -> Axes:
    """Chance line, the accuracy range 0.3-1, title and legend of one attack panel."""
    ax.axhline(0.5, color=PALETTE["chance"], ls=":", lw=1)
    ax.set_ylim(0.3, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(loc=legend, fontsize=8)  # type: ignore[call-overload]  # loc is one of matplotlib's names
    return ax


def _paper_points(attack: str, dataset: str, axis: str, fixed: tuple[str, int], values: Sequence[int]) -> list:
    """The paper's accuracies (Tables I-II) on one curve of Figures 5-6: ``[(x, acc)]``."""
    table = paper.PAPER_TABLES[attack].get(dataset, {})
    out = []
    for v in values:
        shape = (v, fixed[1]) if axis == "ways" else (fixed[1], v)
        if shape in table:
            out.append((v, table[shape][0]))
    return out


def shape_curves(
    rows: Sequence[Mapping],
    axis: str,
    fixed: tuple[str, int],
    values: Sequence[int],
    y: str = "accuracy",
    paper_points: bool = True,
):
    """Figures 5 (``axis="ways"``, ``fixed=("shots", 1)``) and 6 (``axis="shots"``,
    ``fixed=("ways", 3)``): ``y`` (accuracy with its Wilson band, or auc with its
    bootstrap band) of both attacks against ``axis``, paper's game, one panel per
    dataset. ``rows``: membership report rows. With ``y="accuracy"`` the paper's
    accuracies (its Tables I-II, at the shapes they cover) are overlaid as open markers
    labelled "paper" unless ``paper_points=False``."""
    rows = [r for r in rows if r["game"] == "paper"]
    fig, panels = dataset_panels([r["dataset"] for r in rows])
    for ax, ds in panels:
        shape_panel(ax, rows, ds, axis, fixed, values, y, paper_points)
    fig.tight_layout()
    return fig


def shape_panel(
    ax: Axes,
    rows: Sequence[Mapping],
    dataset: str,
    axis: str,
    fixed: tuple[str, int],
    values: Sequence[int],
    y: str = "accuracy",
    paper_points: bool = True,
    title: str | None = None,
    legend: bool = True,
) -> Axes:
    """One panel of :func:`shape_curves`: both attacks on ``dataset``."""
    for attack in ("query", "support"):
        sel = [
            r
            for r in rows
            if r["dataset"] == dataset
            and r["game"] == "paper"
            and r["attack"] == attack
            and r[fixed[0]] == fixed[1]
            and r[axis] in values
        ]
        metric_curve(sel, axis, y, ax=ax, label=f"{attack} attack", color=ATTACK_COLORS[attack])
        pts = _paper_points(attack, dataset, axis, fixed, values) if y == "accuracy" and paper_points else []
        if pts:
            ax.plot(
                *zip(*pts),
                ls="none",
                marker="D",
                ms=6,
                mfc="white",
                mec=ATTACK_COLORS[attack],
                mew=1.5,
                label=f"{attack} attack, paper",
            )
    ax.set_xticks(list(values))
    ax.set_ylabel("AUC" if y == "auc" else y)
    fixed_name = fixed[0][:-1] if fixed[1] == 1 else fixed[0]
    ax.axhline(0.5, color=PALETTE["chance"], ls=":", lw=1, label="chance")
    ax.set_ylim(0.3, 1.02)
    ax.set_title(title or f"{dataset}, {fixed[1]} {fixed_name}", fontsize=10)
    if legend:
        ax.legend(loc="lower left", fontsize=8)
    return ax


def shape_figure(rows: Sequence[Mapping], axis: str, fixed: tuple[str, int], values: Sequence[int]):
    """Figure 5 or 6 in one figure: accuracy (top row, with the paper's points) and AUC
    (bottom row) of both attacks against ``axis``, one column per dataset, one legend
    for the figure (see :func:`shape_curves`). Returns the figure."""
    rows = [r for r in rows if r["game"] == "paper"]
    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(2, len(datasets), figsize=(PAGE_WIDTH, 6.6), squeeze=False, sharex="col", sharey="row")
    fixed_name = fixed[0][:-1] if fixed[1] == 1 else fixed[0]
    for j, ds in enumerate(datasets):
        top, bottom = axes[0][j], axes[1][j]
        shape_panel(
            top, rows, ds, axis, fixed, values, "accuracy", title=f"{ds}, {fixed[1]} {fixed_name}", legend=False
        )
        shape_panel(bottom, rows, ds, axis, fixed, values, "auc", title=f"{ds}: AUC", legend=False)
        top.set_xlabel("")
        top.tick_params(labelbottom=True)
        if j:
            top.set_ylabel("")
            bottom.set_ylabel("")
    handles, labels = axes[0][0].get_legend_handles_labels()
    # the attacks first, then the paper's points, then chance
    order = sorted(range(len(labels)), key=lambda i: (labels[i] == "chance", labels[i].endswith("paper"), labels[i]))
    fig.legend(
        [handles[i] for i in order], [labels[i] for i in order], loc="upper center", ncol=5, fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def stage_curves(rows: Sequence[Mapping], attack: str):
    """Figures 7 (query) and 8 (support): accuracy of ``attack`` against the meta-training
    stage, paper's game solid and strict game dotted, and the meta-test accuracy of the
    same snapshot (blue, dashed) on the right axis; one panel per dataset, one legend."""
    rows = [r for r in rows if r["attack"] == attack]
    fig, panels = dataset_panels([r["dataset"] for r in rows], height=3.6)
    color = ATTACK_COLORS.get(attack, PALETTE["query attack"])
    for ax, ds in panels:
        for game, ls in (("paper", "-"), ("strict", ":")):
            sel = [r for r in rows if r["dataset"] == ds and r["game"] == game]
            metric_curve(sel, "stage", "accuracy", ax=ax, label=f"{attack} attack, {game} game", ls=ls, color=color)
        learn = [r for r in rows if r["dataset"] == ds and r["game"] == "paper" and r["learning_acc"] is not None]
        twin = ax.twinx()
        metric_curve(
            learn,
            "stage",
            "learning_acc",
            ax=twin,
            band=False,
            color=PALETTE["learning accuracy"],
            ls="--",
            marker="s",
            ms=3,
            label="meta-test accuracy (right axis)",
        )
        twin.set_ylim(0, 1)
        twin.set_ylabel("meta-test accuracy", color=PALETTE["learning accuracy"])
        twin.grid(False)
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("attack accuracy")
        integer_ticks(ax)
        ax.axhline(0.5, color=PALETTE["chance"], ls=":", lw=1, label="chance")
        ax.set_ylim(0.3, 1.02)
        ax.set_title(f"{attack} attack, {ds}", fontsize=10)
    ax, twin = panels[-1][0], fig.axes[-1]
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


# ----- stronger membership tests ---------------------------------------------------------------

# one colour per membership test (the paper's SSIM in its attack's colour on each page)
TEST_STYLES = {
    "ssim": dict(color="#7f7f7f", marker="o", ls="-"),
    "profile": dict(color="#1f77b4", marker="s", ls="-"),
    "combined": dict(color="#ff7f0e", marker="^", ls="-"),
    "ceiling": dict(color="black", marker="x", ls=":"),
}


def roc_loglog(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax: Axes | None = None,
               title: str | None = None, labels: Mapping[str, str] | None = None) -> Axes:  # fmt: skip
    """ROC curves ``{test: (fpr, tpr)}`` on log-log axes (the low-FPR corner, where a
    membership test is judged), with the chance line; FPR 0 points sit at the axis'
    left edge, half of the smallest nonzero FPR."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    floor = min((f for fpr, _ in curves.values() for f in fpr if f > 0), default=0.01) / 2
    for test, (fpr, tpr) in curves.items():
        style = TEST_STYLES.get(test, {})
        xs = [max(f, floor) for f in fpr]
        ys = [max(t, floor) for t in tpr]
        ax.step(xs, ys, where="post", color=style.get("color"), ls=style.get("ls", "-"), lw=2.2 if test == "ceiling"
                else 1.6, label=(labels or {}).get(test, test))  # fmt: skip
    ax.plot([floor, 1], [floor, 1], ls="--", color=PALETTE["chance"], lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1.05)
    ax.set_ylim(floor, 1.05)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def auc_dumbbells(rows: Sequence[Mapping], tests: Sequence[str], ax: Axes | None = None,
                  title: str | None = None, labels: Mapping[str, str] | None = None) -> Axes:  # fmt: skip
    """One line per row (a cell in one game) from its lowest to its highest test AUC,
    a marker per test (``<test>_auc``), rows labelled ``dataset w-way s-shot``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 0.28 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        values = [r[f"{t}_auc"] for t in tests if f"{t}_auc" in r]
        ax.plot([min(values), max(values)], [i, i], color="#bbbbbb", lw=2, zorder=1)
        for t in tests:
            if f"{t}_auc" in r:
                st = TEST_STYLES.get(t, {})
                label = (labels or {}).get(t, t) if i == 0 else None
                ax.scatter(r[f"{t}_auc"], i, s=28, zorder=2, label=label, color=st.get("color"),
                           marker=st.get("marker", "o"))  # fmt: skip
    ax.axvline(0.5, color=PALETTE["chance"], ls="--", lw=1)
    ax.set_yticks(range(len(rows)), [f"{r['dataset']} {r['ways']}-way {r['shots']}-shot" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test AUC")
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def legend_above(fig, ax: Axes, ncol: int = 3, top: float = 0.85) -> None:
    """One legend for a row of panels, above them, from ``ax``'s labelled series; the
    panels are laid out below ``top`` (a fraction of the figure's height)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))


def epsilon_panel(ax: Axes, rows, attack: str, implied: bool = False) -> Axes:
    """One attack's audit against the noise level on ``ax``: the worst case's lower bound
    on epsilon (solid, filled), optionally the epsilon implied by its AUC (dotted, capped
    at 8), and the paper's attack's bound (dashed, open) where it was measured. ``rows``:
    a dataframe of :func:`mamlpriv.audit_report.release_rows` for one data set and one
    defence, with ``level``, ``attack``, ``worst_eps``, ``implied_eps`` and ``attack_eps``."""
    color = ATTACK_COLORS[attack]
    a = rows[rows.attack == attack].sort_values("level")
    if a.empty:
        return ax
    ax.plot(a.level, a.worst_eps, marker="o", color=color, label=f"worst case, {attack}")
    if implied:
        ax.plot(a.level, a.implied_eps.clip(upper=8), ls=":", color=color, label=f"implied, {attack}")
    b = a.dropna(subset=["attack_eps"])
    ax.plot(b.level, b.attack_eps, marker="o", mfc="white", ls="--", color=color, label=f"paper's attack, {attack}")
    return ax


BEST_STYLE = dict(color="#2ca02c", marker="D", ls="-")  # the practical test chosen on validation trials


def defence_tests_grid(rows: Sequence[Mapping], locations: Sequence[str]):
    """The defences against three tests: one row of panels per attack, one column per
    defence (``locations`` order; the Gaussian mechanism against its noise multiplier),
    AUC against the noise level (log scale) of the paper's attack (SSIM), of the best
    practical test and of the worst case (the audit's ceiling on many trials, where
    stored); levels of 0 (clipping alone) are left to the tables. ``rows``:
    :func:`mamlpriv.strength.defence_rows` of one data set. Returns the figure, or None
    without rows."""
    attacks = [a for a in ATTACK_COLORS if any(r["attack"] == a for r in rows)]
    shown = [loc for loc in locations if any(r["defence"] == loc for r in rows)]
    if not attacks or not shown:
        return None
    fig, axes = plt.subplots(len(attacks), len(shown), figsize=(PAGE_WIDTH, 2.3 * len(attacks) + 0.8),
                             sharey=True, squeeze=False)  # fmt: skip
    for i, attack in enumerate(attacks):
        for j, loc in enumerate(shown):
            ax = axes[i][j]
            sel = sorted((r for r in rows if r["attack"] == attack and r["defence"] == loc and r["level"] > 0),
                         key=lambda r: r["level"])  # fmt: skip
            x = [r["level"] for r in sel]
            ax.plot(x, [r["ssim_auc"] for r in sel], ms=4, label="paper's attack (SSIM)", **TEST_STYLES["ssim"])
            ax.plot(x, [r["best_auc"] for r in sel], ms=4, label="best practical test", **BEST_STYLE)
            worst = [(r["level"], r["worst_auc"]) for r in sel if r.get("worst_auc") is not None]
            if worst:
                ax.plot(*zip(*worst), ms=5, label="worst case (audit)", **TEST_STYLES["ceiling"])
            ax.axhline(0.5, color=PALETTE["chance"], ls="--", lw=1, label="chance")
            ax.set_xscale("log")
            ax.set_ylim(0.3, 1.03)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            if i == 0:
                title = "Gaussian mechanism" if loc == "gaussian mechanism" else loc.replace("_grad", " gradient")
                ax.set_title(title.replace("_", " "), fontsize=9)
            if i == len(attacks) - 1:
                ax.set_xlabel("σ" if loc == "gaussian mechanism" else "noise std", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{attack} attack\nAUC", fontsize=9)
    handles: dict[str, Artist] = {}
    for ax in axes.flat:  # every series once, whichever panel drew it
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = ["paper's attack (SSIM)", "best practical test", "worst case (audit)", "chance"]
    labels = [lab for lab in order if lab in handles]
    fig.legend([handles[lab] for lab in labels], labels, loc="upper center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.3 * len(attacks) + 0.8)))
    return fig

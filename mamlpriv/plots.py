"""Figures for the book. Each function draws on a matplotlib ``Axes`` and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def learning_curves(
    histories: Mapping[str, Sequence[dict]], ax: Axes | None = None, chance: float | None = None
) -> Axes:
    """Held-out few-shot accuracy against meta-iterations, one line per run, with the
    95% confidence band. ``histories`` maps a label to a ``meta_train`` history."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for label, hist in histories.items():
        it = [h["iteration"] for h in hist]
        acc = [h["test_acc"] for h in hist]
        ci = [h["test_ci95"] for h in hist]
        (line,) = ax.plot(it, acc, marker="o", ms=3, label=label)
        ax.fill_between(
            it,
            [a - c for a, c in zip(acc, ci)],
            [a + c for a, c in zip(acc, ci)],
            color=line.get_color(),
            alpha=0.2,
            lw=0,
        )
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("meta-test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return ax


def attack_samples(rows, title: str | None = None):
    """Figure 4 of the paper: each row is ``(label, target image, reconstruction, score)``;
    the target (the attack's input) is drawn left, the reconstruction of its slot right.
    Images are ``(1, H, W)`` or ``(H, W)`` in [0, 1]. Returns the figure."""
    rows = list(rows)
    fig, axes = plt.subplots(len(rows), 2, figsize=(3.2, 1.6 * len(rows)), squeeze=False)
    for (label, x0, rec, score), (a, b) in zip(rows, axes):
        for ax, img in ((a, x0), (b, rec)):
            ax.imshow(img.reshape(img.shape[-2], img.shape[-1]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        a.set_ylabel(label, fontsize=8)
        b.set_title(f"SSIM {score:.2f}", fontsize=8)
    axes[0][0].set_title("input (target)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
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
    (line,) = ax.plot(xs, ys, marker="o", ms=4, label=label, **style)
    if band and rows and f"{y}_lo" in rows[0]:
        ax.fill_between(
            xs, [r[f"{y}_lo"] for r in rows], [r[f"{y}_hi"] for r in rows], color=line.get_color(), alpha=0.15, lw=0
        )
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.grid(alpha=0.3)
    return ax


def noise_panel(rows: Sequence[Mapping], ax: Axes | None = None, title: str | None = None) -> Axes:
    """One panel of Figures 9-12: attack accuracy (red) and learning accuracy (blue)
    against the noise level (log scale), the noise-free learning accuracy dashed, and the
    confident noise area shaded green. ``rows``: :func:`mamlpriv.report.defence_rows` of
    one dataset, attack and location."""
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    rows = sorted(rows, key=lambda r: r["level"])
    x = [r["level"] for r in rows]
    ax.plot(x, [r["attack_accuracy"] for r in rows], "o-", color="tab:red", ms=4, label="attack accuracy")
    learn = [(r["level"], r["learning_accuracy"]) for r in rows if r["learning_accuracy"] is not None]
    if learn:
        ax.plot(*zip(*learn), "s-", color="tab:blue", ms=4, label="learning accuracy")
    base = next((r["baseline_learning"] for r in rows if r["baseline_learning"] is not None), None)
    if base is not None:
        ax.axhline(base, color="tab:blue", ls="--", lw=1, label="learning, no noise")
    # shade each confident level over half a log-step either side
    logs = np.log10(x)
    half = (np.diff(logs).min() / 2) if len(logs) > 1 else 0.25
    for r, lx in zip(rows, logs):
        if r.get("confident"):
            ax.axvspan(10 ** (lx - half), 10 ** (lx + half), color="tab:green", alpha=0.2, lw=0)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("noise standard deviation")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# ----- sensitivity figures (5-8, inner loop) ----------------------------------------------


def dataset_panels(datasets: Sequence[str], width: float = 5.0, height: float = 3.4):
    """A row of panels, one per dataset: ``(figure, [(axis, dataset), ...])``."""
    datasets = sorted(set(datasets))
    fig, axes = plt.subplots(1, len(datasets), figsize=(width * len(datasets), height), squeeze=False)
    return fig, list(zip(axes[0], datasets))


def finish_accuracy(ax: Axes, title: str, legend: str = "lower left") -> Axes:
    """Chance line, the accuracy range 0.3-1, title and legend of one attack panel."""
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(0.3, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(loc=legend, fontsize=8)  # type: ignore[call-overload]  # loc is one of matplotlib's names
    return ax


def shape_curves(
    rows: Sequence[Mapping], axis: str, fixed: tuple[str, int], values: Sequence[int], y: str = "accuracy"
):
    """Figures 5 (``axis="ways"``, ``fixed=("shots", 1)``) and 6 (``axis="shots"``,
    ``fixed=("ways", 3)``): ``y`` (accuracy with its Wilson band, or auc with its
    bootstrap band) of both attacks against ``axis``, paper's game, one panel per
    dataset. ``rows``: membership report rows."""
    rows = [r for r in rows if r["game"] == "paper"]
    fig, panels = dataset_panels([r["dataset"] for r in rows])
    for ax, ds in panels:
        for attack in ("query", "support"):
            sel = [
                r
                for r in rows
                if r["dataset"] == ds and r["attack"] == attack and r[fixed[0]] == fixed[1] and r[axis] in values
            ]
            metric_curve(sel, axis, y, ax=ax, label=f"{attack} attack")
        ax.set_xticks(list(values))
        finish_accuracy(ax, f"{ds}, {fixed[1]} {fixed[0][:-1] if fixed[1] == 1 else fixed[0]}")
    fig.tight_layout()
    return fig


def stage_curves(rows: Sequence[Mapping], attack: str):
    """Figures 7 (query) and 8 (support): accuracy of ``attack`` against the meta-training
    stage, paper's game solid and strict game dotted, and the meta-test accuracy of the
    same snapshot dashed on the right axis; one panel per dataset."""
    rows = [r for r in rows if r["attack"] == attack]
    fig, panels = dataset_panels([r["dataset"] for r in rows])
    for ax, ds in panels:
        for game, ls in (("paper", "-"), ("strict", ":")):
            sel = [r for r in rows if r["dataset"] == ds and r["game"] == game]
            metric_curve(sel, "stage", "accuracy", ax=ax, label=f"{game} game", ls=ls)
        learn = [r for r in rows if r["dataset"] == ds and r["game"] == "paper" and r["learning_acc"] is not None]
        twin = ax.twinx()
        metric_curve(learn, "stage", "learning_acc", ax=twin, band=False, color="grey", ls="--")
        twin.set_ylim(0, 1)
        twin.set_ylabel("meta-test accuracy (dashed)")
        twin.grid(False)
        ax.set_xlabel("meta-iteration")
        finish_accuracy(ax, f"{attack} attack, {ds}")
    fig.tight_layout()
    return fig

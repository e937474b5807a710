"""Figures for the book. Each function draws on a matplotlib ``Axes`` and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def learning_curves(histories: Mapping[str, Sequence[dict]], ax: Axes | None = None, chance: float | None = None) -> Axes:
    """Held-out few-shot accuracy against meta-iterations, one line per run, with the
    95% confidence band. ``histories`` maps a label to a ``meta_train`` history."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for label, hist in histories.items():
        it = [h["iteration"] for h in hist]
        acc = [h["test_acc"] for h in hist]
        ci = [h["test_ci95"] for h in hist]
        (line,) = ax.plot(it, acc, marker="o", ms=3, label=label)
        ax.fill_between(it, [a - c for a, c in zip(acc, ci)], [a + c for a, c in zip(acc, ci)],
                        color=line.get_color(), alpha=0.2, lw=0)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("meta-test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return ax

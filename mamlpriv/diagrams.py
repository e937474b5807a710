"""Schematic drawings of the setting, drawn with matplotlib alone (boxes and arrows).

- :func:`federated_maml`: the paper's Figure 1, federated meta-learning;
- :func:`query_attack_pipeline`: the paper's Figure 2, the membership attack on a query set;
- :func:`support_attack_pipeline`: the paper's Figure 3, the attack on a support set;
- :func:`threat_model`: the book's own table of who sees what.

Each function returns a new :class:`matplotlib.figure.Figure` of ``figsize=(8, 4.5)``,
sized to be read at about 800 pixels wide: no text is smaller than :data:`MIN_FONT`
points. Drawing coordinates run over ``0..16 x 0..9`` (two units per inch).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

__all__ = ["federated_maml", "query_attack_pipeline", "support_attack_pipeline", "threat_model", "MIN_FONT"]

MIN_FONT = 9  # points; the smallest text of every diagram
FIGSIZE = (8, 4.5)
WIDTH, HEIGHT = 16.0, 9.0

# colours: private data grey (as in the paper's Figure 1), the meta-learner / adversary
# blue, computations done by the adversary orange, the decision green
PRIVATE = "#d9d9d9"
META = "#cfe2f3"
TASK = "#ffffff"
ADVERSARY = "#fde9d4"
SHARED = "#fff2b3"
DECISION = "#d9ead3"
EDGE = "#333333"
BLUE = "#1f4e9a"
ORANGE = "#b45f06"


def _canvas() -> tuple[Figure, plt.Axes]:
    fig = plt.figure(figsize=FIGSIZE, dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, HEIGHT)
    ax.axis("off")
    return fig, ax


Rect = tuple[float, float, float, float]  # (x, y, width, height), lower left corner first


def _box(
    ax, rect: Rect, text: str, color: str = TASK, size: float = 10, weight: str = "normal", va: str = "center"
) -> Rect:
    """A rounded box ``rect`` with ``text`` centred in it (or at its top with ``va="top"``).
    Returns ``rect``, for :func:`_side`."""
    x, y, w, h = rect
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.15", fc=color, ec=EDGE, lw=1.2))
    ty = y + h / 2 if va == "center" else y + h - 0.15
    ax.text(x + w / 2, ty, text, ha="center", va=va, fontsize=size, weight=weight, linespacing=1.25)
    return rect


def _side(b, where: str, frac: float = 0.5) -> tuple[float, float]:
    """A point on the edge of box ``b``: ``where`` in top/bottom/left/right, ``frac`` along it."""
    x, y, w, h = b
    return {
        "top": (x + frac * w, y + h),
        "bottom": (x + frac * w, y),
        "left": (x, y + frac * h),
        "right": (x + w, y + frac * h),
    }[where]


def _arrow(
    ax,
    start,
    end,
    text: str | None = None,
    color: str = EDGE,
    rad: float = 0.0,
    text_at: tuple[float, float] | None = None,
    size: float = 10,
    lw: float = 1.6,
    **text_kw,
) -> None:
    """An arrow from ``start`` to ``end`` (curved by ``rad``), labelled at ``text_at``
    (default: its midpoint)."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(
            arrowstyle="-|>",
            color=color,
            lw=lw,
            mutation_scale=14,
            shrinkA=0,
            shrinkB=0,
            connectionstyle=f"arc3,rad={rad}",
        ),
    )
    if text:
        if text_at is None:
            text_at = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        kw = dict(ha="center", va="center", fontsize=size, color=color)
        kw.update(text_kw)
        ax.text(*text_at, text, **kw)


def _title(ax, text: str) -> None:
    ax.text(WIDTH / 2, HEIGHT - 0.3, text, ha="center", va="top", fontsize=12, weight="bold")


def federated_maml() -> Figure:
    """The paper's Figure 1: one round of federated MAML. The meta-learner sends its
    parameters omega to every task-learner; each adapts omega on its private support set,
    evaluates the adapted model on its private query set and sends back one gradient."""
    fig, ax = _canvas()
    _title(ax, "Federated MAML: one round")
    meta_text = "Meta-learner\nholds the parameters $\\omega$\nupdates $\\omega$ with the mean of $g_1, \\dots, g_T$"
    meta = _box(ax, (4.6, 6.35, 6.8, 1.6), meta_text, color=META)
    support = "support set $D^s$\nadapt: $\\omega \\to \\theta$"
    query = "query set $D^q$\n$g = \\nabla_\\omega L(\\theta, D^q)$"
    xs = (0.4, 5.6, 11.6)
    names = ("task-learner 1", "task-learner 2", "task-learner T")
    subscripts = ("1", "2", "T")
    for i, (x, name, k) in enumerate(zip(xs, names, subscripts)):
        w = 4.0
        outer = _box(ax, (x, 0.35, w, 3.75), name, color=TASK, size=10, weight="bold", va="top")
        _box(ax, (x + 0.25, 2.05, w - 0.5, 1.25), support, color=PRIVATE)
        _box(ax, (x + 0.25, 0.6, w - 0.5, 1.25), query, color=PRIVATE)
        top = _side(outer, "top", 0.5)
        down_from = _side(meta, "bottom", 0.12 + 0.33 * i)
        up_to = _side(meta, "bottom", 0.22 + 0.33 * i)
        down_to, up_from = (top[0] - 0.7, top[1]), (top[0] + 0.7, top[1])
        _arrow(
            ax,
            down_from,
            down_to,
            color=BLUE,
            text="$\\omega$",
            size=11,
            text_at=((down_from[0] + down_to[0]) / 2 - 0.35, 5.3),
        )
        _arrow(
            ax, up_from, up_to, color=ORANGE, text=f"$g_{k}$", size=11, text_at=((up_from[0] + up_to[0]) / 2 + 0.4, 5.3)
        )
    ax.text(10.6, 2.2, "...", ha="center", va="center", fontsize=14)
    legend = (
        "blue: $\\omega$ sent down\norange: one gradient\n    per task sent up\ngrey: private data,\n    never sent"
    )
    ax.text(0.3, 8.0, legend, ha="left", va="top", fontsize=9, color="#444444", linespacing=1.3)
    return fig


def _attack_tail(ax, batch, loss) -> None:
    """The common end of both attack pipelines: the loop that updates the dummy batch,
    the reconstruction, its SSIM score against the target and the decision."""
    # optimisation loop: from the loss back to the dummy batch, below the middle row
    start, end = _side(loss, "bottom", 0.4), _side(batch, "bottom", 0.75)
    _arrow(
        ax,
        start,
        end,
        rad=-0.3,
        color=ORANGE,
        text="update $x$ and repeat",
        text_at=((start[0] + end[0]) / 2, start[1] - 0.5),
        size=10,
    )
    rec_text = "reconstruction $x^*$\n(the dummy batch\nafter the last step)"
    rec = _box(ax, (0.4, 0.3, 4.0, 1.5), rec_text, color=ADVERSARY)
    down = batch[0] + 0.5
    _arrow(ax, (down, batch[1]), (down, rec[1] + rec[3]))
    score = _box(ax, (5.3, 0.3, 4.4, 1.5), "SSIM$(x_0, x^*)$\nin the target's slot only", color=ADVERSARY, size=10)
    _arrow(ax, _side(rec, "right"), _side(score, "left"))
    dec_text = "SSIM $\\geq d$: member\nSSIM $< d$: non-member\n(threshold $d$ from\nvalidation trials)"
    dec = _box(ax, (11.0, 0.3, 4.6, 1.5), dec_text, color=DECISION)
    _arrow(ax, _side(score, "right"), _side(dec, "left"))


def _attack_pipeline(
    title: str, row: Sequence[tuple[Rect, str, float]], feeds: Sequence[tuple[Rect, str, str, int]]
) -> Figure:
    """The layout both attack pipelines share (the paper's Figures 2 and 3): a middle row
    of the adversary's boxes ``(rect, text, font size)`` chained left to right by arrows,
    from the target image through the dummy batch to the matching loss; boxes above the
    row, ``(rect, text, colour, i)``, each feeding row box ``i`` by a vertical arrow; and
    the common tail of :func:`_attack_tail` below."""
    fig, ax = _canvas()
    _title(ax, title)
    boxes = [_box(ax, rect, text, color=ADVERSARY, size=size) for rect, text, size in row]
    for a, b in zip(boxes, boxes[1:]):
        _arrow(ax, _side(a, "right"), _side(b, "left"))
    for rect, text, color, i in feeds:
        above = _box(ax, rect, text, color=color, size=10)
        end = _side(boxes[i], "top")
        _arrow(ax, (end[0], above[1]), end)
    _attack_tail(ax, boxes[1], boxes[-1])
    return fig


def query_attack_pipeline() -> Figure:
    """The paper's Figure 2: membership inference on a task's query set. The target x0
    seeds one slot of a dummy batch, the gradient of that batch at omega is matched to
    the shared gradient (1 - cos + TV), and the SSIM of the target slot decides."""
    batch = "dummy query batch $x$\nslot of $x_0$: starts at $x_0$\nother slots: noise\nlabels: known"
    grad = (
        "its gradient at $\\omega$\n$\\nabla_\\omega L(\\omega, x)$\n($\\omega$ stands in\nfor the adapted $\\theta$)"
    )
    loss = "gradient matching\n$1 - \\cos(\\nabla_\\omega L, g)$\n$+\\ \\lambda\\,\\mathrm{TV}(x)$"
    row = [
        ((0.4, 3.9, 2.6, 1.6), "target image\n$x_0$ (the prior)", 10),
        ((3.6, 3.7, 3.4, 2.0), batch, 10),
        ((7.6, 3.7, 3.4, 2.0), grad, 10),
        ((11.6, 3.7, 4.0, 2.0), loss, 10),
    ]
    shared = ((10.9, 7.0, 4.7, 1.0), "shared gradient $g$\nsent by the task-learner", SHARED, 3)
    return _attack_pipeline("Query attack: is $x_0$ in the task's query set?", row, [shared])


def support_attack_pipeline() -> Figure:
    """The paper's Figure 3: membership inference on a task's support set. As the query
    attack, but the adversary simulates the task-learner: it adapts omega on the dummy
    support batch, then takes the gradient on the task's query set (which it is assumed
    to know) and matches that to the shared gradient."""
    row = [
        ((0.3, 3.9, 1.9, 1.6), "target\nimage $x_0$", 10),
        ((2.7, 3.7, 3.0, 2.0), "dummy support\nbatch $x$\nslot of $x_0$: $x_0$\nothers: noise", 10),
        ((6.15, 3.7, 3.0, 2.0), "simulated\nadaptation\n$\\theta = \\omega - \\alpha\\nabla L(\\omega, x)$", 9),
        ((9.6, 3.7, 2.75, 2.0), "simulated task\ngradient\n$\\nabla_\\omega L(\\theta, D^q)$", 10),
        ((12.8, 3.7, 2.9, 2.0), "matching\n$1 - \\cos(\\cdot, g)$\n$+\\ \\lambda\\,\\mathrm{TV}(x)$", 10),
    ]
    feeds = [
        ((7.9, 7.0, 4.2, 1.0), "query set $D^q$ (known\nto this adversary)", PRIVATE, 3),
        ((12.5, 7.0, 3.1, 1.0), "shared gradient $g$", SHARED, 4),
    ]
    return _attack_pipeline("Support attack: is $x_0$ in the task's support set?", row, feeds)


# who sees what: rows of (item, query-attack adversary, support-attack adversary, task-learner)
_SEES = "sees"
_NEVER = "never"
_ASSUMED = "assumed"
THREAT_ROWS = (
    ("parameters $\\omega$", _SEES, _SEES, _SEES),
    ("shared gradient $g$ of the task", _SEES, _SEES, _SEES),
    ("labels of the task's slots", _SEES, _SEES, _SEES),
    ("the task's query images $D^q$", _NEVER, _ASSUMED, _SEES),
    ("the task's support images $D^s$", _NEVER, _NEVER, _SEES),
    ("adapted parameters $\\theta$", _NEVER, _NEVER, _SEES),
)
_CELL_STYLE = {
    _SEES: ("#b6d7a8", "sees it"),
    _ASSUMED: ("#ffe599", "assumed known"),
    _NEVER: ("#f4cccc", "never sees it"),
}


def threat_model() -> Figure:
    """The book's threat-model table: what the adversary (the meta-learner) knows in the
    query attack and in the support attack, beside what the task-learner holds."""
    fig, ax = _canvas()
    ax.text(0.4, 8.3, "Who sees what", ha="left", va="center", fontsize=12, weight="bold")
    cols = ("meta-learner,\nquery attack", "meta-learner,\nsupport attack", "task-learner")
    x0, label_w, col_w = 0.3, 6.2, 3.1
    top, row_h = 7.6, 0.95
    for j, c in enumerate(cols):
        ax.text(x0 + label_w + (j + 0.5) * col_w, top + 0.55, c, ha="center", va="center", fontsize=10, weight="bold")
    for i, (item, *cells) in enumerate(THREAT_ROWS):
        y = top - (i + 1) * row_h
        ax.text(x0 + 0.1, y + row_h / 2, item, ha="left", va="center", fontsize=10)
        for j, state in enumerate(cells):
            color, word = _CELL_STYLE[state]
            cx = x0 + label_w + j * col_w
            ax.add_patch(
                FancyBboxPatch(
                    (cx + 0.1, y + 0.08),
                    col_w - 0.2,
                    row_h - 0.16,
                    boxstyle="round,pad=0,rounding_size=0.1",
                    fc=color,
                    ec="white",
                )
            )
            ax.text(cx + col_w / 2, y + row_h / 2, word, ha="center", va="center", fontsize=10)
    ax.text(
        WIDTH / 2,
        0.55,
        "The adversary is passive: it follows the protocol and only looks at what it receives.\n"
        "For the support attack it is also handed the task's query images (a stronger adversary).",
        ha="center",
        va="center",
        fontsize=10,
        style="italic",
    )
    return fig

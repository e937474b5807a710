"""The book's figures (mamlpriv.plots): page width, readable text, one colour per
quantity, every plotted series in a legend, integer ticks on counts, the paper's points
on Figures 5-6 and the confident area explained on Figures 9-12."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mamlpriv import paper, plots  # noqa: E402

DATASETS = ("mnist", "fashion-mnist")
LOCATIONS = ("support_data", "adaptation_grad", "query_data", "validation_grad")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def membership_row(dataset, attack, ways, shots, stage=0, game="paper", acc=0.8):
    return {
        "dataset": dataset,
        "attack": attack,
        "game": game,
        "ways": ways,
        "shots": shots,
        "stage": stage,
        "accuracy": acc,
        "accuracy_lo": acc - 0.1,
        "accuracy_hi": acc + 0.05,
        "auc": acc + 0.05,
        "auc_lo": acc - 0.05,
        "auc_hi": acc + 0.1,
        "learning_acc": 0.3 + stage / 2000 if attack == "support" else None,
    }


def shape_rows():
    rows = []
    for ds in DATASETS:
        for attack in ("query", "support"):
            rows += [membership_row(ds, attack, w, 1) for w in (3, 5, 7, 10)]
            rows += [membership_row(ds, attack, 3, s) for s in (2, 3, 5)]
    return rows


def stage_rows():
    return [
        membership_row(ds, attack, 3, 1, stage, game)
        for ds in DATASETS
        for attack in ("query", "support")
        for game in ("paper", "strict")
        for stage in (0, 100, 300, 1000)
    ]


def defence_rows(attack="query"):
    rows = []
    for loc in LOCATIONS:
        for i, level in enumerate((0.01, 0.1, 1.0)):
            rows.append(
                {
                    "dataset": "mnist",
                    "attack": attack,
                    "location": loc,
                    "level": level,
                    "attack_accuracy": 0.9 - 0.2 * i,
                    "learning_accuracy": 0.9 - 0.01 * i,
                    "baseline_learning": 0.9,
                    "confident": loc == "query_data" and i == 2,
                }
            )
    return rows


def texts(fig):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]


def legend_labels(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def check_page_figure(fig):
    """About the main column's width at 100 dpi, and no text below 8 pt."""
    width = fig.get_size_inches()[0]
    assert 0.5 * plots.PAGE_WIDTH <= width <= plots.PAGE_WIDTH + 0.01
    assert min(t.get_fontsize() for t in texts(fig)) >= 8


def test_palette_has_one_colour_per_quantity():
    colours = [c for k, c in plots.PALETTE.items() if k not in ("chance", "paper")]
    assert len(set(colours)) == len(colours)
    assert plots.ATTACK_COLORS == {"query": plots.PALETTE["query attack"], "support": plots.PALETTE["support attack"]}


def test_shape_figure_overlays_the_papers_points():
    fig = plots.shape_figure(shape_rows(), "ways", ("shots", 1), (3, 5, 7, 10))
    check_page_figure(fig)
    assert len(fig.axes) == 4  # accuracy and AUC, one column per dataset
    labels = legend_labels(fig)
    assert {"query attack", "support attack", "query attack, paper", "support attack, paper"} <= set(labels)
    acc = fig.axes[0]  # the first dataset (sorted: fashion-mnist), accuracy
    marks = [ln for ln in acc.get_lines() if ln.get_label() == "query attack, paper"]
    (line,) = marks
    expected = [paper.TABLE_II_QUERY["fashion-mnist"][(w, 1)][0] for w in (3, 5, 7)]
    assert list(line.get_ydata()) == expected
    assert list(line.get_xdata()) == [3, 5, 7]
    # the AUC row carries no paper points (the paper reports accuracy only)
    assert not any("paper" in ln.get_label() for ax in fig.axes[2:] for ln in ax.get_lines())


def test_shape_figure_colours_attacks_by_the_palette():
    fig = plots.shape_figure(shape_rows(), "shots", ("ways", 3), (1, 2, 3, 5))
    for ln in fig.axes[0].get_lines():
        if ln.get_label() == "query attack":
            assert matplotlib.colors.same_color(ln.get_color(), plots.ATTACK_COLORS["query"])
        if ln.get_label() == "support attack":
            assert matplotlib.colors.same_color(ln.get_color(), plots.ATTACK_COLORS["support"])


def test_stage_curves_legend_has_every_series_and_integer_ticks():
    fig = plots.stage_curves(stage_rows(), "support")
    check_page_figure(fig)
    labels = legend_labels(fig)
    assert "meta-test accuracy (right axis)" in labels
    assert {"support attack, paper game", "support attack, strict game"} <= set(labels)
    for ax in fig.axes[::2]:  # the panels, not their twins
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks)


def test_noise_grid_is_two_by_two_and_explains_the_green():
    fig = plots.noise_grid(defence_rows("support"), "support", LOCATIONS)
    check_page_figure(fig)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == 4
    rows_of = {round(ax.get_position().y0, 2) for ax in panels}
    assert len(rows_of) == 2  # two rows of two panels
    labels = legend_labels(fig)
    assert "confident noise area" in labels and "support attack accuracy" in labels
    assert "learning accuracy" in labels
    titles = [ax.get_title() for ax in panels]
    assert titles[0].startswith("(a)") and "adaptation gradient" in titles[1]
    assert not any(t.get_text().startswith("Figure") for t in texts(fig))


def test_noise_panel_colours_the_attack():
    _, ax = plt.subplots()
    plots.noise_panel([r for r in defence_rows("support") if r["location"] == "query_data"], ax=ax)
    first = next(ln for ln in ax.get_lines() if ln.get_label() == "support attack accuracy")
    assert matplotlib.colors.same_color(first.get_color(), plots.ATTACK_COLORS["support"])


def test_learning_curves_colours_and_integer_ticks():
    hist = [{"iteration": i, "test_acc": 0.2 + i / 2000, "test_ci95": 0.02} for i in (0, 250, 500, 750, 1000)]
    colors = {"second-order": plots.PALETTE["second order"]}
    ax = plots.learning_curves({"second-order": hist}, chance=0.2, colors=colors)
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "second-order"]
    assert matplotlib.colors.same_color(line.get_color(), plots.PALETTE["second order"])
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert "chance" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_attack_sample_grid_titles_each_attack():
    import numpy as np

    img = np.zeros((1, 28, 28))
    rows = [("member", img, img[0], 0.9), ("non-member", img, img[0], 0.2)]
    fig = plots.attack_sample_grid({"query attack": rows, "support attack": rows})
    fig.canvas.draw()
    words = " ".join(t.get_text() for t in texts(fig))
    assert "query attack" in words and "support attack" in words and "SSIM 0.90" in words
    assert min(t.get_fontsize() for t in texts(fig)) >= 8


def test_defence_tests_grid_has_a_row_per_attack_and_every_series_in_its_legend():
    rows = [
        {"dataset": "mnist", "attack": a, "defence": loc, "level": lv, "ssim_auc": 0.6, "best_auc": 0.7,
         "worst_auc": 0.95 if loc == "gaussian mechanism" else None}
        for a in ("query", "support") for loc in ("support_data", "gaussian mechanism") for lv in (0.1, 1.0)
    ]  # fmt: skip
    fig = plots.defence_tests_grid(rows, [*LOCATIONS, "gaussian mechanism"])
    check_page_figure(fig)
    assert len(fig.axes) == 4  # 2 attacks x the 2 defences with rows, in the given order
    assert [ax.get_title() for ax in fig.axes[:2]] == ["support data", "Gaussian mechanism"]
    assert legend_labels(fig) == ["paper's attack (SSIM)", "best practical test", "worst case (audit)", "chance"]
    assert plots.defence_tests_grid([], LOCATIONS) is None

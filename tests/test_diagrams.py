"""The book's schematic figures (mamlpriv.diagrams): the right words are on them, every
text is readable (>= 9 pt), inside the figure, inside the box it is written in, and no
two texts overlap."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from mamlpriv import diagrams  # noqa: E402

# each diagram and words that must appear on it (case-insensitive substrings of its texts)
EXPECTED = {
    "federated_maml": ["meta-learner", "omega", "task-learner", "support", "query", "g_"],
    "query_attack_pipeline": ["shared gradient", "x_0", "dummy", "omega", "cos", "TV", "SSIM", "member",
                              "non-member"],
    "support_attack_pipeline": ["shared gradient", "query set", "support", "adaptation", "theta", "cos",
                                "TV", "SSIM", "non-member"],
    "threat_model": ["omega", "shared gradient", "labels", "query", "support", "never", "meta-learner"],
}


def texts(fig: Figure):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]


@pytest.fixture(params=sorted(EXPECTED))
def drawn(request):
    fig = getattr(diagrams, request.param)()
    fig.canvas.draw()
    yield request.param, fig
    plt.close(fig)


def test_returns_a_figure_of_the_page_size(drawn):
    _, fig = drawn
    assert isinstance(fig, Figure)
    assert tuple(fig.get_size_inches()) == pytest.approx(diagrams.FIGSIZE)


def test_expected_words(drawn):
    name, fig = drawn
    words = " ".join(t.get_text() for t in texts(fig)).lower()
    for w in EXPECTED[name]:
        assert w.lower() in words, f"{name}: {w!r} missing"


def test_fonts_readable(drawn):
    name, fig = drawn
    sizes = [t.get_fontsize() for t in texts(fig)]
    assert sizes and min(sizes) >= diagrams.MIN_FONT >= 9, f"{name}: font sizes {sorted(set(sizes))}"


def test_texts_inside_figure(drawn):
    name, fig = drawn
    r = fig.canvas.get_renderer()
    frame = fig.bbox
    for t in texts(fig):
        bb = t.get_window_extent(r)
        assert (bb.x0 >= frame.x0 - 0.5 and bb.y0 >= frame.y0 - 0.5 and bb.x1 <= frame.x1 + 0.5
                and bb.y1 <= frame.y1 + 0.5), f"{name}: {t.get_text()!r} leaves the figure ({bb})"


def test_texts_do_not_overlap(drawn):
    name, fig = drawn
    r = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(r)) for t in texts(fig)]
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        assert not ba.overlaps(bb), f"{name}: {a!r} overlaps {b!r}"


def test_texts_fit_their_boxes(drawn):
    """A text whose anchor lies in a box stays inside the smallest such box."""
    name, fig = drawn
    r = fig.canvas.get_renderer()
    patches = [p.get_window_extent(r) for p in fig.findobj(FancyBboxPatch)]
    for t in texts(fig):
        x, y = t.get_transform().transform(t.get_position())
        holders = [p for p in patches if p.contains(x, y)]
        if not holders:
            continue
        box = min(holders, key=lambda p: p.width * p.height)
        bb = t.get_window_extent(r)
        assert (bb.x0 >= box.x0 - 1 and bb.x1 <= box.x1 + 1 and bb.y0 >= box.y0 - 1
                and bb.y1 <= box.y1 + 1), f"{name}: {t.get_text()!r} spills out of its box"

"""Membership metrics against brute-force computations."""

import itertools
import random

import pytest
import torch

from mamlpriv.metrics import (
    best_threshold,
    classification_at_threshold,
    flat,
    flat_rows,
    mean_ci95,
    membership_metrics,
    roc_auc,
    tpr_at_fpr,
)


def brute_auc(s, y):
    pos = [a for a, b in zip(s, y) if b]
    neg = [a for a, b in zip(s, y) if not b]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def brute_tpr_at(s, y, target):
    best = 0.0
    for t in sorted(set(s)) + [max(s) + 1]:
        pred = [a >= t for a in s]
        fp = sum(p and not b for p, b in zip(pred, y)) / sum(not b for b in y)
        tp = sum(p and b for p, b in zip(pred, y)) / sum(y)
        if fp <= target:
            best = max(best, tp)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_auc_and_tpr_match_brute_force(seed):
    rng = random.Random(seed)
    n = rng.randint(4, 40)
    y = [rng.random() < 0.5 for _ in range(n)]
    y[0], y[1] = True, False
    s = [round(rng.gauss(0.3 * b, 1), 1) for b in y]  # rounding makes ties
    assert roc_auc(s, y) == pytest.approx(brute_auc(s, y), abs=1e-12)
    for target in (0.0, 0.01, 0.1, 0.3):
        assert tpr_at_fpr(s, y, target) == pytest.approx(brute_tpr_at(s, y, target), abs=1e-12)


def test_threshold_metrics_by_hand():
    s = [0.9, 0.8, 0.3, 0.6, 0.1]
    y = [1, 1, 1, 0, 0]
    m = classification_at_threshold(s, y, 0.5)  # predicted members: 0.9, 0.8, 0.6
    assert m == {"accuracy": 3 / 5, "recall": 2 / 3, "precision": 2 / 3}
    t = best_threshold(s, y)
    assert classification_at_threshold(s, y, t)["accuracy"] == 4 / 5  # t between 0.1 and 0.3 or 0.6 and 0.8
    full = membership_metrics(s, y, t)
    assert full["auc"] == pytest.approx(brute_auc(s, y)) and full["threshold"] == t


def test_perfect_and_errors():
    assert roc_auc([3, 2, 1, 0], [1, 1, 0, 0]) == 1.0
    assert tpr_at_fpr([3, 2, 1, 0], [1, 1, 0, 0], 0.0) == 1.0
    with pytest.raises(ValueError, match="both"):
        roc_auc([1, 2], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        roc_auc([1, 2, 3], [1, 0])
    with pytest.raises(ValueError, match="fpr_target"):
        tpr_at_fpr([1, 2], [1, 0], 1.5)


def test_wilson_interval_against_a_hand_computation_and_edges():
    from mamlpriv.metrics import wilson_ci95

    lo, hi = wilson_ci95(8, 10)  # textbook value for 8/10: (0.4902, 0.9433)
    assert abs(lo - 0.4902) < 1e-4 and abs(hi - 0.9433) < 1e-4
    assert wilson_ci95(0, 20)[0] == 0.0 and wilson_ci95(20, 20)[1] == 1.0 and wilson_ci95(20, 20)[0] > 0.8
    with pytest.raises(ValueError):
        wilson_ci95(3, 2)


def test_diff_interval_matches_the_normal_formula():
    from mamlpriv.metrics import diff_ci95

    d, h = diff_ci95(0.8, 100, 0.6, 50)
    assert abs(d - 0.2) < 1e-12 and abs(h - 1.959964 * (0.8 * 0.2 / 100 + 0.6 * 0.4 / 50) ** 0.5) < 1e-6


def test_bootstrap_auc_intervals_cover_the_estimate_and_shrink_with_more_trials():
    from mamlpriv.metrics import auc_ci95, auc_diff_ci95, roc_auc

    gen = torch.Generator().manual_seed(0)

    def sample(n, shift):
        y = torch.arange(n) % 2 == 0
        return torch.randn(n, generator=gen, dtype=torch.float64) + shift * y, y

    s, y = sample(100, 1.0)
    lo, hi = auc_ci95(s, y, n_boot=400, seed=1)
    assert lo < roc_auc(s, y) < hi
    s2, y2 = sample(1000, 1.0)
    lo2, hi2 = auc_ci95(s2, y2, n_boot=400, seed=1)
    assert hi2 - lo2 < 0.6 * (hi - lo)  # width ~ 1/sqrt(n)
    assert auc_ci95(s, y, n_boot=50, seed=3) == auc_ci95(s, y, n_boot=50, seed=3)  # seeded
    d, dlo, dhi = auc_diff_ci95(s2, y2, *sample(1000, 0.0), n_boot=300, seed=2)
    assert dlo < d < dhi and dlo > 0.1  # shift 1 (AUC ~0.76) vs no shift (0.5): clearly positive


def test_paired_auc_difference_against_mirrored_scores_and_a_shared_component():
    """Closed form: a test and its negation have AUCs a and 1 - a on every resample, so
    the paired difference is 2a - 1 on each, and its interval is 2 * (a's interval) - 1
    (same seed, same resamples). Pairing cancels the trials' shared luck: two tests that
    share most of their noise get a far narrower interval than independent trials would."""
    from mamlpriv.metrics import auc_ci95, auc_diff_ci95, paired_auc_diff_ci95, roc_auc

    gen = torch.Generator().manual_seed(4)
    y = torch.arange(200) % 2 == 0
    s = torch.randn(200, generator=gen, dtype=torch.float64) + 0.8 * y
    a = roc_auc(s, y)
    d, lo, hi = paired_auc_diff_ci95(s, -s, y, n_boot=200, seed=5)
    clo, chi = auc_ci95(s, y, n_boot=200, seed=5)
    assert d == pytest.approx(2 * a - 1) and (lo, hi) == pytest.approx((2 * clo - 1, 2 * chi - 1))
    s2 = s + 0.05 * torch.randn(200, generator=gen, dtype=torch.float64)  # almost the same test
    d2, lo2, hi2 = paired_auc_diff_ci95(s2, s, y, n_boot=200, seed=5)
    _, ilo, ihi = auc_diff_ci95(s2, y, s, y, n_boot=200, seed=5)
    assert lo2 <= d2 <= hi2 and hi2 - lo2 < 0.3 * (ihi - ilo)
    with pytest.raises(ValueError, match="same length"):
        paired_auc_diff_ci95(s, s[:10], y)


def test_mean_ci95_matches_hand_computation():
    v = [0.2, 0.4, 0.9, 0.5]
    m = sum(v) / 4
    sd = (sum((x - m) ** 2 for x in v) / 3) ** 0.5
    mean, h = mean_ci95(v)
    assert mean == pytest.approx(m) and h == pytest.approx(1.96 * sd / 2)
    assert mean_ci95(torch.tensor([1.0, 1.0])) == (1.0, 0.0)  # no spread: a zero half-width, honestly
    with pytest.raises(ValueError, match="at least 2"):
        mean_ci95([0.7])  # one value has no spread to estimate: not (0.7, 0.0)
    with pytest.raises(ValueError):
        mean_ci95([])
    with pytest.raises(ValueError, match="finite"):
        mean_ci95([0.5, float("nan")])


def test_flat_and_flat_rows_keep_the_key_order():
    p = {"w": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([3.0])}
    assert flat(p).tolist() == [1.0, 2.0, 3.0]
    rows = {"w": torch.arange(12.0).view(3, 2, 2), "b": torch.tensor([[7.0], [8.0], [9.0]])}
    assert flat_rows(rows).tolist() == [[0, 1, 2, 3, 7], [4, 5, 6, 7, 8], [8, 9, 10, 11, 9]]


def test_vectorised_bootstrap_equals_roc_auc_on_each_resample_in_the_same_order():
    """The bootstrap's batched Mann-Whitney AUCs equal roc_auc (trapezoid) on every
    resample, drawn in the same order as one resample at a time, ties included."""
    import numpy as np

    from mamlpriv.metrics import _resampled_aucs, _resamples, _stratified_resample

    gen = torch.Generator().manual_seed(3)
    s = torch.randint(0, 6, (41,), generator=gen).double()  # many ties
    y = torch.rand(41, generator=gen) < 0.4
    idx = _resamples(y, np.random.default_rng(7), 300)
    rng = np.random.default_rng(7)
    for row in idx[:50]:
        assert np.array_equal(row, _stratified_resample(y, rng).numpy())
    slow = [roc_auc(s[torch.from_numpy(r)], y[torch.from_numpy(r)]) for r in idx]
    np.testing.assert_allclose(_resampled_aucs(s, idx, int(y.sum())), slow, rtol=0, atol=1e-12)

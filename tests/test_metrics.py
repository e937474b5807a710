"""Membership metrics against brute-force computations."""

import itertools
import random

import pytest
import torch

from mamlpriv.metrics import (
    best_threshold, classification_at_threshold, cosine, membership_metrics, roc_auc, tpr_at_fpr,
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


def test_cosine():
    a = {"w": torch.tensor([1.0, 0.0]), "b": torch.tensor([1.0])}
    b = {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([0.0])}
    assert cosine(a, b) == pytest.approx(1 / 2)

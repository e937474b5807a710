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


def test_claim_verdicts_follow_their_rules():
    from mamlpriv.report import verdict_best_at, verdict_decreasing, verdict_flat

    rows = [{"x": x, "accuracy": a, "trials": 100} for x, a in [(1, 0.9), (2, 0.8), (3, 0.6)]]
    assert not verdict_flat(rows, "x")[0] and verdict_flat(rows, "x", tolerance=0.31)[0]
    assert verdict_decreasing(rows, "x")[0]  # 0.3 drop, half-width ~0.12
    assert not verdict_decreasing(list(reversed([dict(r, x=-r["x"]) for r in rows])), "x")[0]
    assert verdict_best_at(rows, "x", "first")[0] and not verdict_best_at(rows, "x", "inside")[0]
    bump = [dict(r, accuracy=a) for r, a in zip(rows, (0.6, 0.9, 0.7))]
    assert verdict_best_at(bump, "x", "inside")[0] and not verdict_best_at(bump, "x", "first")[0]
    for verdict in (verdict_flat(rows[:2], "x"), verdict_decreasing(rows[:2], "x"), verdict_best_at(rows[:2], "x", "first")):
        assert verdict[0] is None and "at least 3" in verdict[1]


def test_defence_rows_mark_the_confident_area_and_claims_compare():
    from mamlpriv.report import defence_claims, defence_rows, first_effective

    def att(target, loc, std, acc):
        return {"config": {"dataset": "mnist", "target": target, "noise": {"location": loc, "std": std}},
                "result": {"paper": {"metrics": {"accuracy": acc, "auc": acc}}}, "shown": "quick"}

    def lrn(loc, std, acc):
        return {"config": {"dataset": "mnist", "noise": None if loc is None else {"location": loc, "std": std}},
                "result": {"test_acc": acc}}

    attacks = [att("support", "query_data", 0.1, 0.9), att("support", "query_data", 1.0, 0.55),
               att("support", "support_data", 0.1, 0.9), att("support", "support_data", 1.0, 0.7),
               att("query", "query_data", 1.0, 0.9), att("query", "support_data", 1.0, 0.9)]
    learning = [lrn(None, 0, 0.78), lrn(None, 0, 0.82), lrn("query_data", 0.1, 0.8), lrn("query_data", 1.0, 0.78),
                lrn("support_data", 0.1, 0.8), lrn("support_data", 1.0, 0.5)]
    rows = defence_rows(attacks, learning)
    # the baseline is the mean of the noise-free runs (0.80): 0.78 is within 5 points, 0.5 is not
    assert {(round(r["baseline_learning"], 6), r["baseline_runs"], round(r["baseline_sd"], 6)) for r in rows} == {
        (0.8, 2, round(0.04 / 2**0.5, 6))}
    conf = {(r["attack"], r["location"], r["level"]): r["confident"] for r in rows}
    assert conf == {("support", "query_data", 0.1): False, ("support", "query_data", 1.0): True,
                    ("support", "support_data", 0.1): False, ("support", "support_data", 1.0): False,
                    ("query", "query_data", 1.0): False, ("query", "support_data", 1.0): False}
    eff = {(e["attack"], e["location"]): (e["level"], e["learning_drop"]) for e in first_effective(rows)}
    assert eff[("support", "query_data")] == (1.0, pytest.approx(0.02))  # 0.55 <= 0.6 at level 1.0
    assert eff[("query", "query_data")] == (None, None)  # 0.9: never effective
    claims = defence_claims(rows)
    assert "more sensitive to noise: AGREES" in claims[0]  # 1 confident level against 0
    assert "query attack] query-data noise more effective than support-data noise: TIE" in claims[1]
    assert "support attack] query-data noise more effective than support-data noise: AGREES" in claims[2]


def _row(ds, attack, game="paper", **kw):
    base = {"dataset": ds, "attack": attack, "game": game, "ways": 3, "shots": 1, "stage": 0, "trials": 100}
    return {**base, **kw}


def test_shape_claims_pick_the_figure_points_and_apply_the_rules():
    from mamlpriv.report import shape_claims

    rows = [_row("mnist", "query", ways=w, accuracy=a) for w, a in [(3, 0.9), (5, 0.85), (7, 0.95), (10, 0.88)]]
    rows += [_row("mnist", "query", shots=s, accuracy=a) for s, a in [(2, 0.8), (3, 0.7), (5, 0.6)]]
    rows += [_row("mnist", "query", ways=5, shots=3, accuracy=0.1)]  # on neither axis: ignored
    rows += [_row("mnist", "query", "strict", ways=7, accuracy=0.1)]  # strict game: ignored
    rows += [_row("mnist", "support", ways=w, accuracy=a) for w, a in [(3, 0.9), (5, 0.6)]]
    claims = {(c["claim"][:6], c["attack"]): c for c in shape_claims(rows)}
    flat, falls = claims[("Fig. 5", "query")], claims[("Fig. 6", "query")]
    assert flat["verdict"] == "CONFIRMED" and "spread 0.10" in flat["evidence"]  # 0.95 - 0.85
    assert falls["verdict"] == "CONFIRMED" and "1: 0.90" in falls["evidence"] and "5: 0.60" in falls["evidence"]
    assert claims[("Fig. 5", "support")]["verdict"] == "UNDECIDED"  # two ways only
    rows[2]["accuracy"] = 0.7  # spread 0.2 breaks "roughly flat"
    assert {c["verdict"] for c in shape_claims(rows) if c["claim"].startswith("Fig. 5") and c["attack"] == "query"} == {
        "NOT CONFIRMED"}


def test_stage_claims_per_game():
    from mamlpriv.report import claim_sentence, stage_claims

    rows = [_row("mnist", "query", stage=s, accuracy=a) for s, a in [(0, 0.9), (300, 0.7), (1000, 0.6)]]
    rows += [_row("mnist", "support", stage=s, accuracy=a) for s, a in [(0, 0.5), (300, 0.8), (1000, 0.7)]]
    rows += [_row("mnist", "support", "strict", stage=s, accuracy=a) for s, a in [(0, 0.5), (300, 0.6), (1000, 0.7)]]
    paper = {c["attack"]: c for c in stage_claims(rows)}
    assert paper["query"]["verdict"] == paper["support"]["verdict"] == "CONFIRMED"
    strict = {c["attack"]: c for c in stage_claims(rows, "strict")}
    assert strict["support"]["verdict"] == "NOT CONFIRMED" and "best at 1000" in strict["support"]["evidence"]
    assert strict["query"]["verdict"] == "UNDECIDED"  # no strict query rows
    assert "**CONFIRMED**" in claim_sentence(paper["query"]) and "0: 0.90" in claim_sentence(paper["query"])


def test_order_comparison_pairs_twins_and_signs_the_difference():
    from mamlpriv.report import order_comparison

    def rec(order_first, ds, w, members_right):
        # 20 trials: members score 1.0, non-members 0.0; `members_right` members predicted right
        recs = [{"score": 1.0 if i < members_right else 0.0, "member": True, "prediction": i < members_right}
                for i in range(10)] + [{"score": 0.0, "member": False, "prediction": False} for _ in range(10)]
        acc = (members_right + 10) / 20
        return {"config": {"dataset": ds, "target": "support", "ways": w, "shots": 1, "first_order": order_first},
                "result": {"paper": {"records": recs, "metrics": {"accuracy": acc, "auc": None}}}, "shown": "quick"}

    first = [rec(True, "mnist", 3, 4), rec(True, "mnist", 5, 4)]
    second = [rec(False, "mnist", 3, 10)]
    rows = order_comparison(first, second)
    assert len(rows) == 1  # the 5-way cell has no second-order twin
    r = rows[0]
    assert (r["first_accuracy"], r["second_accuracy"]) == (0.7, 1.0)
    assert r["accuracy_diff"] == pytest.approx(-0.3) and r["accuracy_diff_ci95"] > 0
    assert r["auc_diff_lo"] <= r["auc_diff"] <= r["auc_diff_hi"] < 0


def test_best_at_reports_the_margin_and_whether_the_trials_resolve_it():
    from mamlpriv.report import verdict_best_at

    rows = [{"x": x, "accuracy": a, "trials": 100} for x, a in [(0, 0.6), (1, 0.8), (2, 0.75)]]
    ok, why = verdict_best_at(rows, "x", "inside")
    assert ok and "+0.05 ±" in why and "not resolved" in why  # 0.80 vs 0.75 at n=100
    ok, why = verdict_best_at([dict(r, trials=100000) for r in rows], "x", "inside")
    assert ok and "resolved by" in why and "not resolved" not in why
    ok, why = verdict_best_at(rows, "x", "first")
    assert not ok and "-0.20" in why  # 0.60 first against 0.80 later


def test_order_summary_counts_resolved_drops_and_averages():
    from mamlpriv.report import order_summary

    rows = [{"attack": "support", "accuracy_diff": -0.2, "accuracy_diff_ci95": 0.1, "auc_diff": -0.1},
            {"attack": "support", "accuracy_diff": -0.05, "accuracy_diff_ci95": 0.1, "auc_diff": 0.0},
            {"attack": "query", "accuracy_diff": 0.01, "accuracy_diff_ci95": 0.02, "auc_diff": 0.002}]
    lines = order_summary(rows)
    assert lines[0].startswith("query attack: first order lower in 0 of 1 shapes")
    assert lines[1] == ("support attack: first order lower in 1 of 2 shapes; mean accuracy difference -0.125, "
                        "mean AUC difference -0.050")


def test_sweep_sentence_names_the_highest_point_unless_flat():
    from mamlpriv.report import sweep_sentence

    rows = [{"lr": 1.0, "auc": 0.80}, {"lr": 0.01, "auc": 0.63}, {"lr": 0.3, "auc": 0.92}]
    assert sweep_sentence(rows, "lr") == "0.01: 0.63, 0.3: 0.92, 1: 0.80 (highest at 0.3)"
    flat = [{"k": 2, "auc": 0.995}, {"k": 1, "auc": 1.0}]
    assert sweep_sentence(flat, "k") == "1: 1.00, 2: 0.99 (flat: within 0.01)"
    assert sweep_sentence(flat, "k", flat_within=0.001).endswith("(highest at 1)")
    assert sweep_sentence([], "k") == "no points"

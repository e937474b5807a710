"""Stored cells as table rows, and the paper's claims judged by stated rules."""

import pytest

from mamlpriv import catalog
from mamlpriv.cells import LearningCell
from mamlpriv.defenses import GaussianMechanismSpec, RawNoise
from mamlpriv.maml import MAMLConfig

QUICK = catalog.profile("quick")


def membership_config(target="support", ways=3, shots=1, dataset="mnist", **fields):
    """A real membership cell's stored configuration (as the runner stores it)."""
    return catalog.membership(QUICK, dataset, target, ways, shots, **fields).to_config()


def learning_config(noise=None, seed=0, dataset="mnist"):
    return LearningCell(dataset, 3, 1, seed, MAMLConfig(catalog.INNER_LR), QUICK.train_iterations, noise).to_config()


def test_claim_verdicts_follow_their_rules():
    from mamlpriv.report import verdict_best_at, verdict_decreasing, verdict_flat

    rows = [{"x": x, "accuracy": a, "trials": 100} for x, a in [(1, 0.9), (2, 0.8), (3, 0.6)]]
    assert not verdict_flat(rows, "x")[0] and verdict_flat(rows, "x", tolerance=0.31)[0]
    assert verdict_decreasing(rows, "x")[0]  # 0.3 drop, half-width ~0.12
    assert not verdict_decreasing(list(reversed([dict(r, x=-r["x"]) for r in rows])), "x")[0]
    assert verdict_best_at(rows, "x", "first")[0] and not verdict_best_at(rows, "x", "inside")[0]
    bump = [dict(r, accuracy=a) for r, a in zip(rows, (0.6, 0.9, 0.7))]
    assert verdict_best_at(bump, "x", "inside")[0] and not verdict_best_at(bump, "x", "first")[0]
    two = rows[:2]
    for verdict in (verdict_flat(two, "x"), verdict_decreasing(two, "x"), verdict_best_at(two, "x", "first")):
        assert verdict[0] is None and "at least 3" in verdict[1]


def test_defence_rows_mark_the_confident_area_and_claims_compare():
    from mamlpriv.report import defence_claims, defence_rows, first_effective

    def att(target, loc, std, acc):
        return {"config": membership_config(target, noise=RawNoise(loc, std), games=("paper",)),
                "result": {"paper": {"metrics": {"accuracy": acc, "auc": acc}}}, "shown": "quick"}

    def lrn(loc, std, acc, seed=0):
        return {"config": learning_config(None if loc is None else RawNoise(loc, std), seed),
                "result": {"test_acc": acc}}

    attacks = [att("support", "query_data", 0.1, 0.9), att("support", "query_data", 1.0, 0.55),
               att("support", "support_data", 0.1, 0.9), att("support", "support_data", 1.0, 0.7),
               att("query", "query_data", 1.0, 0.9), att("query", "support_data", 1.0, 0.9)]
    learning = [lrn(None, 0, 0.78), lrn(None, 0, 0.82, seed=1),
                lrn("query_data", 0.1, 0.8), lrn("query_data", 1.0, 0.78),
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
    assert "more sensitive to noise: CONFIRMED" in claims[0]  # 1 confident level against 0
    # the locations are compared with the interval of the mean accuracy difference: at the
    # quick profile's 20 trials a difference of 0.075 is not resolved, at 100,000 it is
    support = "support attack] query-data noise more effective than support-data noise"
    assert f"{support}: INCONCLUSIVE" in claims[2] and "query data 0.725, support data 0.800" in claims[2]
    claims = defence_claims(rows, trials=100_000)
    assert "query attack] query-data noise more effective than support-data noise: INCONCLUSIVE" in claims[1]  # equal
    assert f"{support}: CONFIRMED" in claims[2]


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
    assert claims[("Fig. 5", "support")]["verdict"] == "INCONCLUSIVE"  # two ways only
    rows[2]["accuracy"] = 0.7  # spread 0.2: beyond the tolerance, but within the interval of 0.90 - 0.70
    assert {c["verdict"] for c in shape_claims(rows) if c["claim"].startswith("Fig. 5") and c["attack"] == "query"} == {
        "INCONCLUSIVE"}
    rows[2]["accuracy"] = 0.6  # spread 0.3 breaks "roughly flat"
    assert {c["verdict"] for c in shape_claims(rows) if c["claim"].startswith("Fig. 5") and c["attack"] == "query"} == {
        "NOT CONFIRMED"}


def test_stage_claims_per_game():
    from mamlpriv.report import claim_sentence, stage_claims

    rows = [_row("mnist", "query", stage=s, accuracy=a) for s, a in [(0, 0.9), (300, 0.7), (1000, 0.6)]]
    rows += [_row("mnist", "support", stage=s, accuracy=a) for s, a in [(0, 0.5), (300, 0.8), (1000, 0.6)]]
    rows += [_row("mnist", "support", "strict", stage=s, accuracy=a) for s, a in [(0, 0.5), (300, 0.55), (1000, 0.8)]]
    paper = {c["attack"]: c for c in stage_claims(rows)}
    assert paper["query"]["verdict"] == paper["support"]["verdict"] == "CONFIRMED"
    strict = {c["attack"]: c for c in stage_claims(rows, "strict")}
    assert strict["support"]["verdict"] == "NOT CONFIRMED" and "best at 1000" in strict["support"]["evidence"]
    assert strict["query"]["verdict"] == "INCONCLUSIVE"  # no strict query rows
    assert "**CONFIRMED**" in claim_sentence(paper["query"]) and "0: 0.90" in claim_sentence(paper["query"])


def test_order_comparison_pairs_twins_and_signs_the_difference():
    from mamlpriv.report import order_comparison

    def rec(order_first, ds, w, members_right):
        # 20 trials: members score 1.0, non-members 0.0; `members_right` members predicted right
        recs = [{"score": 1.0 if i < members_right else 0.0, "member": True, "prediction": i < members_right}
                for i in range(10)] + [{"score": 0.0, "member": False, "prediction": False} for _ in range(10)]
        acc = (members_right + 10) / 20
        return {"config": membership_config("support", w, 1, ds, maml=MAMLConfig(catalog.INNER_LR, 1, order_first)),
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
    assert ok is None and "+0.05 ±" in why and "not resolved" in why  # 0.80 vs 0.75 at n=100: inconclusive
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


def test_membership_rows_read_the_cell_and_its_records():
    from mamlpriv.metrics import wilson_ci95
    from mamlpriv.report import membership_rows

    recs = [{"score": s, "member": m, "prediction": p}
            for s, m, p in [(0.9, True, True), (0.8, True, True), (0.2, True, False), (0.7, False, True),
                            (0.1, False, False), (0.05, False, False)]]
    game = {"stage": 300, "attack": {"lr": 0.03}, "records": recs,
            "metrics": {"accuracy": 4 / 6, "recall": 2 / 3, "precision": 2 / 3, "auc": 8 / 9, "tpr_at_1pct_fpr": 0.0}}
    rec = {"config": membership_config("support", 5, 2, maml=MAMLConfig(0.1, 2, True), stages=(0, 300)),
           "result": {"paper": game,
                      "learning": [{"iteration": 0, "test_acc": 0.2}, {"iteration": 300, "test_acc": 0.6}]},
           "profile": "quick"}
    rows = membership_rows([rec], n_boot=50)
    assert len(rows) == 1  # no strict game stored: no strict row
    r = rows[0]
    assert (r["dataset"], r["attack"], r["game"], r["ways"], r["shots"]) == ("mnist", "support", "paper", 5, 2)
    assert (r["inner_lr"], r["inner_steps"], r["order"], r["stage"]) == (0.1, 2, "first", 300)
    assert r["attack_lr"] == 0.03 and r["trials"] == 6 and r["learning_acc"] == 0.6 and r["profile"] == "quick"
    assert (r["accuracy_lo"], r["accuracy_hi"]) == wilson_ci95(4, 6)  # 4 of 6 predictions right
    assert r["auc_lo"] <= r["auc"] <= r["auc_hi"]
    assert membership_rows([dict(rec, shown="paper")], n_boot=50)[0]["profile"] == "paper"
    assert membership_rows([rec], games=("strict",)) == []


def test_defence_rows_report_epsilon_and_claims_leave_the_gaussian_mechanism_out():
    from mamlpriv.report import defence_claims, defence_rows

    gm = GaussianMechanismSpec(catalog.DP_CLIP, 1.0)
    attacks = [{"config": membership_config("support", noise=gm, games=("paper",)),
                "result": {"paper": {"metrics": {"accuracy": 0.5, "auc": 0.5}}}}]
    learning = [{"config": learning_config(None), "result": {"test_acc": 0.8}},
                {"config": learning_config(gm), "result": {"test_acc": 0.79, "epsilon": 12.5}}]
    (row,) = defence_rows(attacks, learning)
    assert (row["location"], row["level"], row["epsilon"]) == ("gaussian mechanism", 1.0, 12.5)
    assert row["baseline_runs"] == 1 and row["baseline_sd"] is None and row["confident"] is True
    assert defence_claims([row]) == []

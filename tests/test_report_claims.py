"""The book's one verdict vocabulary (CONFIRMED / NOT CONFIRMED / INCONCLUSIVE): each rule
on hand-made rows whose answer is known, and the claims at a glance on the stored results."""

from pathlib import Path

import pytest

from mamlpriv import report
from mamlpriv.report import (
    VERDICTS,
    claims_at_a_glance,
    defence_claims,
    shape_claims,
    stage_claims,
    verdict_best_at,
    verdict_decreasing,
    verdict_flat,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"


def points(values, trials=100, x="x"):
    """Rows at x = 0, 1, 2, ... with the given accuracies."""
    return [{x: i, "accuracy": a, "trials": trials} for i, a in enumerate(values)]


def word(rule_result):
    return report._verdict_word(rule_result[0])


def test_the_verdict_words():
    assert VERDICTS == ("CONFIRMED", "NOT CONFIRMED", "INCONCLUSIVE")
    assert [report._verdict_word(ok) for ok in (True, False, None)] == list(VERDICTS)
    assert report._by_interval(0.2, 0.1) is True and report._by_interval(-0.2, 0.1) is False
    assert report._by_interval(0.05, 0.1) is None and report._by_interval(0.0, 0.0) is None
    d, h = report._mean_of_diffs([(0.1, 0.3), (0.3, 0.4)])
    assert d == pytest.approx(0.2) and h == pytest.approx(0.25)  # sqrt(0.09 + 0.16) / 2


def test_flat_within_the_tolerance_beyond_it_or_undecided_by_the_interval():
    # spread 0.08 <= 0.10
    assert word(verdict_flat(points([0.90, 0.95, 0.87]), "x")) == "CONFIRMED"
    # spread 0.14 exceeds 0.10 by 0.04; 0.75 - 0.61 at 100 trials has half-width 0.13
    assert word(verdict_flat(points([0.75, 0.61, 0.73]), "x")) == "INCONCLUSIVE"
    # the same spread at 10,000 trials per point: half-width 0.013
    ok, why = verdict_flat(points([0.75, 0.61, 0.73], trials=10000), "x")
    assert report._verdict_word(ok) == "NOT CONFIRMED" and "spread 0.14, rule: at most 0.10" in why
    # spread 0.4: beyond the tolerance by far more than the half-width (~0.13)
    assert word(verdict_flat(points([0.95, 0.55, 0.7]), "x")) == "NOT CONFIRMED"
    assert word(verdict_flat(points([0.9, 0.5]), "x")) == "INCONCLUSIVE"  # two points only


def test_decreasing_by_the_interval_of_first_minus_last():
    assert word(verdict_decreasing(points([0.9, 0.8, 0.6]), "x")) == "CONFIRMED"  # +0.30 ± 0.11
    assert word(verdict_decreasing(points([0.6, 0.8, 0.9]), "x")) == "NOT CONFIRMED"  # -0.30 ± 0.11
    ok, why = verdict_decreasing(points([0.8, 0.7, 0.75]), "x")  # +0.05 ± 0.12
    assert ok is None and "first minus last +0.05 ±" in why
    ok, why = verdict_decreasing(points([0.9, 0.6]), "x")
    assert ok is None and "at least 3" in why


def test_best_at_needs_the_margin_to_clear_its_interval():
    # the bug this vocabulary fixes: a margin of +0.02 ± 0.03 was CONFIRMED
    ok, why = verdict_best_at(points([1.00, 0.98, 0.62]), "x", "first")
    assert ok is None and "+0.02 ±" in why and "not resolved" in why
    assert word(verdict_best_at(points([0.95, 0.70, 0.60]), "x", "first")) == "CONFIRMED"
    assert word(verdict_best_at(points([0.60, 0.95, 0.70]), "x", "first")) == "NOT CONFIRMED"
    # inside: best inner point against the better end
    assert word(verdict_best_at(points([0.55, 0.86, 0.71, 0.60]), "x", "inside")) == "CONFIRMED"  # +0.26 ± 0.11
    assert word(verdict_best_at(points([0.64, 0.81, 0.75]), "x", "inside")) == "INCONCLUSIVE"  # +0.06 ± 0.12
    assert word(verdict_best_at(points([0.50, 0.60, 0.90]), "x", "inside")) == "NOT CONFIRMED"  # -0.30
    assert word(verdict_best_at(points([1.0, 1.0, 1.0]), "x", "first")) == "INCONCLUSIVE"  # a tie, no spread


def _row(attack, game="paper", **kw):
    return {"dataset": "mnist", "attack": attack, "game": game, "ways": 3, "shots": 1, "stage": 0, "trials": 100, **kw}


def test_shape_and_stage_claims_speak_the_three_words():
    rows = [_row("query", ways=w, accuracy=a) for w, a in [(3, 0.9), (5, 0.85), (7, 0.95), (10, 0.88)]]
    rows += [_row("query", shots=s, accuracy=a) for s, a in [(2, 0.8), (3, 0.7), (5, 0.6)]]
    rows += [_row("support", ways=w, accuracy=a) for w, a in [(3, 0.9), (5, 0.6)]]
    claims = {(c["claim"][:6], c["attack"]): c["verdict"] for c in shape_claims(rows)}
    assert claims[("Fig. 5", "query")] == claims[("Fig. 6", "query")] == "CONFIRMED"
    assert claims[("Fig. 5", "support")] == claims[("Fig. 6", "support")] == "INCONCLUSIVE"  # too few points
    stages = [_row("query", stage=s, accuracy=a) for s, a in [(0, 1.0), (300, 0.98), (1000, 0.6)]]
    stages += [_row("support", stage=s, accuracy=a) for s, a in [(0, 0.5), (300, 0.6), (1000, 0.9)]]
    verdicts = {c["attack"]: c["verdict"] for c in stage_claims(stages)}
    assert verdicts == {"query": "INCONCLUSIVE", "support": "NOT CONFIRMED"}
    strict = [_row(a, "strict", stage=s, accuracy=0.7) for a in ("query", "support") for s in (0, 300)]
    assert {c["verdict"] for c in stage_claims(strict, "strict")} == {"INCONCLUSIVE"}  # two stages only


def test_inner_loop_questions_use_the_flat_rule_per_knob():
    def loop(attack, rates, steps):
        return [_row(attack, inner_lr=lr, inner_steps=1, accuracy=a) for lr, a in rates] + [
            _row(attack, inner_lr=0.1, inner_steps=k, accuracy=a) for k, a in steps
        ]

    rows = loop("query", [(0.01, 1.0), (0.1, 0.98), (1.0, 0.95)], [(2, 0.97), (5, 0.99)])  # 1 step at 0.1 above
    rows += loop("support", [(0.01, 0.55), (0.1, 0.85), (1.0, 0.7)], [(2, 0.72), (5, 0.8)])
    # strict-game rows are not read (they would make the support attack's steps NOT CONFIRMED)
    rows += [_row("support", "strict", inner_lr=0.1, inner_steps=k, accuracy=0.2) for k in (2, 5)]
    found = [(c["claim"].split(" in the ")[1], c["attack"], c["verdict"]) for c in report.inner_loop_claims(rows, 0.1)]
    assert found == [
        ("inner rate", "query", "CONFIRMED"),  # spread 0.05
        ("inner steps", "query", "CONFIRMED"),  # 0.98, 0.97, 0.99
        ("inner rate", "support", "NOT CONFIRMED"),  # spread 0.30 > 0.10 + half-width 0.13
        ("inner steps", "support", "INCONCLUSIVE"),  # 0.85, 0.72, 0.8: 0.13, over by less than 0.11
    ]
    # a knob with two points is INCONCLUSIVE
    two = loop("query", [(0.01, 1.0), (0.1, 0.5)], [])
    assert [c["verdict"] for c in report.inner_loop_claims(two, 0.1)][:2] == ["INCONCLUSIVE", "INCONCLUSIVE"]


def _defence(attack, location, level, acc, confident=False, dataset="mnist"):
    return {"dataset": dataset, "attack": attack, "location": location, "level": level, "attack_accuracy": acc,
            "confident": confident, "profile": "paper"}


def _verdict_of(line):
    return line.split(": ", 1)[1].split(" -- ")[0]


def test_defence_claims_count_confident_levels_and_compare_locations_with_an_interval():
    def sweep(attack, support_accs, query_accs, confident=()):
        return [_defence(attack, loc, lv, a, (loc, lv) in confident)
                for loc, accs in (("support_data", support_accs), ("query_data", query_accs))
                for lv, a in zip((0.1, 1.0), accs)]

    # query attack: query-data noise far more effective (0.95 against 0.6); support attack: a tie
    rows = sweep("query", (0.95, 0.95), (0.7, 0.5)) + sweep("support", (0.7, 0.6), (0.7, 0.6), {("query_data", 1.0)})
    lines = defence_claims(rows)
    assert [_verdict_of(x) for x in lines] == ["CONFIRMED", "CONFIRMED", "INCONCLUSIVE"]
    assert lines[0].endswith("-- confident levels: query 0/4, support 1/4")
    assert lines[1].endswith("query data 0.600, support data 0.950")
    # the reverse: support-data noise more effective, beyond the interval; fewer confident support levels
    rows = sweep("query", (0.5, 0.5), (0.9, 0.9), {("query_data", 0.1)}) + sweep("support", (0.7, 0.6), (0.7, 0.6))
    assert [_verdict_of(x) for x in defence_claims(rows)] == ["NOT CONFIRMED", "NOT CONFIRMED", "INCONCLUSIVE"]
    # a difference of 0.1 is resolved at 1,000 trials per cell but not at 20
    rows = sweep("query", (0.8, 0.8), (0.7, 0.7))
    assert _verdict_of(defence_claims(rows, trials=1000)[1]) == "CONFIRMED"
    assert _verdict_of(defence_claims(rows, trials=20)[1]) == "INCONCLUSIVE"
    assert _verdict_of(defence_claims([dict(r, profile=None) for r in rows])[1]) == "INCONCLUSIVE"  # trials unknown
    # no level measured at both locations; equal counts
    lines = defence_claims([_defence("query", "support_data", 0.1, 0.9), _defence("query", "query_data", 1.0, 0.5)])
    assert lines[0] == ("[mnist] support attacks more sensitive to noise: INCONCLUSIVE -- "
                        "confident levels: query 0/2, support 0/0")
    assert lines[1].endswith(": INCONCLUSIVE -- no noise level measured at both locations")


def test_glance_rules_on_hand_made_rows():
    def cells(attack, accs, trials=100):
        return [_row(attack, ways=w, accuracy=a, trials=trials, accuracy_lo=a - 0.1) for w, a in zip((3, 5, 7), accs)]

    rows = cells("query", (0.95, 0.9, 0.92)) + cells("support", (0.52, 0.5, 0.48))
    work = {r["claim"]: r for r in report._attacks_work(rows)}
    assert work["The query attack infers membership (mnist)"]["verdict"] == "CONFIRMED"
    assert work["The support attack infers membership (mnist)"]["verdict"] == "INCONCLUSIVE"  # pooled 0.50
    low = report._attacks_work(cells("support", (0.3, 0.35, 0.4)))
    assert low[0]["verdict"] == "NOT CONFIRMED" and low[0]["ours"].startswith("0.35 [")
    (race,) = report._query_beats_support(rows)
    assert race["verdict"] == "CONFIRMED" and "in 3 of 3 cells" in race["reason"]
    (tie,) = report._query_beats_support(cells("query", (0.7, 0.6, 0.65)) + cells("support", (0.65, 0.62, 0.66)))
    assert tie["verdict"] == "INCONCLUSIVE"

    def runtime(it, seconds):
        return [{"config": {"target": t, "iterations": it, "size": n}, "result": {"seconds_per_trial": s}}
                for n, pair in zip((3, 5, 10), seconds) for t, s in zip(("query", "support"), pair)]

    fast = report._query_faster(runtime(50, [(0.1, 0.4), (0.1, 0.35), (0.2, 0.7)])
                                + runtime(100, [(0.2, 0.1), (0.4, 0.1), (0.3, 0.1)])
                                + runtime(200, [(0.2, 0.3), (0.3, 0.2), (0.2, 0.2)]))
    assert [r["verdict"] for r in fast] == ["CONFIRMED", "NOT CONFIRMED", "INCONCLUSIVE"]
    assert fast[0]["ours"].startswith("3.7x [") and "query faster at 3 of 3 sizes" in fast[0]["reason"]
    both = report.attack_claims(rows, runtime(50, [(0.1, 0.4), (0.1, 0.35), (0.2, 0.7)]))
    assert [r["claim"] for r in both] == [*work, race["claim"], fast[0]["claim"]]
    line = report.glance_sentence(fast[0])
    assert line.startswith("**The query attack is faster than the support attack (50 iterations)**: **CONFIRMED**.")
    assert "Paper, section V-B1, Tables III-IV: " in line and f"Ours: {fast[0]['ours']}; " in line

    def order(ds, diffs):
        return [{"dataset": ds, "attack": "support", "ways": w, "shots": 1, "accuracy_diff": d,
                 "accuracy_diff_ci95": 0.1, "auc_diff": d, "auc_diff_lo": d - 0.1, "auc_diff_hi": d + 0.1}
                for w, d in zip((3, 5), diffs)]

    fo = report.first_order_claims(order("a", (-0.2, -0.1)) + order("b", (0.2, 0.1)) + order("c", (-0.05, 0.0)))
    assert [r["verdict"] for r in fo] == ["CONFIRMED", "NOT CONFIRMED", "INCONCLUSIVE"]

    # per dataset: whether each attack has a confident level (None: learning not known)
    flags = {"mnist": (True, True), "b": (True, False), "c": (True, None)}
    stop = [_defence(a, "query_data", 1.0, 0.5, f, ds)
            for ds, fs in flags.items() for a, f in zip(("query", "support"), fs)]
    stop.append(_defence("support", "gaussian mechanism", 1.0, 0.5, True, "b"))  # not the paper's noise: ignored
    verdicts = {r["claim"].rsplit("(", 1)[1]: (r["verdict"], r["reason"]) for r in report._noise_stops_attacks(stop)}
    assert verdicts["mnist)"][0] == "CONFIRMED" and verdicts["mnist)"][1].startswith("a confident")
    assert verdicts["b)"][0] == "NOT CONFIRMED" and verdicts["b)"][1].endswith("for the support attack")
    assert verdicts["c)"][0] == "INCONCLUSIVE"  # the support attack's learning accuracy is unknown


@pytest.mark.slow
@pytest.mark.skipif(not (RESULTS / "paper").is_dir(), reason="no stored paper-profile results")
def test_claims_at_a_glance_on_the_stored_results():
    rows = claims_at_a_glance(str(RESULTS))
    assert all(set(r) == {"claim", "section", "paper", "ours", "verdict", "reason", "chapter"} for r in rows)
    assert {r["verdict"] for r in rows} <= set(VERDICTS)
    groups = {
        "infers membership": "attacks",
        "beats the support attack": "attacks",
        "is faster than the support attack": "attacks",
        "roughly flat in ways": "ways_shots",
        "falls with shots": "ways_shots",
        "best at epoch 0": "training_stages",
        "best when partly trained": "training_stages",
        "First-order MAML leaks less": "first_order",
        "more sensitive to noise": "defences",
        "query-data noise more effective": "defences",
        "Noise stops the attacks": "defences",
        "depends more on the query set": "gradient_anatomy",
    }
    for text, chapter in groups.items():
        found = [r for r in rows if text.lower() in r["claim"].lower()]
        assert found and {r["chapter"] for r in found} == {chapter}, text
    strict = [r for r in rows if "strict game" in r["claim"]]
    assert len(strict) == 4 and all("beyond the paper" in r["section"] for r in strict)
    attacked, maml_net = [r for r in rows if r["chapter"] == "gradient_anatomy"]
    assert "attacks target" in attacked["claim"] and attacked["section"] == "III-C"
    assert "beyond the paper" in maml_net["section"]
    # the stored cells decide every claim of Tables I-IV the same way
    assert {r["verdict"] for r in rows if r["chapter"] == "attacks"} == {"CONFIRMED"}


def _swaps(support: list[float], query: list[float], **extra) -> list[dict]:
    return [{"set": st, "replacement": kind, "cosine": sum(v) / len(v), "per_task": v, **extra}
            for st, v in (("support", support), ("query", query)) for kind in ("same-class", "noise")]  # fmt: skip


def test_section_iii_c_is_decided_by_the_paired_per_task_cosines():
    far, near = [0.9, 0.8, 0.95, 0.85], [0.1, 0.2, 0.0, 0.15]
    dep = report.set_dependence(_swaps(far, near))
    diffs = [a - b for a, b in zip(far, near)]
    mean = sum(diffs) / 4
    half = 1.96 * (sum((d - mean) ** 2 for d in diffs) / 3) ** 0.5 / 2
    assert set(dep) == {"same-class", "noise"} and dep["noise"] == pytest.approx((mean, half))

    def record(attacked: list[dict], trained: list[dict]) -> dict:
        old = [dict(r, iteration=500, per_task=[0.0] * 4) for r in trained]  # only the last snapshot counts
        return {"result": {"attack_swaps": attacked, "swaps": [dict(r, iteration=1000) for r in trained] + old}}

    noisy = [0.5, 0.1, 0.6, 0.2]
    rows = report.query_set_claims([record(_swaps(far, near), _swaps(near, far, run="second-order")
                                                  + _swaps(far, near, run="first-order"))])  # fmt: skip
    assert [r["verdict"] for r in rows] == ["CONFIRMED", "NOT CONFIRMED"]
    rows = report.query_set_claims([record(_swaps(noisy, [0.3, 0.4, 0.2, 0.35]), _swaps(far, near,
                                                                                            run="second-order"))])
    assert [r["verdict"] for r in rows] == ["INCONCLUSIVE", "CONFIRMED"]
    (missing,) = report.query_set_claims([])
    assert missing["verdict"] == "INCONCLUSIVE" and "not stored" in missing["reason"]


# The verdict of every claim at a glance on the stored paper cells (C: CONFIRMED, N: NOT CONFIRMED,
# I: INCONCLUSIVE). The chapters' takeaways and the glance page's prose name these verdicts; a
# recompute that changes one fails here, so the prose is read again before the new cells land.
STORED_VERDICTS = {
    "The query attack infers membership (fashion-mnist)": "C",
    "The support attack infers membership (fashion-mnist)": "C",
    "The query attack infers membership (mnist)": "C",
    "The support attack infers membership (mnist)": "C",
    "The query attack beats the support attack (fashion-mnist)": "C",
    "The query attack beats the support attack (mnist)": "C",
    "The query attack is faster than the support attack (50 iterations)": "C",
    "The query attack is faster than the support attack (100 iterations)": "C",
    "The query attack is faster than the support attack (200 iterations)": "C",
    "Query attack accuracy roughly flat in ways (fashion-mnist)": "C",
    "Query attack accuracy falls with shots (fashion-mnist)": "C",
    "Support attack accuracy roughly flat in ways (fashion-mnist)": "I",
    "Support attack accuracy falls with shots (fashion-mnist)": "C",
    "Query attack accuracy roughly flat in ways (mnist)": "C",
    "Query attack accuracy falls with shots (mnist)": "C",
    "Support attack accuracy roughly flat in ways (mnist)": "I",
    "Support attack accuracy falls with shots (mnist)": "C",
    "Query attack best at epoch 0 (fashion-mnist)": "C",
    "Support attack best when partly trained (fashion-mnist)": "C",
    "Query attack best at epoch 0 (mnist)": "I",
    "Support attack best when partly trained (mnist)": "I",
    "Query attack best at epoch 0 (fashion-mnist, strict game)": "C",
    "Support attack best when partly trained (fashion-mnist, strict game)": "I",
    "Query attack best at epoch 0 (mnist, strict game)": "I",
    "Support attack best when partly trained (mnist, strict game)": "C",
    "First-order MAML leaks less about the support set (fashion-mnist)": "I",
    "First-order MAML leaks less about the support set (mnist)": "C",
    "Support attacks more sensitive to noise (fashion-mnist)": "C",
    "Query-data noise more effective than support-data noise (fashion-mnist, query attack)": "C",
    "Query-data noise more effective than support-data noise (fashion-mnist, support attack)": "I",
    "Support attacks more sensitive to noise (mnist)": "I",
    "Query-data noise more effective than support-data noise (mnist, query attack)": "C",
    "Query-data noise more effective than support-data noise (mnist, support attack)": "I",
    "Noise stops the attacks without hurting learning (fashion-mnist)": "N",
    "Noise stops the attacks without hurting learning (mnist)": "N",
    f"{report.ANATOMY_CLAIM} on the network the attacks target (untrained, 3-way 1-shot)": "C",
    f"{report.ANATOMY_CLAIM} on the MAML chapter's network (trained, second order)": "N",
}


@pytest.mark.slow
@pytest.mark.skipif(not (RESULTS / "paper").is_dir(), reason="no stored paper-profile results")
def test_the_stored_cells_decide_every_claim_as_the_prose_says():
    words = {"C": "CONFIRMED", "N": "NOT CONFIRMED", "I": "INCONCLUSIVE"}
    found = {r["claim"]: r["verdict"] for r in claims_at_a_glance(str(RESULTS))}
    assert found == {claim: words[v] for claim, v in STORED_VERDICTS.items()}

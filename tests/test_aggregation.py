"""Secure aggregation and the audit's cells: the adversary's view of a sum of task
gradients, the Gaussian mechanism's noise shared by a meta-batch, the worst-case
distinguisher's cell, and the audit's rows on hand-made records with known answers."""

import math
from dataclasses import replace

import pytest
import torch

from mamlpriv import audit_report, catalog, cells
from mamlpriv.audit import gaussian_auc, gdp_epsilon
from mamlpriv.cells import AuditCell, LearningCell
from mamlpriv.data import TaskBatch, stack_tasks
from mamlpriv.defenses import GaussianMechanismSpec, RawNoise, defence_from_json
from mamlpriv.maml import MAMLConfig, task_gradients
from mamlpriv.membership import GameConfig, _released, draw_trials
from mamlpriv.models import MLP, forward, init_params

QUICK = catalog.profile("quick")


def test_the_adversary_sees_the_sum_of_the_trials_task_and_its_others(tiny_dataset):
    """aggregate=m: the released gradient of each trial equals the sum of the task
    gradients of its own task and of its m - 1 other tasks, computed one by one."""
    model = MLP(2, hidden=5, layers=1, in_features=28 * 28)
    f, p = forward(model), init_params(model, seed=1)
    maml = MAMLConfig(0.3, 1)
    game = GameConfig("query", "paper", 2, 1, 4, seed=3, aggregate=3)
    trials = draw_trials(tiny_dataset, game)
    assert trials.others is not None and len(trials.others) == 4 * 2
    _, _, g, mine = _released(f, p, trials, maml, None)
    o = trials.others
    for t in range(4):
        own = task_gradients(f, p, stack_tasks([trials.tasks[t]]), maml)[0]
        rows = slice(2 * t, 2 * t + 2)
        rest = task_gradients(f, p, TaskBatch(o.support_x[rows], o.support_y[rows], o.query_x[rows], o.query_y[rows]),
                              maml)[0]  # fmt: skip
        for k in g:
            torch.testing.assert_close(g[k][t], own[k][0] + rest[k].sum(0), rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(mine[k][t], own[k][0], rtol=1e-5, atol=1e-7)  # the trial's own part
    plain = draw_trials(tiny_dataset, replace(game, aggregate=1))
    assert plain.others is None and plain.task_seeds == trials.task_seeds  # the same trials, alone
    assert game.validation(2).aggregate == 3
    with pytest.raises(ValueError, match="aggregate"):
        GameConfig(aggregate=0)
    with pytest.raises(ValueError, match="aggregation with a defence"):
        _released(f, p, trials, maml, RawNoise("validation_grad", 0.1).task_noise())


def test_aggregated_noise_shares_add_up_to_the_mechanisms_noise():
    """Closed form: m shares of N(0, (sigma C)^2 / m) sum to N(0, (sigma C)^2), the
    per-task mechanism's release; the mean of the meta-batch then has std sigma C / m
    instead of sigma C / sqrt(m)."""
    per_task = GaussianMechanismSpec(0.1, 2.0)
    shared = GaussianMechanismSpec(0.1, 2.0, shares=4)
    std_task, std_share = per_task.task_noise().validation_grad.std, shared.task_noise().validation_grad.std
    assert 4 * std_share**2 == pytest.approx(std_task**2)
    assert math.sqrt(4 * std_share**2) / 4 == pytest.approx(std_task / 4)  # mean of 4: sigma C / m
    assert shared.task_noise().clip == per_task.task_noise().clip == 0.1
    assert per_task.to_json() == {"clip": 0.1, "noise_multiplier": 2.0}  # stored cells keep their ids
    assert defence_from_json(shared.to_json()) == shared and shared.label.endswith("aggregated")
    with pytest.raises(ValueError, match="shares"):
        GaussianMechanismSpec(0.1, 1.0, shares=0)


def test_audit_and_aggregation_cells_round_trip_and_refuse_bad_input():
    a = catalog.audit("quick")
    assert len(a.cells) == 2 * (1 + len(catalog.defences(QUICK)))
    for c in a.cells:
        assert cells.from_config(c.to_config()) == c
    agg = catalog.aggregation("quick")
    kinds = {type(c) for c in agg.cells}
    assert kinds == {cells.MembershipCell, LearningCell}
    for c in agg.cells:
        assert cells.from_config(c.to_config()) == c
    m4 = [c for c in agg.cells if isinstance(c, cells.MembershipCell) and c.aggregate == 4]
    assert m4 and all(c.to_config()["aggregate"] == 4 for c in m4)
    assert "aggregate" not in [c for c in agg.cells if isinstance(c, cells.MembershipCell)][0].to_config()
    base = a.cells[0]
    with pytest.raises(ValueError, match="trials"):
        replace(base, trials=3)
    with pytest.raises(ValueError, match="stage"):
        replace(base, stage=150)
    with pytest.raises(ValueError, match="aggregate"):
        replace(m4[0], noise=RawNoise("validation_grad", 0.1))


@pytest.mark.slow
def test_the_audit_cell_separates_noise_free_worlds_and_not_drowned_ones(mnist_test):
    """Noise-free, the worst case tells the worlds apart on every trial (AUC 1, a positive
    lower bound on epsilon); under a Gaussian mechanism with noise multiplier 100 it is
    close to guessing and the bound stays below the release's exact epsilon."""
    base = AuditCell("mnist", "query", 3, 1, 60, 0, MAMLConfig(0.1), 300, 0)
    free = base.compute()
    assert free["auc"] == 1.0 and free["empirical"]["epsilon"] > 1.0
    assert len(free["scores"]) == len(free["members"]) == 60 and sum(free["members"]) == 30
    noisy = replace(base, noise=GaussianMechanismSpec(0.1, 100.0)).compute()
    assert noisy["auc"] < 0.75
    assert noisy["empirical"]["epsilon"] <= audit_report.release_epsilon(100.0)


def test_release_and_implied_epsilons_are_the_gaussian_tests():
    assert audit_report.release_epsilon(1.0) == pytest.approx(gdp_epsilon(2.0, 1e-5))
    assert audit_report.release_epsilon(0.0) == math.inf
    assert audit_report.release_epsilon(0.5) > audit_report.release_epsilon(1.0) > audit_report.release_epsilon(3.0)
    for mu in (0.3, 1.0, 2.5):
        assert audit_report.implied_epsilon(gaussian_auc(mu)) == pytest.approx(gdp_epsilon(mu, 1e-5), rel=1e-6)
    assert audit_report.implied_epsilon(0.45) == 0.0


def _learning(dataset, seed, acc, spec=None):
    c = LearningCell(dataset, 3, 1, seed, MAMLConfig(0.1), 1000, spec)
    return {"config": c.to_config(), "result": {"test_acc": acc}}


def test_learning_rows_and_the_frontier_on_known_numbers():
    """Two noise levels, two modes, two seeds each: the rows average the seeds, take the
    accountant's epsilon per population, and the frontier picks the most accurate level
    within each budget (none when no level fits)."""
    recs = []
    for seed, (a, b, c, d) in enumerate([(0.5, 0.4, 0.6, 0.45), (0.7, 0.4, 0.8, 0.45)]):
        recs += [_learning("mnist", seed, a, GaussianMechanismSpec(0.1, 1.0)),
                 _learning("mnist", seed, b, GaussianMechanismSpec(0.1, 3.0)),
                 _learning("mnist", seed, c, GaussianMechanismSpec(0.1, 1.0, 4)),
                 _learning("mnist", seed, d, GaussianMechanismSpec(0.1, 3.0, 4)),
                 _learning("mnist", seed, 0.9)]  # fmt: skip
    rows = audit_report.learning_rows(recs, populations=(1000, 10**6))
    by = {(r["mode"], r["sigma"]): r for r in rows}
    assert by[("per task", 1.0)]["acc"] == pytest.approx(0.6) and by[("aggregated", 1.0)]["acc"] == pytest.approx(0.7)
    assert by[("per task", 1.0)]["seeds"] == 2 and by[("none", 0.0)]["eps"][1000] == math.inf
    e1, e3 = by[("per task", 1.0)]["eps"], by[("per task", 3.0)]["eps"]
    assert e1[1000] > e3[1000] and e1[10**6] < e1[1000]  # more noise or a larger population: less epsilon
    assert by[("aggregated", 1.0)]["eps"] == e1  # the same release, the same accountant
    front = audit_report.frontier(rows, budgets=(e3[1000] * 0.5, e1[1000] * 1.01), populations=(1000,))
    pick = {(f["mode"], f["budget"]): f for f in front}
    assert pick[("per task", e3[1000] * 0.5)]["acc"] is None
    assert pick[("per task", e1[1000] * 1.01)]["sigma"] == 1.0
    assert pick[("aggregated", e1[1000] * 1.01)]["acc"] == pytest.approx(0.7)


def _row(defence, level, worst, attack=None, dataset="mnist", target="query"):
    release = audit_report.release_epsilon(level) if defence.startswith("gaussian") else None
    return {"dataset": dataset, "attack": target, "defence": defence, "level": level, "worst_eps": worst,
            "attack_eps": attack, "release_eps": release}  # fmt: skip


def test_release_findings_count_and_name_the_levels():
    """The consistency verdict counts the bounds above the guarantee; the level from which
    every bound stays small is the smallest with no larger level above it; raw-noise
    cells that stop the paper's attack but leak to the worst case are counted."""
    gm = "gaussian mechanism"
    rows = [_row("none", 0.0, 5.1), _row(gm, 0.3, 3.0, 0.1), _row(gm, 1.0, 0.4, 0.0), _row(gm, 3.0, 0.2, 0.3),
            _row("query_data", 1.0, 2.0, 0.1),
            _row("query_data", 3.0, 0.3, 0.0), _row("support_data", 1.0, 4.0, 1.5)]  # fmt: skip
    lines = audit_report.release_findings(rows)
    assert lines[0].startswith("**CONFIRMED**") and "3 of 3" in lines[0]
    assert "ε ≥ 5.10" in lines[1]
    assert "below 0.5 from σ = 1 on" in lines[2] and "attack's from σ = 0.3 on" in lines[2]
    assert "3 raw-noise cells" in lines[3] and "less than 0.5 in 2; in 1 of those" in lines[3]
    broken = rows + [_row("gaussian mechanism", 3.0, 9.0, 0.0, dataset="fashion-mnist")]
    assert audit_report.release_findings(broken)[0].startswith("**NOT CONFIRMED**")
    assert "at no σ tried (up to 3)" in audit_report.release_findings(broken)[2]

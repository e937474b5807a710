"""The catalog: profiles, the experiments' grids, and knobs that change exactly the grid."""

from dataclasses import replace

import pytest

from mamlpriv import catalog, pages
from mamlpriv.attacks import attack_for
from mamlpriv.cells import AnatomyCell, AuditCell, LearningCell, MembershipCell, RuntimeCell
from mamlpriv.defenses import LOCATIONS, GaussianMechanismSpec, RawNoise
from mamlpriv.models import ATTACK_NET, NetConfig
from mamlpriv.runner import PROFILES, Experiment, cell_id
from mamlpriv.scores import EXTRA_SCORES


@pytest.fixture(scope="module")
def grids():
    return {p: {e.name: e for e in catalog.experiments(p)} for p in PROFILES}


def test_every_profile_has_every_experiment_with_distinct_cells(grids):
    for profile in PROFILES:
        assert list(grids[profile]) == list(catalog.EXPERIMENTS)  # the book's order
        for exp in grids[profile].values():
            assert isinstance(exp, Experiment) and len(exp.cells) > 0
            assert len({cell_id(c.to_config()) for c in exp.cells}) == len(exp.cells), (profile, exp.name)
    paper = grids["paper"]["tables-1-2"]
    assert len(paper.cells) == 2 * 9 * 2  # datasets x (ways, shots) x attacks
    assert all(c.trials == 100 and c.validation == 100 for c in paper.cells)
    assert not grids["paper"]["tables-3-4"].parallel and grids["paper"]["tables-1-2"].parallel


def test_cell_kinds_per_experiment(grids):
    for name, exp in grids["paper"].items():
        if name == "aggregation":
            assert {type(c) for c in exp.cells} == {MembershipCell, LearningCell}
            continue
        kinds = {"tables-3-4": RuntimeCell, "defence-learning": LearningCell, "audit": AuditCell,
                 "maml-variants": LearningCell, "gradient-anatomy": AnatomyCell}  # fmt: skip
        kind = kinds.get(name, MembershipCell)
        assert all(type(c) is kind for c in exp.cells), name


def test_point_keys_name_each_point_once_and_the_paper_profile_covers_the_quick_one(grids):
    """A page shows one cell per point: the keys are injective in every profile, and
    every quick point is a paper point (a complete paper profile replaces the quick one)."""
    assert set(pages.POINT_KEYS) == set(catalog.EXPERIMENTS)
    for name, exp in grids["paper"].items():
        key = pages.POINT_KEYS[name]
        points = [key(c) for c in exp.cells]
        assert len(set(points)) == len(points), name
        small = [key(c) for c in grids["quick"][name].cells]
        assert len(set(small)) == len(small) and set(small) <= set(points), name
    # a key that ignored the noise would merge the defence levels
    # 41 defence levels x 2 attacks x 2 data sets
    assert len({pages.POINT_KEYS["defence-attacks"](c) for c in grids["paper"]["defence-attacks"].cells}) == 164


@pytest.mark.parametrize(("tests", "base"), [("stronger-tests", "tables-1-2"), ("defence-tests", "defence-attacks")])
def test_the_stronger_tests_score_exactly_the_cells_of_their_experiment(grids, tests, base):
    """The same cells (trials, stages, attack, defence) with the extra scores added, so
    their SSIM numbers are the stored ones of ``base``."""
    for profile in ("quick", "paper"):
        scored = grids[profile][tests].cells
        assert all(c.scores == EXTRA_SCORES for c in scored)
        assert [replace(c, scores=()) for c in scored] == list(grids[profile][base].cells), profile


def test_the_replication_is_the_support_grid_on_seed_1_in_the_strict_game(grids):
    for profile in ("quick", "paper"):
        rep, base = grids[profile]["stronger-tests-replication"].cells, grids[profile]["stronger-tests"].cells
        support = [c for c in base if c.target == "support"]
        assert [c.shape for c in rep] == [c.shape for c in support], profile
        assert {(c.seed, c.games, c.scores) for c in rep} == {(1, ("strict",), ("profile", "combined"))}
        assert all(len(c.stages) == 1 and c.stages[0] in catalog.profile(profile).stages for c in rep)
    paper = {(c.dataset, c.ways, c.shots): c.stages[0] for c in grids["paper"]["stronger-tests-replication"].cells}
    assert paper == catalog.SEED0_STAGES  # and test_cells checks the table against the stored cells


def test_membership_cells_take_the_profile_and_the_target_s_defaults():
    p = catalog.profile("paper")
    q = catalog.membership(p, "mnist", "query", 5, 2)
    s = catalog.membership(p, "mnist", "support", 5, 2)
    assert q.stages == (0,) and s.stages == p.stages  # the query attack on the untrained network
    assert q.attack == attack_for("query").defaults and s.attack == attack_for("support").defaults
    assert (s.trials, s.validation, s.train_iterations, s.seed) == (100, 100, 1000, 0)
    assert s.maml.inner_lr == catalog.INNER_LR and not s.maml.first_order and s.maml.inner_steps == 1
    assert catalog.membership(p, "mnist", "support", 5, 2, stages=(0, 300), learning=True).stages == (0, 300)


def test_the_maml_chapter_s_runs(grids):
    """Second order, first order, first order with more steps, on the chapter's net
    (GroupNorm), as long as the profile says or the knob asks."""
    for profile, length in (("quick", 1000), ("paper", 10000)):
        runs = grids[profile]["maml-variants"].cells
        assert [(c.maml.first_order, c.maml.inner_steps) for c in runs] == [(False, 1), (True, 1), (True, 5)]
        assert all(c.train_iterations == length and c.net == NetConfig() and c.maml.inner_lr == 0.4 for c in runs)
        assert all(c.net != ATTACK_NET and c.noise is None for c in runs)
    short = catalog.experiment("maml-variants", "quick", dataset="fashion-mnist", iterations=2, fo_long_steps=3)
    assert [(c.dataset, c.train_iterations, c.maml.inner_steps) for c in short.cells] == [
        ("fashion-mnist", 2, 1), ("fashion-mnist", 2, 1), ("fashion-mnist", 2, 3)]  # fmt: skip


def test_the_anatomy_chapter_s_cell_analyses_the_first_two_maml_runs(grids):
    for profile, every in (("quick", 100), ("paper", 500)):
        (cell,) = grids[profile]["gradient-anatomy"].cells
        second, first = grids[profile]["maml-variants"].cells[:2]
        assert (cell.run(False), cell.run(True)) == (second, first) and cell.every == every
        p = catalog.profile(profile)
        assert (cell.tasks, cell.sweep_lrs, cell.sweep_steps) == (p.analysis_tasks, p.sweep_lrs, p.sweep_steps)
    (short,) = catalog.experiment("gradient-anatomy", "quick", iterations=250).cells
    assert (short.train_iterations, short.every) == (250, 25)


def test_training_stage_knobs_change_exactly_the_grid(grids):
    exp = catalog.training_stages("quick", datasets=("fashion-mnist",), ways=5, stages=(0, 20))
    cells = exp.cells
    assert len(cells) == 4 and exp.name == "training-stages"
    assert {(c.dataset, c.ways, c.shots) for c in cells} == {("fashion-mnist", 5, 1)}
    assert sorted((c.target, c.stages) for c in cells) == [("query", (0,)), ("query", (20,)), ("support", (0,)),
                                                          ("support", (20,))]
    assert all(c.train_iterations >= 20 and c.learning for c in cells)
    # put the knobbed fields back: everything else is the quick profile's cell of the same target
    default = {c.target: c for c in grids["quick"]["training-stages"].cells}
    for c in cells:
        d = default[c.target]
        assert replace(c, dataset=d.dataset, ways=d.ways, stages=d.stages, train_iterations=d.train_iterations) == d
        assert c.attacks == tuple(replace(attack_for(c.target).defaults, lr=lr) for lr in catalog.STAGE_TUNED_LRS)
    longer = catalog.training_stages("quick", stages=(100,), train_iterations=500)
    assert {c.train_iterations for c in longer.cells} == {500}
    # the attack's length: every candidate and the default attack, nothing else
    short = catalog.training_stages("quick", attack_iterations=10)
    for c, d in zip(short.cells, catalog.training_stages("quick").cells):
        assert {a.iterations for a in (c.attack, *c.attacks)} == {10} and d.attack.iterations == 100
        assert replace(c, attack=d.attack, attacks=d.attacks) == d
    with pytest.raises(ValueError, match=r"iterations must be an integer in \[1, inf\), got 0"):
        catalog.training_stages("quick", attack_iterations=0)


def test_table_knobs_change_exactly_the_grid(grids):
    exp = catalog.tables_1_2("quick", grid=((7, 2),), trials=4, validation=6)
    assert len(exp.cells) == 2 * 2  # both data sets, both attacks
    assert {(c.ways, c.shots, c.trials, c.validation) for c in exp.cells} == {(7, 2, 4, 6)}
    default = {(c.dataset, c.target): c for c in grids["quick"]["tables-1-2"].cells if c.ways == 3}
    for c in exp.cells:
        assert replace(c, ways=3, shots=1, trials=20, validation=20) == default[c.dataset, c.target]
    assert {c.dataset for c in catalog.tables_1_2("quick", datasets=("mnist",)).cells} == {"mnist"}
    assert {(c.ways, c.shots) for c in catalog.ways_shots("quick", shapes=((3, 5),)).cells} == {(3, 5)}
    assert {(c.ways, c.shots) for c in catalog.first_order("quick", shapes=((5, 1),)).cells} == {(5, 1)}
    runtime = catalog.tables_3_4("quick", iterations=(7,), sizes=(10,), trials=2)
    assert {(c.iterations, c.size, c.trials) for c in runtime.cells} == {(7, 10, 2)} and len(runtime.cells) == 2


def test_inner_loop_knobs():
    exp = catalog.inner_loop("quick", inner_lrs=(0.05, 0.5), inner_steps=(3,))
    assert sorted((c.target, c.maml.inner_lr, c.maml.inner_steps) for c in exp.cells) == [
        ("query", 0.05, 1), ("query", 0.1, 3), ("query", 0.5, 1),
        ("support", 0.05, 1), ("support", 0.1, 3), ("support", 0.5, 1)]


def test_defence_knobs_change_exactly_the_levels():
    p = catalog.profile("quick")
    specs = catalog.defences(p, data_noise=(0.1, 0.2), grad_noise=(1e-4,), dp_sigmas=(3.0,))
    assert specs == [RawNoise(loc, v) for loc in LOCATIONS
                     for v in ((0.1, 0.2) if loc.endswith("_data") else (1e-4,))] + [
        GaussianMechanismSpec(catalog.DP_CLIP, 3.0)]
    attacks = catalog.defence_attacks("quick", data_noise=(0.1, 0.2))
    assert len(attacks.cells) == 2 * (2 * 2 + 2 * 1 + 2)  # attacks x (data + gradient levels + DP 0 and 1)
    assert all(c.games == ("paper",) and (c.ways, c.shots) == (3, 1) for c in attacks.cells)
    assert {c.stages for c in attacks.cells if c.target == "query"} == {(0,)}
    assert {c.stages for c in attacks.cells if c.target == "support"} == {(catalog.DEFENCE_STAGE,)}
    learning = catalog.defence_learning("quick", baseline_seeds=(3, 4), dp_sigmas=(0.5,))
    baselines = [c for c in learning.cells if c.noise is None]
    assert sorted(c.seed for c in baselines) == [3, 4]
    assert [c.noise for c in learning.cells if isinstance(c.noise, GaussianMechanismSpec)] == [
        GaussianMechanismSpec(catalog.DP_CLIP, 0.5)]
    control = catalog.game_control("quick")
    assert {c.noise for c in control.cells} == {RawNoise("validation_grad", catalog.CONTROL_NOISE)}


def test_experiment_passes_knobs_and_refuses_unknown_names():
    a = catalog.experiment("training-stages", "quick", stages=(0,))
    assert a == catalog.training_stages("quick", stages=(0,))
    with pytest.raises(ValueError, match="experiment"):
        catalog.experiment("table-9", "quick")
    with pytest.raises(TypeError, match="colour"):
        catalog.experiment("tables-1-2", "quick", colour="red")
    with pytest.raises(ValueError, match="profile"):
        catalog.experiment("tables-1-2", "huge")


def test_profiles_refuse_unknown_names_and_bad_sizes():
    assert catalog.profile("quick").name == "quick" and catalog.profile("paper").trials == 100
    with pytest.raises(ValueError, match="profile"):
        catalog.profile("huge")
    quick = catalog.profile("quick")
    with pytest.raises(ValueError, match="name"):
        replace(quick, name="huge")
    with pytest.raises(ValueError, match="trials"):
        replace(quick, trials=21)
    with pytest.raises(ValueError, match="validation"):
        replace(quick, validation=0)
    with pytest.raises(ValueError, match="datasets"):
        replace(quick, defence_datasets=("cifar10",))
    with pytest.raises(ValueError, match="profile"):
        catalog.experiments("huge")


@pytest.mark.parametrize("knobs", [{"trials": 0}, {"datasets": ()}])
def test_falsy_knobs_are_refused_not_replaced_by_the_profile_s_values(knobs):
    with pytest.raises(ValueError, match=next(iter(knobs))):
        catalog.tables_1_2("quick", **knobs)


def test_an_empty_stage_list_is_refused_by_name():
    with pytest.raises(ValueError, match="stages"):
        catalog.training_stages("quick", stages=())


def test_a_negative_stage_is_refused_with_the_range_of_stages():
    """The run's length was derived from the stages first (max(1, -100) = 1), so the error
    named the range [0, 1], which says nothing about what a stage may be."""
    with pytest.raises(ValueError, match=r"stages must be an integer in \[0, inf\), got -100"):
        catalog.training_stages("quick", stages=(-100,))

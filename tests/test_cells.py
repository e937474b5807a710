"""Typed cells: every stored paper cell round-trips through its type to the very same
configuration (and so keeps its file name), the catalog finds every stored cell, and bad
configurations are refused with named errors."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import REPO, assert_results_close, flat

from mamlpriv import catalog, cells
from mamlpriv.attacks import AttackConfig
from mamlpriv.cells import RUNTIME_SHAPES, AnatomyCell, AuditCell, LearningCell, MembershipCell, RuntimeCell
from mamlpriv.defenses import GaussianMechanismSpec, RawNoise
from mamlpriv.maml import MAMLConfig
from mamlpriv.metrics import roc_auc
from mamlpriv.models import ATTACK_NET, NetConfig
from mamlpriv.runner import cell_id

STORED = sorted((REPO / "results" / "paper").glob("*/*.json"))
QUICK = catalog.profile("quick")


# Experiments whose paper-profile run is under way (resumable: `python -m mamlpriv run
# --profile paper --experiment NAME`); their stored cells must still be catalog cells.
RUNNING: set[str] = set()  # none: defence-tests completed in session 13


def test_the_paper_results_are_there():
    folders = {p.parent.name for p in STORED}
    assert len(STORED) >= 376 and set(catalog.EXPERIMENTS) - RUNNING <= folders <= set(catalog.EXPERIMENTS)


@pytest.fixture(scope="module")
def records():
    return {p: json.loads(p.read_text()) for p in STORED}


def test_every_stored_cell_round_trips_to_the_same_config_and_id(records):
    """from_config(...).to_config() gives the stored JSON back key for key, in the same
    order, so every stored cell keeps its id (and its file)."""
    bad = []
    for path, rec in records.items():
        config = rec["config"]
        again = cells.from_config(config).to_config()
        if json.dumps(again) != json.dumps(config) or not (cell_id(again) == path.stem == rec["cell"]):
            bad.append(path.relative_to(REPO))
    assert not bad, f"{len(bad)} stored cells do not round-trip, e.g. {bad[:3]}"


def test_each_kind_of_stored_cell_has_its_type(records):
    kinds = {}
    for path, rec in records.items():
        kinds.setdefault(path.parent.name, set()).add(type(cells.from_config(rec["config"])))
    assert kinds["tables-3-4"] == {RuntimeCell} and kinds["defence-learning"] == {LearningCell}
    assert kinds.get("audit", {AuditCell}) == {AuditCell}
    assert kinds.get("aggregation", {MembershipCell}) <= {MembershipCell, LearningCell}
    assert kinds.get("maml-variants", {LearningCell}) == {LearningCell}
    assert kinds.get("gradient-anatomy", {AnatomyCell}) == {AnatomyCell}
    mixed = ("tables-3-4", "defence-learning", "audit", "aggregation", "maml-variants", "gradient-anatomy")
    assert all(k == {MembershipCell} for name, k in kinds.items() if name not in mixed)



def test_the_replication_attacks_the_stage_each_seed_0_cell_chose(records):
    """catalog.SEED0_STAGES is what the stored stronger-tests cells chose on validation."""
    chosen = {}
    for path, rec in records.items():
        c = rec["config"]
        if path.parent.name == "stronger-tests" and c["target"] == "support":
            chosen[(c["dataset"], c["ways"], c["shots"])] = rec["result"]["paper"]["stage"]
    assert chosen == catalog.SEED0_STAGES


def test_the_catalog_finds_every_stored_paper_cell_and_no_other(records):
    stored = {(p.parent.name, p.stem) for p in records}
    wanted = {(e.name, cell_id(c.to_config())) for e in catalog.experiments("paper") for c in e.cells}
    missing = {w for w in wanted - stored if w[0] not in RUNNING}
    assert not missing, f"catalog cells without a stored result: {sorted(missing)[:5]}"
    assert not stored - wanted, f"stored cells the catalog does not know: {sorted(stored - wanted)[:5]}"


# ----- typed configurations ---------------------------------------------------------------

def test_membership_config_leaves_defaults_out_and_keeps_the_rest():
    c = catalog.membership(QUICK, "mnist", "support", 3, 1)
    d = c.to_config()
    assert list(d) == ["dataset", "target", "ways", "shots", "trials", "validation", "seed", "inner_lr",
                       "train_iterations", "stages", "attack"]
    assert d["stages"] == [300] and d["attack"] == AttackConfig().__dict__
    full = replace(c, maml=MAMLConfig(0.3, 2, True), learning=True, games=("paper",), net=NetConfig(hidden=8),
                   noise=RawNoise("query_data", 0.5), attacks=(AttackConfig(lr=0.03),))
    e = full.to_config()
    assert e["first_order"] is True and e["inner_steps"] == 2 and e["learning"] is True and e["games"] == ["paper"]
    assert e["noise"] == {"location": "query_data", "std": 0.5} and e["net"]["hidden"] == 8
    assert e["attacks"] == [AttackConfig(lr=0.03).__dict__]
    assert MembershipCell.from_config(json.loads(json.dumps(e))) == full
    assert full.shape == ("mnist", "support", 3, 1) and cells.shape_key(e) == full.shape


def test_learning_and_runtime_configs_round_trip():
    a = LearningCell("fashion-mnist", 3, 1, 2, MAMLConfig(0.1), 300, GaussianMechanismSpec(0.1, 1.0))
    b = LearningCell("mnist", 3, 1, 0, MAMLConfig(0.1, 2, True), 300, None, NetConfig(arch="mlp", hidden=8))
    r = RuntimeCell("support", 50, 10, 4, 0.1)
    for c in (a, b, r):
        d = json.loads(json.dumps(c.to_config()))
        assert cells.from_config(d) == c and type(cells.from_config(d)) is type(c)
    assert a.to_config()["noise"] == {"clip": 0.1, "noise_multiplier": 1.0}
    assert "inner_steps" not in a.to_config() and b.to_config()["first_order"] is True
    assert cells.KINDS == {"membership": MembershipCell, "learning": LearningCell, "runtime": RuntimeCell,
                           "audit": AuditCell, "anatomy": AnatomyCell}  # fmt: skip


def test_runtime_shapes_have_the_named_number_of_images():
    assert all(w * s == n for n, (w, s) in RUNTIME_SHAPES.items())


def _membership_config(**changes):
    return {**catalog.membership(QUICK, "mnist", "query", 3, 1).to_config(), **changes}


@pytest.mark.parametrize("config,error,match", [
    (_membership_config(colour="red"), ValueError, r"unknown keys \['colour'\]"),
    ({k: v for k, v in _membership_config().items() if k != "trials"}, ValueError, r"missing keys \['trials'\]"),
    (_membership_config(trials=5), ValueError, "trials"),
    (_membership_config(validation=3), ValueError, "validation"),
    (_membership_config(dataset="cifar10"), ValueError, "dataset"),
    (_membership_config(target="both"), ValueError, "target"),
    (_membership_config(ways=1), ValueError, "ways"),
    (_membership_config(stages=[]), ValueError, "stages"),
    (_membership_config(stages=[400]), ValueError, "stages"),  # beyond train_iterations=300
    (_membership_config(stages=[150]), ValueError, "stages"),  # no snapshot there
    (_membership_config(games=["paper", "paper"]), ValueError, "games"),
    (_membership_config(games=["loose"]), ValueError, "games"),
    (_membership_config(learning="yes"), TypeError, "learning"),
    (_membership_config(first_order="False"), TypeError, "first_order"),
    (_membership_config(inner_lr=0.0), ValueError, "inner_lr"),
    (_membership_config(attack={"lr": 0.1, "momentum": 0.9}), TypeError, "momentum"),
    (_membership_config(noise={"location": "everywhere", "std": 1.0}), ValueError, "location"),
    (_membership_config(noise={"std": 1.0}), ValueError, "defence spec"),
    (_membership_config(net={"arch": "conv", "norm": "batch"}), ValueError, "norm"),
])
def test_membership_cells_refuse_bad_configs(config, error, match):
    with pytest.raises(error, match=match):
        cells.from_config(config)


def _learning_config(**changes):
    return {**LearningCell("mnist", 3, 1, 0, MAMLConfig(0.1), 300).to_config(), **changes}


@pytest.mark.parametrize("config,error,match", [
    (_learning_config(colour="red"), ValueError, r"unknown keys \['colour'\]"),
    ({k: v for k, v in _learning_config().items() if k != "noise"}, ValueError, r"missing keys \['noise'\]"),
    (_learning_config(dataset="svhn"), ValueError, "dataset"),
    (_learning_config(seed=-1), ValueError, "seed"),
    (_learning_config(train_iterations=0), ValueError, "train_iterations"),
    ({"target": "query", "iterations": 50, "size": 4, "trials": 2, "inner_lr": 0.1}, ValueError, "size"),
    ({"target": "query", "iterations": 50, "size": 3, "trials": 2}, ValueError, r"missing keys \['inner_lr'\]"),
    ({"target": "query", "iterations": 0, "size": 3, "trials": 2, "inner_lr": 0.1}, ValueError, "iterations"),
])
def test_learning_and_runtime_cells_refuse_bad_configs(config, error, match):
    with pytest.raises(error, match=match):
        cells.from_config(config)


ANATOMY = AnatomyCell("mnist", 3, 1, 0, 0.4, 2, 1, 3, (0.1,), (1, 2), 0.1)


def test_anatomy_config_round_trips_and_refuses_bad_values():
    config = ANATOMY.to_config()
    assert json.loads(json.dumps(config)) == config and config["anatomy"] is True
    assert cells.from_config(config) == ANATOMY and cell_id(cells.from_config(config).to_config()) == cell_id(config)
    for field, value, match in [("sweep_lrs", (), "sweep_lrs"), ("sweep_lrs", (0.0,), "sweep_lrs"),
                                ("sweep_steps", (0,), "sweep_steps"), ("tasks", 1, "tasks"), ("every", 0, "every"),
                                ("inner_lr", float("nan"), "inner_lr"), ("dataset", "svhn", "dataset")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            replace(ANATOMY, **{field: value})
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        cells.from_config({**config, "colour": "red"})


def test_from_config_refuses_a_non_dict():
    with pytest.raises(TypeError, match="dict"):
        cells.from_config([("dataset", "mnist")])


def test_runs_dir_follows_mamlpriv_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMLPRIV_RUNS", str(tmp_path / "r"))
    assert cells.runs_dir() == tmp_path / "r"
    monkeypatch.delenv("MAMLPRIV_RUNS")
    assert cells.runs_dir() == Path.home() / ".cache" / "mamlpriv" / "runs"


# ----- computing cells on MNIST -------------------------------------------------------------

@pytest.mark.slow
def test_an_untrained_membership_cell_is_the_game_played_directly(mnist_test):
    """Stage 0 alone: no training; each game is evaluate_stages on the untrained attack
    network, the second game at the stage the first chose (up to float rounding: it takes
    over the first game's member trials and attacks its non-members in a smaller batch)."""
    from mamlpriv.membership import GameConfig, evaluate_stages
    from mamlpriv.models import forward, init_params

    cell = replace(catalog.membership(QUICK, "mnist", "query", 3, 1), trials=4, validation=4,
                   attack=AttackConfig(iterations=3))
    out = cell.compute()
    assert set(out) == {"paper", "strict", "learning"} and out["learning"] == []
    snaps, history = cell.snapshots()
    assert list(snaps) == [0] and history == []
    model = ATTACK_NET.build(3)
    assert all(torch.equal(snaps[0][k], v) for k, v in init_params(model, seed=0).items())
    for game in ("paper", "strict"):
        ref = evaluate_stages(forward(model), snaps, mnist_test, GameConfig("query", game, 3, 1, 4, 0),
                              cell.maml, cell.attack, 4)
        assert_results_close(out[game], ref)  # the strict game reuses the paper game's members


@pytest.mark.slow
def test_gradient_norms_match_a_per_task_loop(mnist_test):
    """MembershipCell.gradient_norms (vmapped, summed over parameter tensors) against
    each task's gradient computed on its own and flattened."""
    from mamlpriv.data import TaskSampler
    from mamlpriv.maml import task_gradient
    from mamlpriv.models import forward
    from mamlpriv.seeds import Stream, derive_seed

    cell = catalog.membership(QUICK, "mnist", "query", 3, 1)
    norms = cell.gradient_norms(tasks=3)
    snaps, history = cell.snapshots()
    assert list(norms) == [0] and history == [] and len(norms[0]) == 3
    f, p = forward(ATTACK_NET.build(3)), snaps[0]
    sampler = TaskSampler(mnist_test, 3, 1)
    for t, n in enumerate(norms[0]):
        task = sampler.sample(derive_seed(0, Stream.PROBE, t))
        g, _, _ = task_gradient(f, p, task.support_x, task.support_y, task.query_x, task.query_y, MAMLConfig(0.1))
        assert n == pytest.approx(float(torch.linalg.vector_norm(flat(g))), rel=1e-5) and n > 0


@pytest.mark.slow
def test_a_runtime_cell_times_its_attack(mnist_test):
    out = RuntimeCell("support", 2, 3, 2, 0.1).compute()
    assert out["seconds_per_trial"] > 0 and out["threads"] == torch.get_num_threads()


@pytest.mark.slow
def test_extra_scores_ride_on_the_same_trials_and_leave_ssim_unchanged(mnist_test):
    """A cell with scores=("profile", "ceiling", "combined") plays the very trials of the
    cell without them: the SSIM metrics and records are identical, and each extra score
    is reported with its test AUC, low-FPR TPRs and validation AUC; the cell's stored
    configuration gains a "scores" key (cells without it keep their ids)."""
    base = replace(catalog.membership(QUICK, "mnist", "support", 3, 1, stages=(0,)), trials=6, validation=6,
                   attack=AttackConfig(iterations=3), games=("strict",))
    cell = replace(base, scores=("profile", "ceiling", "combined"))
    assert "scores" not in base.to_config() and cells.from_config(cell.to_config()) == cell
    a, b = base.compute()["strict"], cell.compute()["strict"]
    assert a["metrics"] == b["metrics"] and [r["score"] for r in a["records"]] == [r["score"] for r in b["records"]]
    assert set(b["scores"]) == {"ssim", "profile", "ceiling", "combined"}
    assert b["scores"]["ceiling"]["auc"] == 1.0  # noise-free, both worlds known: perfect
    assert b["best_test"] in ("ssim", "profile", "combined")
    assert all({"score_profile", "score_ceiling", "score_combined"} <= set(r) for r in b["records"])
    combined = torch.tensor([r["score_combined"] for r in b["records"]])
    members = torch.tensor([r["member"] for r in b["records"]])
    assert roc_auc(combined, members) == pytest.approx(b["scores"]["combined"]["auc"])
    with pytest.raises(ValueError, match="'combined' needs 'profile'"):
        replace(base, scores=("combined",))
    with pytest.raises(ValueError, match="scores"):
        replace(base, scores=("lira",))


@pytest.mark.slow
def test_the_anatomy_cell_measures_the_maml_chapter_s_runs(mnist_test, monkeypatch, tmp_path):
    """Its rows are the analysis functions' numbers on the snapshots of the very runs the
    maml-variants cells train (one cache), every ``every`` iterations and the last."""
    from mamlpriv import analysis
    from mamlpriv.data import TaskSampler, stack_tasks
    from mamlpriv.seeds import Stream, derive_seed

    monkeypatch.setenv("MAMLPRIV_RUNS", str(tmp_path))
    out = ANATOMY.compute()
    assert [(r["run"], r["iteration"]) for r in out["decomposition"]] == [
        ("second-order", 0), ("second-order", 2), ("first-order", 0), ("first-order", 2)]  # fmt: skip
    assert len(out["swaps"]) == 4 * 6 and len(out["sweep"]) == 2 and len(out["attack_swaps"]) == 6
    assert len(list(tmp_path.iterdir())) == 2  # the two runs, trained once
    run = cells._train(ANATOMY.run(True), eval_tasks=200)  # loaded, not trained again
    assert LearningCell.compute(ANATOMY.run(True))["history"] == run.history
    sampler = TaskSampler(mnist_test, 3, 1)
    tasks = [sampler.sample(derive_seed(0, Stream.PROBE, i)) for i in range(3)]
    st = analysis.decomposition_stats(run.forward, run.snapshots[2], stack_tasks(tasks), MAMLConfig(0.4))
    assert out["decomposition"][3]["support_share"] == pytest.approx(float(st["support_share"].mean()), rel=1e-6)
    cos = analysis.swap_cosines(run.forward, run.snapshots[2], mnist_test, tasks, MAMLConfig(0.4, 1, True), seed=0)
    mine = {(r["set"], r["replacement"]): r["cosine"] for r in out["swaps"] if r["run"] == "first-order"
            and r["iteration"] == 2}  # fmt: skip
    assert mine == pytest.approx({k: float(v.mean()) for k, v in cos.items()}, rel=1e-6)
    last = [r for r in out["swaps"] if r["run"] == "first-order" and r["iteration"] == 2]
    assert all(r["per_task"] == pytest.approx(cos[(r["set"], r["replacement"])].tolist(), abs=1e-6) for r in last)
    assert all("per_task" not in r for r in out["swaps"] if r["iteration"] == 0)
    assert all(len(r["per_task"]) == 3 for r in out["attack_swaps"])

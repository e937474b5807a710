"""Meta-training: configuration, determinism and exact resumption, checkpoints that are
refused with a named file, one trainer per run folder, divergence named by iteration."""

import json
import threading

import pytest
import torch

import mamlpriv.training as training
from mamlpriv.defenses import gaussian_mechanism
from mamlpriv.maml import GaussianNoise, MAMLConfig, TaskNoise
from mamlpriv.models import NetConfig
from mamlpriv.training import CorruptCheckpoint, TrainConfig, load_checkpoint, meta_train, run_folder

MLP16 = NetConfig(arch="mlp", hidden=16)
SMALL = dict(net=MLP16, iterations=6, epoch_iterations=3, eval_tasks=10, meta_batch=2)


# ----- the configuration --------------------------------------------------------------------

def test_train_config_keeps_net_and_maml_typed_and_round_trips():
    cfg = TrainConfig(**SMALL, maml=MAMLConfig(0.2, 2, True), noise=gaussian_mechanism(1.0, 0.5))
    assert isinstance(cfg.net, NetConfig) and isinstance(cfg.maml, MAMLConfig)
    d = cfg.to_dict()
    assert d["net"] == {"arch": "mlp", "hidden": 16, "norm": "group", "pool": "max"}
    assert d["maml"] == {"inner_lr": 0.2, "inner_steps": 2, "first_order": True}
    back = TrainConfig.from_dict(json.loads(json.dumps(d)))  # through JSON, as the checkpoint stores it
    assert back == cfg and isinstance(back.net, NetConfig) and isinstance(back.maml, MAMLConfig)
    assert isinstance(back.noise, TaskNoise) and isinstance(back.noise.validation_grad, GaussianNoise)
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"meta_batch": 0}, ValueError, "meta_batch"), ({"iterations": 0}, ValueError, "iterations"),
    ({"epoch_iterations": 0}, ValueError, "epoch_iterations"), ({"eval_tasks": 1}, ValueError, "eval_tasks"),
    ({"outer_lr": 0.0}, ValueError, "outer_lr"), ({"outer_lr": float("inf")}, ValueError, "outer_lr"),
    ({"outer_lr": float("nan")}, ValueError, "outer_lr"), ({"ways": 1}, ValueError, "ways"),
    ({"seed": -1}, ValueError, "seed"), ({"eval_inner_steps": 0}, ValueError, "eval_inner_steps"),
    ({"iterations": 6.0}, TypeError, "iterations"),
    ({"net": {"arch": "mlp"}}, TypeError, "net"), ({"maml": 0.4}, TypeError, "maml"),
    ({"noise": None}, TypeError, "noise"),
])
def test_bad_train_config_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("make,error,match", [
    (lambda: MAMLConfig(inner_steps=0), ValueError, "inner_steps"),
    (lambda: MAMLConfig(inner_lr=0.0), ValueError, "inner_lr"),
    (lambda: MAMLConfig(first_order="False"), TypeError, "first_order"),
    (lambda: NetConfig(norm="batch"), ValueError, "norm"),
    (lambda: NetConfig(pool="avg"), ValueError, "pool"),
    (lambda: NetConfig(arch="resnet"), ValueError, "arch"),
    (lambda: NetConfig(hidden=0), ValueError, "hidden"),
])
def test_the_typed_parts_refuse_bad_values(make, error, match):
    """The inner loop and the network are checked by their own types (a TrainConfig can
    only hold checked ones)."""
    with pytest.raises(error, match=match):
        make()


def test_run_folder_depends_on_config(tmp_path):
    a, b = TrainConfig(**SMALL), TrainConfig(**{**SMALL, "seed": 1})
    assert run_folder(tmp_path, a) == run_folder(tmp_path, TrainConfig(**SMALL))
    assert run_folder(tmp_path, a) != run_folder(tmp_path, b)
    assert run_folder(tmp_path, a) != run_folder(tmp_path, TrainConfig(**SMALL, maml=MAMLConfig(0.4, 1, True)))
    assert run_folder(tmp_path, a).parent == tmp_path
    assert run_folder(tmp_path, TrainConfig(**SMALL, maml=MAMLConfig(0.4, 2, True))).name.startswith("mnist-5w1s-fo2-")


# ----- checkpoints: refused with the file named ------------------------------------------------

def fake_checkpoint(path, params=None, drop=None, cfg=None):
    """A checkpoint as meta_train writes it, without training: an MLP's parameters and a
    fresh Adam state at iteration 3."""
    cfg = cfg or TrainConfig(**SMALL)
    model = cfg.net.build(cfg.ways)
    p = params or {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam([v.clone().requires_grad_() for v in p.values()], lr=cfg.outer_lr)
    state = {"params": p, "optimizer": opt.state_dict(), "iteration": 3,
             "history": json.dumps([{"iteration": 0, "test_acc": 0.2}]), "config": json.dumps(cfg.to_dict())}
    if drop:
        del state[drop]
    torch.save(state, path)
    return path


def test_a_valid_checkpoint_loads(tmp_path):
    state = load_checkpoint(fake_checkpoint(tmp_path / "checkpoint.pt"))
    assert state["config"] == TrainConfig(**SMALL) and state["iteration"] == 3
    assert state["history"] == [{"iteration": 0, "test_acc": 0.2}]


def _corrupt(path, kind):
    data = path.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"this is not a checkpoint\n" * 20)


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage"])
def test_unreadable_checkpoints_name_the_file_and_say_it_is_safe_to_delete(tmp_path, kind):
    path = fake_checkpoint(tmp_path / "checkpoint.pt")
    _corrupt(path, kind)
    with pytest.raises(CorruptCheckpoint, match="safe to delete") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_an_incomplete_checkpoint_is_refused(tmp_path):
    path = fake_checkpoint(tmp_path / "checkpoint.pt", drop="optimizer")
    with pytest.raises(CorruptCheckpoint, match="incomplete") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "safe to delete" in str(err.value)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 1e30])
def test_a_checkpoint_with_non_finite_or_huge_parameters_is_refused(tmp_path, bad):
    model = MLP16.build(5)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    name = list(params)[1]
    params[name].view(-1)[0] = bad
    path = fake_checkpoint(tmp_path / "checkpoint.pt", params=params)
    with pytest.raises(CorruptCheckpoint, match=name) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "safe to delete" in str(err.value)


# ----- meta-training on MNIST -----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished SMALL run in a folder (shared by the tests that only read it)."""
    folder = tmp_path_factory.mktemp("trained")
    return folder, meta_train(TrainConfig(**SMALL), folder, progress=False)


@pytest.mark.slow
def test_training_is_deterministic_and_resumes_exactly(tmp_path, monkeypatch, trained):
    cfg = TrainConfig(**SMALL)
    folder, full = trained
    assert [h["iteration"] for h in full.history] == [0, 3, 6]
    lines = (folder / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 3, 6]

    # interrupt right after the checkpoint of iteration 3 has been written
    real_checkpoint = training._checkpoint

    def crash_after_epoch_1(run, it):
        real_checkpoint(run, it)
        if it == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_checkpoint", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        meta_train(cfg, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(training, "_checkpoint", real_checkpoint)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["iteration"] == 3
    resumed = meta_train(cfg, tmp_path / "resumed", progress=False)

    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k])
    assert sorted(resumed.snapshots) == [0, 3, 6]
    for it in (0, 3, 6):
        assert all(torch.equal(full.snapshots[it][k], resumed.snapshots[it][k]) for k in full.params)
    assert all(torch.equal(full.snapshots[6][k], full.params[k]) for k in full.params)
    assert not any(torch.equal(full.snapshots[0][k], full.snapshots[3][k]) for k in full.params)
    # a finished run is loaded, not retrained
    steps = []
    real_step = training._step
    monkeypatch.setattr(training, "_step", lambda run, it: steps.append(it))
    again = meta_train(cfg, folder, progress=False)
    monkeypatch.setattr(training, "_step", real_step)
    assert steps == [] and again.history == full.history and sorted(again.snapshots) == [0, 3, 6]
    strip = lambda hs: [{k: v for k, v in h.items() if k != "train_seconds"} for h in hs]  # noqa: E731
    assert strip(full.history) == strip(resumed.history)
    # without a folder: the same numbers, nothing written
    free = meta_train(cfg, progress=False)
    assert all(torch.equal(free.params[k], full.params[k]) for k in full.params)


@pytest.mark.slow
def test_resume_refuses_another_config(trained):
    folder, _ = trained
    with pytest.raises(ValueError, match="another config"):
        meta_train(TrainConfig(**SMALL, maml=MAMLConfig(0.1)), folder, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("noise", [None, "dp"])
def test_checkpoint_loads_weights_only_and_roundtrips_config(tmp_path, noise):
    extra = {"noise": gaussian_mechanism(1.0, 0.5)} if noise else {}
    cfg = TrainConfig(**SMALL, maml=MAMLConfig(0.4, 1, True), **extra)
    meta_train(cfg, tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["config"] == cfg and state["iteration"] == 6
    assert json.loads((tmp_path / "config.json").read_text())["maml"]["first_order"] is True


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage"])
def test_meta_train_refuses_a_corrupt_checkpoint_naming_it(tmp_path, trained, kind):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(trained[0], folder)
    _corrupt(folder / "checkpoint.pt", kind)
    with pytest.raises(CorruptCheckpoint, match="safe to delete") as err:
        meta_train(TrainConfig(**SMALL), folder, progress=False)
    assert str(folder / "checkpoint.pt") in str(err.value)


@pytest.mark.slow
def test_meta_train_refuses_a_snapshot_with_infinite_parameters(tmp_path, trained):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(trained[0], folder)
    snap = folder / "snapshots" / "iter-000003.pt"
    params = torch.load(snap, weights_only=True)
    first = next(iter(params))
    params[first].fill_(float("inf"))
    torch.save(params, snap)
    with pytest.raises(CorruptCheckpoint, match=first) as err:
        meta_train(TrainConfig(**SMALL), folder, progress=False)
    assert str(snap) in str(err.value)


@pytest.mark.slow
def test_two_trainers_of_one_run_folder_are_serialised(tmp_path, monkeypatch, trained):
    """Two meta_train calls of one config into one folder at once: the lock lets one
    train while the other waits, then loads the finished run; both agree."""
    steps = []
    real_step = training._step

    def counted(run, it):
        steps.append(it)
        return real_step(run, it)

    monkeypatch.setattr(training, "_step", counted)
    cfg = TrainConfig(**SMALL)
    results, errors = [None, None], []

    def train(i):
        try:
            results[i] = meta_train(cfg, tmp_path / "shared", progress=False)
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and all(r is not None for r in results)
    assert sorted(steps) == list(range(6))  # trained once: the second trainer found the finished run
    a, b = results
    assert a.history == b.history and all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    _, reference = trained
    assert all(torch.equal(a.params[k], reference.params[k]) for k in a.params)


@pytest.mark.slow
def test_a_non_finite_loss_stops_training_naming_the_iteration(tmp_path, monkeypatch):
    real = training.meta_gradient

    def poisoned(f, params, batch, cfg, noise=None):
        g, loss, acc = real(f, params, batch, cfg, noise)
        if len(calls) == 2:
            loss = loss * float("nan")
        calls.append(1)
        return g, loss, acc

    calls = []
    monkeypatch.setattr(training, "meta_gradient", poisoned)
    with pytest.raises(FloatingPointError, match="meta-iteration 2"):
        meta_train(TrainConfig(**SMALL), tmp_path / "run", progress=False)
    # the last good state is kept: the checkpoint before the divergence
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["iteration"] == 0


@pytest.mark.slow
def test_meta_training_improves_few_shot_accuracy():
    cfg = TrainConfig(net=NetConfig(arch="mlp", hidden=64), iterations=150, epoch_iterations=150, eval_tasks=100,
                      meta_batch=4)
    hist = meta_train(cfg, progress=False).history
    assert hist[0]["test_acc"] < 0.5 < hist[-1]["test_acc"] - 0.1

"""The device path: everything a function creates follows the device of its inputs.

The check runs on the ``meta`` device (shapes without data): an op that mixes a tensor
created on the CPU with the meta inputs raises, so a factory call that forgot the
device fails these tests. Random draws are made on the CPU and moved, so they are the
same numbers on every device.
"""

from __future__ import annotations

import pytest
import torch

from mamlpriv import devices
from mamlpriv.attacks import AttackConfig, _init_batch, _optimise, query_objective, support_objective
from mamlpriv.data import TaskBatch
from mamlpriv.maml import (
    GaussianNoise,
    MAMLConfig,
    TaskNoise,
    adapted_accuracy,
    draw_noise,
    meta_gradient,
    task_gradient,
    task_gradients,
)
from mamlpriv.metrics import flat_rows
from mamlpriv.models import ATTACK_NET, build_model, forward, init_params

META = torch.device("meta")


def _batch(tasks: int, ways: int, shots: int, device: torch.device, seed: int = 0) -> TaskBatch:
    gen = torch.Generator().manual_seed(seed)
    n = ways * shots
    y = torch.arange(ways).repeat_interleave(shots).expand(tasks, n).contiguous()
    xs = torch.rand((tasks, n, 1, 28, 28), generator=gen)
    xq = torch.rand((tasks, n, 1, 28, 28), generator=gen)
    return TaskBatch(xs, y, xq, y.clone()).to(device)


def test_resolve_reads_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(devices.ENV, raising=False)
    assert devices.resolve() == torch.device("cpu")
    assert devices.resolve("meta") == META
    monkeypatch.setenv(devices.ENV, "meta")
    assert devices.resolve() == META
    assert devices.resolve("cpu") == torch.device("cpu")


def test_resolve_refuses_unknown_and_missing_devices(monkeypatch):
    with pytest.raises(ValueError, match="device must name a torch device.*'gpu0'"):
        devices.resolve("gpu0")
    with pytest.raises(TypeError, match="device must be a str or torch.device, got int"):
        devices.resolve(0)  # type: ignore[arg-type]
    monkeypatch.setenv(devices.ENV, "nonsense")
    with pytest.raises(ValueError, match="MAMLPRIV_DEVICE must name a torch device"):
        devices.resolve()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            devices.resolve("cuda")


def test_a_mixed_device_op_raises_so_the_meta_checks_can_fail():
    with pytest.raises(RuntimeError):
        torch.zeros(3, device=META) + torch.ones(3)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("vectorize", [True, False])
def test_task_gradients_with_every_noise_hook_stay_on_the_device(first_order, vectorize):
    model = ATTACK_NET.build(3)
    p = devices.move(init_params(model), META)
    batch = _batch(2, 3, 1, META)
    noise = TaskNoise(*(GaussianNoise(0.1, 0.2) for _ in range(4)), clip=1.0)
    draw = draw_noise(noise, p, batch.support_x.shape[1:], batch.query_x.shape[1:], 2, torch.Generator(), tasks=2)
    assert all(t.device == META for t in flat_leaves(draw))
    cfg = MAMLConfig(0.4, 2, first_order)
    g, loss, acc = task_gradients(forward(model), p, batch, cfg, draw, vectorize=vectorize)
    assert {v.device for v in g.values()} | {loss.device, acc.device} == {META}
    mean, _, _ = meta_gradient(forward(model), p, batch, cfg, draw, vectorize=vectorize)
    assert mean["head.weight"].shape == p["head.weight"].shape and mean["head.weight"].device == META
    assert adapted_accuracy(forward(model), p, batch, cfg).device == META


def test_a_regression_loss_gives_a_nan_accuracy_on_the_device():
    model = build_model("mlp", 2, hidden=4, in_features=3)
    p = devices.move(init_params(model), META)
    x, y = torch.zeros(4, 3, device=META), torch.zeros(4, 2, device=META)
    g, _, acc = task_gradient(forward(model), p, x, y, x, y, MAMLConfig(), loss=torch.nn.functional.mse_loss)
    assert acc.device == META and all(v.device == META for v in g.values())


@pytest.mark.parametrize("init", ["uniform", "gaussian", "gray"])
def test_attack_batches_and_optimisation_stay_on_the_device(init):
    model = ATTACK_NET.build(3)
    f = forward(model)
    p = devices.move(init_params(model), META)
    batch = _batch(2, 3, 1, META)
    maml = MAMLConfig(0.4, 1, False)
    g, _, _ = task_gradients(f, p, batch, maml)
    target = flat_rows(g)
    slot = torch.tensor([0, 2], device=META)
    x = _init_batch(batch.query_x[:, 0], slot, 3, init, torch.Generator())
    assert x.device == META and x.shape == (2, 3, 1, 28, 28)
    cfg = AttackConfig(iterations=3, hold=1)
    for objective in (
        query_objective(f, p, target, batch.query_y, cfg.tv_weight),
        support_objective(f, p, target, batch.support_y, batch.query_x, batch.query_y, maml, cfg.tv_weight),
    ):
        out, hist = _optimise(objective, x, slot, cfg)
        assert out.device == META and hist.device == META and hist.shape == (2, 3)


def test_random_draws_are_the_same_numbers_whatever_the_device():
    noise = TaskNoise(support_data=GaussianNoise(0.0, 1.0))
    p = init_params(build_model("mlp", 2, hidden=4, in_features=3))
    shape = torch.Size((2, 3))
    a = draw_noise(noise, p, shape, shape, 1, torch.Generator().manual_seed(5))["support"]
    on_meta = draw_noise(noise, devices.move(p, META), shape, shape, 1, torch.Generator().manual_seed(5))["support"]
    assert on_meta.device == META
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(a, devices.draw(lambda: torch.randn(shape, generator=gen), torch.device("cpu")))


def test_move_keeps_the_structure():
    tree = {"a": torch.zeros(2), "b": [torch.ones(1), (torch.ones(1), 3)], "c": "text"}
    out = devices.move(tree, META)
    assert out["a"].device == META and out["b"][0].device == META and out["b"][1][0].device == META
    assert out["b"][1][1] == 3 and out["c"] == "text" and isinstance(out["b"][1], tuple)


def flat_leaves(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in flat_leaves(v)]
    return []


def test_the_cli_refuses_an_unknown_device(capsys):
    from mamlpriv.__main__ import main

    with pytest.raises(SystemExit):
        main(["run", "--profile", "quick", "--experiment", "tables-3-4", "--device", "gpu0", "--root", "/nonexistent"])
    assert "--device: device must name a torch device" in capsys.readouterr().err


@pytest.mark.slow
def test_meta_train_takes_a_device_and_writes_device_free_files(tmp_path, monkeypatch):
    from mamlpriv.training import TrainConfig, load_checkpoint, meta_train

    cfg = TrainConfig(net=ATTACK_NET, ways=2, iterations=2, epoch_iterations=1, eval_tasks=2, meta_batch=1)
    res = meta_train(cfg, out_dir=tmp_path, progress=False, device="cpu")
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(v.device.type == "cpu" for v in state["params"].values())
    monkeypatch.setenv(devices.ENV, "nonsense")
    with pytest.raises(ValueError, match="MAMLPRIV_DEVICE"):
        meta_train(cfg, out_dir=tmp_path, progress=False)
    assert torch.equal(res.params["head.weight"], meta_train(cfg, out_dir=tmp_path, device="cpu").params["head.weight"])

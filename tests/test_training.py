import json

import pytest
import torch

import mamlpriv.training as training
from mamlpriv.metrics import mean_ci95
from mamlpriv.training import TrainConfig, load_checkpoint, meta_train, run_folder

SMALL = dict(arch="mlp", hidden=16, iterations=6, epoch_iterations=3, eval_tasks=10, meta_batch=2)


def test_mean_ci95_matches_hand_computation():
    v = [0.2, 0.4, 0.9, 0.5]
    m = sum(v) / 4
    sd = (sum((x - m) ** 2 for x in v) / 3) ** 0.5
    mean, h = mean_ci95(v)
    assert mean == pytest.approx(m) and h == pytest.approx(1.96 * sd / 2)
    assert mean_ci95([0.7]) == (0.7, 0.0)
    with pytest.raises(ValueError):
        mean_ci95([])


def test_training_is_deterministic_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = TrainConfig(**SMALL)
    full = meta_train(cfg, tmp_path / "full", progress=False)
    assert [h["iteration"] for h in full.history] == [0, 3, 6]
    lines = (tmp_path / "full" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 3, 6]

    # interrupt right after the checkpoint of iteration 3 has been written
    real_write_log = training._write_log

    def crash_after_epoch_1(path, history):
        real_write_log(path, history)
        if history[-1]["iteration"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_write_log", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        meta_train(cfg, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(training, "_write_log", real_write_log)
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
    again = meta_train(cfg, tmp_path / "full", progress=False)
    assert again.history == full.history and sorted(again.snapshots) == [0, 3, 6]
    strip = lambda hs: [{k: v for k, v in h.items() if k != "train_seconds"} for h in hs]  # noqa: E731
    assert strip(full.history) == strip(resumed.history)


def test_resume_refuses_another_config(tmp_path):
    meta_train(TrainConfig(**SMALL), tmp_path, progress=False)
    with pytest.raises(ValueError, match="another config"):
        meta_train(TrainConfig(**{**SMALL, "inner_lr": 0.1}), tmp_path, progress=False)


@pytest.mark.parametrize("noise", [None, "dp"])
def test_checkpoint_loads_weights_only_and_roundtrips_config(tmp_path, noise):
    from mamlpriv.defenses import gaussian_mechanism

    extra = {"noise": gaussian_mechanism(1.0, 0.5)} if noise else {}
    cfg = TrainConfig(**SMALL, first_order=True, **extra)
    meta_train(cfg, tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["config"] == cfg and state["iteration"] == 6
    assert json.loads((tmp_path / "config.json").read_text())["first_order"] is True


def test_meta_training_improves_few_shot_accuracy():
    cfg = TrainConfig(arch="mlp", hidden=64, iterations=150, epoch_iterations=150, eval_tasks=100, meta_batch=4)
    hist = meta_train(cfg, progress=False).history
    assert hist[0]["test_acc"] < 0.5 < hist[-1]["test_acc"] - 0.1


@pytest.mark.parametrize("field,value", [("meta_batch", 0), ("iterations", 0), ("outer_lr", 0.0), ("inner_steps", 0),
                                         ("norm", "batch"), ("pool", "avg")])
def test_bad_train_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_run_folder_depends_on_config(tmp_path):
    a, b = TrainConfig(**SMALL), TrainConfig(**{**SMALL, "seed": 1})
    assert run_folder(tmp_path, a) == run_folder(tmp_path, TrainConfig(**SMALL))
    assert run_folder(tmp_path, a) != run_folder(tmp_path, b)
    assert run_folder(tmp_path, a).parent == tmp_path

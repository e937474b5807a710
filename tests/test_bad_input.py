"""Issue 16, "nothing silently wrong", in the core modules: bad input is refused with an
error that names the parameter (or the file), never accepted, hung on or misreported."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from mamlpriv.data import ImageDataset, TaskSampler, check_images, load_dataset
from mamlpriv.defenses import epsilon, gaussian_mechanism, noise_at
from mamlpriv.maml import GaussianNoise, MAMLConfig, TaskNoise
from mamlpriv.metrics import (
    auc_ci95,
    best_threshold,
    classification_at_threshold,
    mean_ci95,
    membership_metrics,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)
from mamlpriv.models import MLP, ConvNet, build_model

INF, NAN = float("inf"), float("nan")


# ----- 1. privacy accounting -------------------------------------------------------------

@pytest.mark.parametrize("sigma", [INF, NAN, -1.0])
def test_epsilon_refuses_a_non_finite_multiplier_without_calling_the_accountant(sigma, monkeypatch):
    from opacus.accountants import RDPAccountant

    def boom(*args, **kwargs):
        raise AssertionError("the accountant was called")

    monkeypatch.setattr(RDPAccountant, "step", boom)
    with pytest.raises(ValueError, match="noise_multiplier"):
        epsilon(sigma, 0.01, 10)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(sample_rate=0.0), ValueError, "sample_rate"), (dict(sample_rate=NAN), ValueError, "sample_rate"),
    (dict(sample_rate=1.01), ValueError, "sample_rate"), (dict(steps=0), ValueError, "steps"),
    (dict(steps=10.0), TypeError, "steps"), (dict(steps=True), TypeError, "steps"),
    (dict(delta=1.0), ValueError, "delta"), (dict(delta=NAN), ValueError, "delta"),
    (dict(accountant="gdp"), ValueError, "accountant"),
])
def test_epsilon_refuses_bad_arguments(kwargs, error, match):
    args = {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 10, **kwargs}
    with pytest.raises(error, match=match):
        epsilon(**args)


def test_epsilon_still_accepts_numpy_counts_and_zero_noise():
    assert epsilon(0.0, 0.1, 10) == math.inf
    assert epsilon(1.0, 0.01, np.int64(10)) == epsilon(1.0, 0.01, 10)


@pytest.mark.parametrize("call,error,match", [
    (lambda: noise_at("query_data", INF), ValueError, "std"), (lambda: noise_at("query_data", NAN), ValueError, "std"),
    (lambda: noise_at("query_data", "0.1"), TypeError, "std"),
    (lambda: noise_at("labels", 0.1), ValueError, "location"),
    (lambda: gaussian_mechanism(INF, 1.0), ValueError, "clip"),
    (lambda: gaussian_mechanism(1.0, INF), ValueError, "noise_multiplier"),
    (lambda: gaussian_mechanism(1.0, NAN), ValueError, "noise_multiplier"),
])
def test_noise_constructors_refuse_bad_levels(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----- 2. IDX files ------------------------------------------------------------------------

def _idx(magic: int, dims: list[int], payload: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def write_mnist(root, n=20, n_labels=None, labels=None, size=(28, 28), split="train", images_bytes=None):
    """A small MNIST in torchvision's raw layout: ``n`` images, labels ``i % 10``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    pixels = (np.arange(n * size[0] * size[1]) % 256).astype(np.uint8).tobytes()
    img = _idx(0x803, [n, *size], pixels) if images_bytes is None else images_bytes
    n_labels = n if n_labels is None else n_labels
    lab = np.arange(n_labels) % 10 if labels is None else np.asarray(labels)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(img)
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(0x801, [n_labels], lab.astype(np.uint8).tobytes()))
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def test_small_valid_idx_files_load(tmp_path):
    write_mnist(tmp_path, n=20)
    ds = load_dataset("mnist", "train", root=tmp_path, download=False)
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == torch.float32
    expected = torch.from_numpy((np.arange(20 * 784) % 256).astype(np.float32).reshape(20, 1, 28, 28)) / 255.0
    assert torch.equal(ds.images, expected) and ds.labels.tolist() == [i % 10 for i in range(20)]


@pytest.mark.slow
def test_loaded_mnist_is_what_torchvision_reads():
    from torchvision import datasets

    ds = load_dataset("mnist", "test")
    tv = datasets.MNIST(str(ds_root()), train=False, download=False)
    assert torch.equal(ds.images, tv.data.unsqueeze(1).to(torch.float32).div_(255.0))
    assert torch.equal(ds.labels, tv.targets.to(torch.long)) and ds.labels.dtype == torch.long


def ds_root():
    from mamlpriv.data import resolve_root

    return resolve_root()


def _assert_corrupt(err, path, *words):
    msg = str(err.value)
    assert str(path) in msg and "Delete it" in msg, msg
    assert "not found" not in msg and "download failed" not in msg, msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("download", [False, True])
def test_empty_images_file_is_named_as_corrupt(tmp_path, download):
    img, _ = write_mnist(tmp_path, images_bytes=b"")
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path, download=download)
    _assert_corrupt(err, img, "empty")


def test_truncated_images_file_is_named_as_corrupt(tmp_path):
    img, _ = write_mnist(tmp_path, n=20)
    img.write_bytes(img.read_bytes()[:-100])
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, img, "truncated")


def test_short_header_and_wrong_magic_are_named(tmp_path):
    img, lab = write_mnist(tmp_path, n=20)
    img.write_bytes(b"\x00\x00\x08\x03\x00")
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, img, "header")
    img.write_bytes(lab.read_bytes())  # a labels file where the images belong
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, img, "magic number")


def test_images_of_the_wrong_size_are_refused(tmp_path):
    img, _ = write_mnist(tmp_path, n=4, size=(32, 32))
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, img, "32x32", "28x28")


def test_more_images_than_labels_is_refused(tmp_path):
    _, lab = write_mnist(tmp_path, n=60000, n_labels=10000)
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, lab, "10000 labels", "60000 images")


def test_a_label_outside_0_to_9_is_refused(tmp_path):
    labels = np.arange(20) % 10
    labels[7] = 99
    _, lab = write_mnist(tmp_path, n=20, labels=labels)
    with pytest.raises(ValueError) as err:
        load_dataset("mnist", "train", root=tmp_path)
    _assert_corrupt(err, lab, "99", "index 7")


def test_missing_files_are_still_reported_as_missing(tmp_path):
    write_mnist(tmp_path, split="test")  # only the test split is there
    assert len(load_dataset("mnist", "test", root=tmp_path, download=False)) == 20
    with pytest.raises(FileNotFoundError, match="MAMLPRIV_DATA"):
        load_dataset("mnist", "train", root=tmp_path, download=False)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(download="False"), TypeError, "download"), (dict(name=3), TypeError, "dataset"),
    (dict(split="valid"), ValueError, "split"),
])
def test_load_dataset_refuses_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_dataset(**{"name": "mnist", "split": "train", "root": tmp_path, **kwargs})


# ----- 3. task sampler ---------------------------------------------------------------------

def test_sampler_refuses_duplicate_classes(tiny_dataset):
    with pytest.raises(ValueError, match=r"classes must be distinct.*repeated: \[0\]"):
        TaskSampler(tiny_dataset, ways=2, shots=1, classes=[0, 0, 0, 1])


def test_sampler_counts_accept_numpy_integers_only(tiny_dataset):
    s = TaskSampler(tiny_dataset, ways=np.int64(2), shots=np.int64(1), classes=[np.int64(0), 1, 2])
    ref = TaskSampler(tiny_dataset, ways=2, shots=1, classes=[0, 1, 2])
    assert type(s.ways) is int and type(s.shots) is int and s.classes == [0, 1, 2]
    a, b = s.sample(np.int64(5)), ref.sample(5)
    assert torch.equal(a.support_idx, b.support_idx) and a.classes == b.classes
    for kwargs, error, match in [
        (dict(ways=True, shots=1), TypeError, "ways"), (dict(ways=2.0, shots=1), TypeError, "ways"),
        (dict(ways=2, shots=True), TypeError, "shots"), (dict(ways=2, shots=1.5), TypeError, "shots"),
        (dict(ways=11, shots=1), ValueError, "ways must be at most"), (dict(ways=2, shots=0), ValueError, "shots"),
        (dict(ways=2, shots=1, classes=[0, -1]), ValueError, "classes"),
        (dict(ways=2, shots=1, classes=[0, 1.0]), TypeError, "classes"),
    ]:
        with pytest.raises(error, match=match):
            TaskSampler(tiny_dataset, **kwargs)
    with pytest.raises(TypeError, match="seed"):
        ref.sample(1.5)


# ----- 4. MAML configuration ---------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda: GaussianNoise(std=INF), ValueError, "std"), (lambda: GaussianNoise(std=NAN), ValueError, "std"),
    (lambda: GaussianNoise(mean=NAN), ValueError, "mean"), (lambda: GaussianNoise(mean=-INF), ValueError, "mean"),
    (lambda: GaussianNoise(std="0.1"), TypeError, "std"),
    (lambda: MAMLConfig(inner_lr=INF), ValueError, "inner_lr"),
    (lambda: MAMLConfig(inner_lr=NAN), ValueError, "inner_lr"),
    (lambda: MAMLConfig(inner_lr=-0.1), ValueError, "inner_lr"),
    (lambda: MAMLConfig(first_order="False"), TypeError, "first_order"),
    (lambda: MAMLConfig(first_order=0), TypeError, "first_order"),
    (lambda: MAMLConfig(inner_steps=1.0), TypeError, "inner_steps"),
    (lambda: MAMLConfig(inner_steps=True), TypeError, "inner_steps"),
    (lambda: MAMLConfig(inner_steps=0), ValueError, "inner_steps"),
    (lambda: TaskNoise(clip=INF), ValueError, "clip"), (lambda: TaskNoise(clip=0.0), ValueError, "clip"),
    (lambda: TaskNoise(clip=NAN), ValueError, "clip"),
    (lambda: TaskNoise(query_data={"mean": 0.0, "std": 0.1}), TypeError, "query_data"),
])
def test_maml_configs_refuse_bad_values(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_maml_configs_store_plain_python_types():
    cfg = MAMLConfig(np.float32(0.5), np.int64(2), np.bool_(True))
    assert type(cfg.inner_lr) is float and type(cfg.inner_steps) is int and cfg.inner_steps == 2
    assert cfg.first_order is True
    noise = TaskNoise(validation_grad=GaussianNoise(np.float32(0.0), np.float32(0.5)), clip=np.float32(1.0))
    json.dumps(dataclasses.asdict(cfg)), json.dumps(dataclasses.asdict(noise))
    # plain values are kept exactly as given (stored configurations do not change)
    assert dataclasses.asdict(MAMLConfig(0.4, 1, False)) == {"inner_lr": 0.4, "inner_steps": 1, "first_order": False}
    assert dataclasses.asdict(GaussianNoise(0, 1)) == {"mean": 0, "std": 1}


def test_adapted_accuracy_steps_must_be_a_count():
    from mamlpriv.data import TaskBatch
    from mamlpriv.maml import adapted_accuracy
    from mamlpriv.models import forward, init_params

    model = MLP(2, hidden=3, layers=1, in_features=4)
    x = torch.rand(1, 2, 1, 2, 2)
    y = torch.tensor([[0, 1]])
    with pytest.raises(TypeError, match="steps"):
        adapted_accuracy(forward(model), init_params(model), TaskBatch(x, y, x, y), MAMLConfig(0.1), steps=1.0)


# ----- 5. models ---------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda: MLP(3, hidden=0), ValueError, "hidden"), (lambda: MLP(3, layers=-1), ValueError, "layers"),
    (lambda: MLP(1), ValueError, "ways"), (lambda: MLP(3.0), TypeError, "ways"),
    (lambda: MLP(3, hidden=True), TypeError, "hidden"), (lambda: MLP(3, in_features=0), ValueError, "in_features"),
    (lambda: ConvNet(3, hidden=0), ValueError, "hidden"), (lambda: ConvNet(True), TypeError, "ways"),
    (lambda: ConvNet(1), ValueError, "ways"), (lambda: ConvNet(3, hidden=6), ValueError, "hidden"),
    (lambda: ConvNet(3, image_size=8), ValueError, "image_size"),
    (lambda: ConvNet(3, channels=0), ValueError, "channels"),
    (lambda: ConvNet(3, norm="batch"), ValueError, "norm"), (lambda: build_model("cnn", 3), ValueError, "arch"),
])
def test_models_refuse_bad_sizes(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_models_accept_numpy_sizes():
    assert MLP(np.int64(3), hidden=np.int64(4), layers=np.int64(1)).net[-1].out_features == 3
    assert ConvNet(np.int64(3), hidden=np.int64(8)).head.out_features == 3
    assert ConvNet(3, hidden=8, image_size=8, pool="stride").head.in_features == 8  # 8 -> 4 -> 2 -> 1 -> 1


# ----- 6. metrics --------------------------------------------------------------------------

SCORE_FUNCS = [
    lambda s, y: roc_auc(s, y), lambda s, y: best_threshold(s, y), lambda s, y: roc_curve(s, y),
    lambda s, y: classification_at_threshold(s, y, 0.5), lambda s, y: membership_metrics(s, y, 0.5),
    lambda s, y: tpr_at_fpr(s, y, 0.1), lambda s, y: auc_ci95(s, y, n_boot=5),
]


@pytest.mark.parametrize("func", SCORE_FUNCS)
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_metrics_refuse_non_finite_scores(func, bad):
    with pytest.raises(ValueError, match="scores must be finite"):
        func([0.9, bad, 0.1, 0.4], [1, 1, 0, 0])


@pytest.mark.parametrize("func", SCORE_FUNCS)
@pytest.mark.parametrize("labels", [[1, 2, 0, 0], [1, 0.5, 0, 0], [1, -1, 0, 0], [1, NAN, 0, 0]])
def test_metrics_refuse_labels_other_than_0_1(func, labels):
    with pytest.raises(ValueError, match="labels must be 0/1"):
        func([0.9, 0.8, 0.1, 0.4], labels)


def test_metrics_accept_bool_and_0_1_labels_alike():
    s = [0.9, 0.8, 0.1, 0.4]
    assert roc_auc(s, [True, True, False, False]) == roc_auc(s, [1, 1, 0, 0]) == roc_auc(s, [1.0, 1.0, 0.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="threshold"):
        membership_metrics(s, [1, 1, 0, 0], NAN)


def test_mean_ci95_needs_two_finite_values():
    with pytest.raises(ValueError, match="needs at least 2 values, got 1"):
        mean_ci95([0.7])
    with pytest.raises(ValueError, match="got 0"):
        mean_ci95([])
    with pytest.raises(ValueError, match="values must be finite"):
        mean_ci95([0.5, NAN])
    assert mean_ci95([0.5, 0.7])[0] == pytest.approx(0.6)


# ----- 7. images at the boundary -----------------------------------------------------------

@pytest.mark.parametrize("x,error,match", [
    (torch.full((2, 1, 28, 28), NAN), ValueError, "1568 NaN"),
    (torch.rand(2, 1, 28, 28).index_put_((torch.tensor([0]),), torch.tensor(INF)), ValueError, "infinite"),
    (torch.rand(2, 1, 28, 28) * 255, ValueError, "divide by 255"),
    (torch.rand(2, 1, 28, 28) - 0.5, ValueError, r"\[0, 1\]"),
    ((torch.rand(2, 1, 28, 28) * 255).to(torch.uint8), TypeError, "floating"),
    (torch.rand(2, 28, 28), ValueError, "4 dimensions"), (np.zeros((2, 1, 28, 28)), TypeError, "torch.Tensor"),
])
def test_check_images_names_the_parameter(x, error, match):
    with pytest.raises(error, match=match) as err:
        check_images("support_x", x)
    assert "support_x" in str(err.value)


def test_check_images_accepts_valid_images():
    x = torch.rand(3, 2, 1, 28, 28, dtype=torch.float64)
    assert check_images("x", x) is x and check_images("x", torch.zeros(0, 1, 28, 28)) is not None


def test_image_dataset_refuses_bad_images_and_labels():
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    for images, labels, error, match in [
        (x * 255, y, ValueError, "images"), (x.clone().fill_(NAN), y, ValueError, "images"),
        (x, y.float(), TypeError, "labels"), (x, y.bool(), TypeError, "labels"), (x, y[:3], ValueError, "labels"),
        (x, torch.tensor([0, 1, -1, 1]), ValueError, "labels"), (x[None], y, ValueError, "images"),
        (x[:0], y[:0], ValueError, "images"), (x, [0, 1, 0, 1], TypeError, "labels"),
    ]:
        with pytest.raises(error, match=match):
            ImageDataset("mine", "train", images, labels)


def test_sampler_checks_images_changed_after_construction(tiny_dataset):
    tiny_dataset.images.mul_(255)  # in place: the dataset itself cannot notice
    with pytest.raises(ValueError, match="dataset.images"):
        TaskSampler(tiny_dataset, ways=2, shots=1)

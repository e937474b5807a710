
import pytest
import torch

from mamlpriv.data import TaskSampler, load_dataset, resolve_root
from mamlpriv.seeds import derive_seed


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MAMLPRIV_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root() == tmp_path / "env"
    monkeypatch.delenv("MAMLPRIV_DATA")
    assert resolve_root().name == "data" and ".cache" in str(resolve_root())


@pytest.mark.slow
@pytest.mark.parametrize("name,n_train,mean", [("mnist", 60000, 0.1307), ("fashion-mnist", 60000, 0.2860)])
def test_real_datasets_load(name, n_train, mean):
    train = load_dataset(name, "train")
    test = load_dataset(name, "test")
    assert train.images.shape == (n_train, 1, 28, 28) and len(test) == 10000
    assert train.images.dtype == torch.float32
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert abs(float(train.images.mean()) - mean) < 5e-4
    assert train.classes == list(range(10))


def test_missing_dataset_says_where_files_go(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", "train", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "MAMLPRIV_DATA" in msg


def test_bad_dataset_and_split():
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "val")


def test_task_is_disjoint_balanced_and_consistent(tiny_dataset):
    sampler = TaskSampler(tiny_dataset, ways=3, shots=2, classes=[0, 1, 2])  # class 3 is too small
    for seed in range(20):
        t = sampler.sample(seed)
        assert t.support_x.shape == (6, 1, 28, 28) and t.query_x.shape == (6, 1, 28, 28)
        assert set(t.support_idx.tolist()).isdisjoint(t.query_idx.tolist())
        assert len(set(t.classes)) == 3 and set(t.classes) <= {0, 1, 2}
        for y in (t.support_y, t.query_y):
            assert torch.equal(torch.bincount(y, minlength=3), torch.full((3,), 2))
        # labels 0..ways-1 map to the dataset classes in t.classes, and x are those images
        for idx, x, y in ((t.support_idx, t.support_x, t.support_y), (t.query_idx, t.query_x, t.query_y)):
            assert torch.equal(tiny_dataset.images[idx], x)
            assert tiny_dataset.labels[idx].tolist() == [t.classes[j] for j in y.tolist()]


def test_task_is_determined_by_seed(tiny_dataset):
    sampler = TaskSampler(tiny_dataset, ways=2, shots=1)
    a, b = sampler.sample(7), sampler.sample(7)
    assert torch.equal(a.support_idx, b.support_idx) and torch.equal(a.query_idx, b.query_idx)
    assert a.classes == b.classes
    draws = {tuple(sampler.sample(s).support_idx.tolist() + sampler.sample(s).query_idx.tolist()) for s in range(30)}
    assert len(draws) > 10  # different seeds give different tasks


@pytest.mark.slow
def test_real_task_sampler_on_mnist(mnist_test):
    t = TaskSampler(mnist_test, ways=5, shots=3).sample(derive_seed(0, 1))
    assert t.query_x.shape == (15, 1, 28, 28)
    assert set(t.support_idx.tolist()).isdisjoint(t.query_idx.tolist())


@pytest.mark.parametrize(
    "ways,shots,match",
    [(5, 1, "ways must be at most"), (1, 1, "ways must be an integer >= 2"), (2, 0, "shots must be"),
     (2, -1, "shots must be"), (2, 2, "shots must be at most 1")],
)
def test_sampler_rejects_bad_arguments(tiny_dataset, ways, shots, match):
    # class 3 holds 3 images, so shots=2 (4 images per class) cannot be served
    with pytest.raises(ValueError, match=match):
        TaskSampler(tiny_dataset, ways=ways, shots=shots)


def test_sampler_accepts_largest_possible_shots(tiny_dataset):
    t = TaskSampler(tiny_dataset, ways=4, shots=1).sample(0)
    assert t.support_x.shape[0] == 4

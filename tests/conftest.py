"""Shared fixtures and helpers. Real data come from $MAMLPRIV_DATA, defaulting to
../shared/data beside the checkout (where CI puts it); every test that loads MNIST or
meta-trains is marked ``slow`` (``pytest -m "not slow"`` runs without the data).

Helpers are plain functions here; test modules import them with ``from conftest import ...``."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MAMLPRIV_DATA", str(REPO.parent / "shared" / "data"))

from mamlpriv.data import ImageDataset  # noqa: E402
from mamlpriv.models import ATTACK_NET, forward, init_params  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """A test that uses the MNIST fixture needs the data: it is slow whether or not it says so."""
    for item in items:
        if "mnist_test" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _runs_in_a_temporary_folder(tmp_path_factory):
    """Cells cache their meta-training runs under $MAMLPRIV_RUNS: never the user's cache."""
    old = os.environ.get("MAMLPRIV_RUNS")
    os.environ["MAMLPRIV_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    yield
    if old is None:
        os.environ.pop("MAMLPRIV_RUNS", None)
    else:
        os.environ["MAMLPRIV_RUNS"] = old


def noise_dataset(counts, seed: int = 0, name: str = "tiny") -> ImageDataset:
    """``counts[c]`` images of 1x28x28 uniform noise of class ``c``."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    images = torch.rand(labels.numel(), 1, 28, 28, generator=gen)
    return ImageDataset(name, "train", images, labels)


@pytest.fixture
def tiny_dataset() -> ImageDataset:
    """4 classes with 6, 6, 6 and 3 images of 1x28x28 noise."""
    return noise_dataset([6, 6, 6, 3])


@pytest.fixture(scope="session")
def mnist_test() -> ImageDataset:
    """The MNIST test split (10,000 images), loaded once per session."""
    from mamlpriv.data import load_dataset

    return load_dataset("mnist", "test")


# ----- helpers ---------------------------------------------------------------------------

def flat(params: dict) -> torch.Tensor:
    """A parameter dict as one vector, in its key order (an oracle independent of the library's)."""
    return torch.cat([v.reshape(-1) for v in params.values()])


def unflat(vec: torch.Tensor, like: dict) -> dict:
    """The inverse of :func:`flat`: ``vec`` cut into tensors shaped like ``like``'s entries."""
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vec[i : i + v.numel()].view_as(v)
        i += v.numel()
    return out


def attack_net(ways: int = 3, seed: int = 0, **changes):
    """``(forward, params)`` of the untrained attack network (``ATTACK_NET`` with ``changes``)."""
    from dataclasses import replace

    model = replace(ATTACK_NET, **changes).build(ways)
    return forward(model), init_params(model, seed=seed)


def assert_results_close(a, b, rel: float = 1e-6, path: str = "result") -> None:
    """Two result structures (dicts, lists, numbers, strings) equal up to float rounding:
    numbers within ``rel`` (relative, absolute below 1), NaN equal to NaN, all else exact."""
    import math

    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_results_close(a[k], b[k], rel, f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_results_close(x, y, rel, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= rel * max(1.0, abs(a), abs(b)), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"

"""Data: MNIST / Fashion-MNIST as tensors, and a seeded few-shot task sampler.

The data root is resolved in this order: the ``root`` argument, the environment
variable ``MAMLPRIV_DATA``, then ``~/.cache/mamlpriv/data``. Files are read in the
layout of ``torchvision.datasets.MNIST(root)`` (``<root>/MNIST/raw/*-ubyte``). If they
are missing, torchvision's download is tried (unless ``download=False``); if that
fails too (no network), a ``FileNotFoundError`` says where the files belong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

ENV_VAR = "MAMLPRIV_DATA"
DEFAULT_ROOT = Path("~/.cache/mamlpriv/data").expanduser()
DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
SPLITS = ("train", "test")


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: the argument, then ``$MAMLPRIV_DATA``, then ``~/.cache/mamlpriv/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT


def _canonical_name(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key in ("fashionmnist", "fmnist"):
        key = "fashion-mnist"
    if key not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return key


@dataclass(frozen=True)
class ImageDataset:
    """Images ``(N, 1, 28, 28)`` float32 in [0, 1] and integer labels ``(N,)``."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.numel()

    @property
    def classes(self) -> list[int]:
        return sorted(int(c) for c in torch.unique(self.labels))

    def class_indices(self) -> dict[int, torch.Tensor]:
        """Indices of each class's images, in dataset order."""
        return {c: torch.nonzero(self.labels == c).flatten() for c in self.classes}


_CACHE: dict[tuple[str, str, str], ImageDataset] = {}


def load_dataset(
    name: str = "mnist",
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageDataset:
    """Load MNIST or Fashion-MNIST (``name`` in ``{"mnist", "fashion-mnist"}``).

    ``split`` is ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    Loaded sets are cached per process.
    """
    key = _canonical_name(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    base = resolve_root(root)
    cache_key = (key, split, str(base.resolve()))
    if cache_key in _CACHE:
        return _CACHE[cache_key]

    from torchvision import datasets

    cls = getattr(datasets, DATASETS[key])
    try:
        ds = cls(str(base), train=(split == "train"), download=False)
    except RuntimeError as missing:
        if download:
            try:
                ds = cls(str(base), train=(split == "train"), download=True)
            except Exception as exc:  # no network, mirror down, ...
                raise FileNotFoundError(_missing_message(key, base, f"download failed: {exc}")) from exc
        else:
            raise FileNotFoundError(_missing_message(key, base, str(missing))) from missing
    images = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = ds.targets.to(torch.long)
    out = ImageDataset(name=key, split=split, images=images, labels=labels)
    _CACHE[cache_key] = out
    return out


def _missing_message(key: str, base: Path, detail: str) -> str:
    folder = base / DATASETS[key] / "raw"
    return (
        f"{DATASETS[key]} not found under {base}. Put the uncompressed IDX files "
        f"(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        f"t10k-labels-idx1-ubyte) in {folder}, or point ${ENV_VAR} (or the root argument) "
        f"at a folder that holds {DATASETS[key]}/raw/; on a machine with internet access, "
        f"load_dataset(..., download=True) fetches them there. ({detail})"
    )


@dataclass(frozen=True)
class Task:
    """One few-shot task. Support and query each hold ``shots`` images of each of
    ``ways`` classes: ``x`` is ``(ways*shots, 1, 28, 28)``, ``y`` is ``(ways*shots,)``
    with labels ``0..ways-1``. ``classes[j]`` is the dataset class behind task label j;
    ``support_idx`` / ``query_idx`` are the dataset indices of the images."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: tuple[int, ...]
    support_idx: torch.Tensor
    query_idx: torch.Tensor

    @property
    def ways(self) -> int:
        return len(self.classes)

    @property
    def shots(self) -> int:
        return self.support_y.numel() // self.ways


@dataclass(frozen=True)
class TaskBatch:
    """Tasks of equal shape stacked on a leading task axis: ``support_x`` is
    ``(T, ways*shots, 1, 28, 28)`` and so on."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def task(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i]


def stack_tasks(tasks: list[Task]) -> TaskBatch:
    """Stack tasks of equal ways and shots on a leading axis."""
    return TaskBatch(
        torch.stack([t.support_x for t in tasks]),
        torch.stack([t.support_y for t in tasks]),
        torch.stack([t.query_x for t in tasks]),
        torch.stack([t.query_y for t in tasks]),
    )


class TaskSampler:
    """Seeded sampler of ``ways``-way ``shots``-shot tasks from one dataset.

    Each task draws ``ways`` distinct classes, then ``2*shots`` distinct images of
    each class, split into support (first ``shots``) and query (last ``shots``), so
    support and query are disjoint. Labels are 0..ways-1 in the (random) order the
    classes were drawn. ``sample(seed)`` is a pure function of the seed.
    """

    def __init__(self, dataset: ImageDataset, ways: int, shots: int, classes: list[int] | None = None):
        available = dataset.classes if classes is None else sorted(classes)
        if not isinstance(ways, int) or ways < 2:
            raise ValueError(f"ways must be an integer >= 2, got {ways!r}")
        if ways > len(available):
            raise ValueError(
                f"ways must be at most the number of classes ({len(available)}) of {dataset.name}, got {ways}"
            )
        if not isinstance(shots, int) or shots < 1:
            raise ValueError(f"shots must be an integer >= 1, got {shots!r}")
        per_class = dataset.class_indices()
        missing = [c for c in available if c not in per_class]
        if missing:
            raise ValueError(f"classes {missing} do not occur in {dataset.name}/{dataset.split}")
        smallest = min(per_class[c].numel() for c in available)
        if 2 * shots > smallest:
            raise ValueError(
                f"shots must be at most {smallest // 2}: a task needs 2*shots images per class "
                f"(support and query) and the smallest class of {dataset.name}/{dataset.split} "
                f"holds {smallest}, got shots={shots}"
            )
        self.dataset = dataset
        self.ways = ways
        self.shots = shots
        self.classes = available
        self._per_class = [per_class[c] for c in available]

    def sample(self, seed: int | torch.Generator) -> Task:
        gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
        pick = torch.randperm(len(self.classes), generator=gen)[: self.ways]
        s, w = self.shots, self.ways
        sup, qry = [], []
        for j in pick.tolist():
            idx = self._per_class[j]
            chosen = idx[torch.randperm(idx.numel(), generator=gen)[: 2 * s]]
            sup.append(chosen[:s])
            qry.append(chosen[s:])
        sup_idx, qry_idx = torch.cat(sup), torch.cat(qry)
        y = torch.arange(w).repeat_interleave(s)
        images = self.dataset.images
        return Task(
            support_x=images[sup_idx],
            support_y=y,
            query_x=images[qry_idx],
            query_y=y.clone(),
            classes=tuple(self.classes[j] for j in pick.tolist()),
            support_idx=sup_idx,
            query_idx=qry_idx,
        )

    def sample_batch(self, seeds: list[int]) -> TaskBatch:
        """One task per seed, stacked."""
        return stack_tasks([self.sample(s) for s in seeds])


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (e.g. ``(seed, iteration, task)``)."""
    import numpy as np

    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)

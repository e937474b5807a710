"""Data: MNIST / Fashion-MNIST as tensors, and a seeded few-shot task sampler.

The data root is resolved in this order: the ``root`` argument, the environment
variable ``MAMLPRIV_DATA``, then ``~/.cache/mamlpriv/data``. Files are read in the
layout of ``torchvision.datasets.MNIST(root)`` (``<root>/MNIST/raw/*-ubyte``). If they
are missing, torchvision's download is tried (unless ``download=False``); if that
fails too (no network), a ``FileNotFoundError`` says where the files belong. Files that
exist are checked as they are read (magic number, 28x28 header, size, as many labels as
images, labels 0..9): a corrupt or truncated file is a ``ValueError`` that names it.

Images given to the library (:class:`ImageDataset`, :class:`TaskSampler`) must be
floating tensors with values in [0, 1] (:func:`check_images`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checks
from .seeds import derive_seed  # noqa: F401  (re-exported: the task sampler's seeds)

ENV_VAR = "MAMLPRIV_DATA"
DEFAULT_ROOT = Path("~/.cache/mamlpriv/data").expanduser()
DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
SPLITS = ("train", "test")
NUM_CLASSES = 10  # MNIST and Fashion-MNIST: labels 0..9
IMAGE_SIZE = 28
_IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: the argument, then ``$MAMLPRIV_DATA``, then ``~/.cache/mamlpriv/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT


def _canonical_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a string, one of {sorted(DATASETS)}, got {name!r} ({type(name).__name__})")
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

    def __post_init__(self) -> None:
        check_images("images", self.images)
        if self.images.dim() != 4 or self.images.shape[0] == 0:
            raise ValueError(
                f"images must have shape (N, channels, height, width) with N >= 1, got shape {tuple(self.images.shape)}"
            )
        lab = self.labels
        if not isinstance(lab, torch.Tensor):
            raise TypeError(f"labels must be a torch.Tensor of integer class numbers, got {type(lab).__name__}")
        if lab.dtype == torch.bool or lab.is_floating_point() or lab.is_complex():
            raise TypeError(f"labels must be an integer tensor (class numbers), got dtype {lab.dtype}")
        if lab.dim() != 1 or lab.numel() != self.images.shape[0]:
            raise ValueError(
                f"labels must have shape (N,) with N = {self.images.shape[0]} (one per image), "
                f"got shape {tuple(lab.shape)}"
            )
        low = int(lab.min())
        if low < 0:
            raise ValueError(f"labels must be class numbers >= 0, got {low}")

    def __len__(self) -> int:
        return self.labels.numel()

    @property
    def classes(self) -> list[int]:
        return sorted(int(c) for c in torch.unique(self.labels))

    def class_indices(self) -> dict[int, torch.Tensor]:
        """Indices of each class's images, in dataset order."""
        return {c: torch.nonzero(self.labels == c).flatten() for c in self.classes}


def check_images(name: str, x: torch.Tensor) -> torch.Tensor:
    """``x`` if it is a floating tensor of images ``(..., channels, height, width)`` (at
    least 4-D: a leading image axis) with every value finite and in [0, 1]; else a
    ``TypeError`` / ``ValueError`` naming ``name``. One pass over the data."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        hint = " (divide 8-bit pixels by 255)" if x.dtype == torch.uint8 else ""
        raise TypeError(f"{name} must be a floating tensor with values in [0, 1], got dtype {x.dtype}{hint}")
    if x.dim() < 4:
        raise ValueError(
            f"{name} must have shape (..., channels, height, width) with at least 4 dimensions "
            f"(e.g. (N, 1, 28, 28)), got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        return x
    with torch.no_grad():
        lo_t, hi_t = torch.aminmax(x.detach())  # NaN propagates: one pass finds NaN, inf and range
        lo, hi = float(lo_t), float(hi_t)
        if lo >= 0.0 and hi <= 1.0:
            return x
        bad = ~torch.isfinite(x.detach())
        if bool(bad.any()):
            n_nan = int(torch.isnan(x.detach()).sum())
            raise ValueError(
                f"{name} must be finite with values in [0, 1], got {n_nan} NaN and "
                f"{int(bad.sum()) - n_nan} infinite values"
            )
    hint = " (pixels in 0..255: divide by 255)" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else ""
    raise ValueError(f"{name} must have values in [0, 1], got values in [{lo:g}, {hi:g}]{hint}")


_CACHE: dict[tuple[str, str, str], ImageDataset] = {}


def load_dataset(
    name: str = "mnist", split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> ImageDataset:
    """Load MNIST or Fashion-MNIST (``name`` in ``{"mnist", "fashion-mnist"}``).

    ``split`` is ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    Loaded sets are cached per process.
    """
    key = _canonical_name(name)
    checks.choice("split", split, SPLITS)
    download = checks.flag("download", download)
    base = resolve_root(root)
    cache_key = (key, split, str(base.resolve()))
    if cache_key in _CACHE:
        return _CACHE[cache_key]

    raw = _raw_paths(key, base, split)
    if all(p.is_file() for p in raw):
        data, targets = _read_idx_pair(*raw)
    else:
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
        if all(p.is_file() for p in raw):  # downloaded: read (and check) the files themselves
            data, targets = _read_idx_pair(*raw)
        else:  # torchvision's legacy processed/ tensors
            data, targets = ds.data, ds.targets
            _check_arrays(data, targets, base / DATASETS[key] / "processed")
    images = data.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = targets.to(torch.long)
    out = ImageDataset(name=key, split=split, images=images, labels=labels)
    _CACHE[cache_key] = out
    return out


def _raw_paths(key: str, base: Path, split: str) -> tuple[Path, Path]:
    prefix = "train" if split == "train" else "t10k"
    folder = base / DATASETS[key] / "raw"
    return folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"


def _corrupt(path: Path, what: str) -> ValueError:
    return ValueError(
        f"{path} is corrupt: {what}. Delete it (and its partner images/labels file) so that "
        f"load_dataset(..., download=True) can fetch the data again, or copy the original "
        f"uncompressed IDX file there."
    )


def _read_idx(path: Path, magic: int, dims: int) -> tuple[bytearray, list[int]]:
    """The bytes of an IDX file of unsigned bytes and its header dimensions, checked:
    magic number, header length and file size."""
    data = bytearray(path.read_bytes())
    head = 4 * (dims + 1)
    if len(data) == 0:
        raise _corrupt(path, "the file is empty (0 bytes)")
    if len(data) < head:
        raise _corrupt(path, f"the file holds {len(data)} bytes, less than its {head}-byte IDX header")
    found = int.from_bytes(data[0:4], "big")
    if found != magic:
        raise _corrupt(
            path,
            f"magic number 0x{found:08x}, expected 0x{magic:08x} (IDX of unsigned bytes "
            f"with {dims} dimension{'s' if dims > 1 else ''})",
        )
    shape = [int.from_bytes(data[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(dims)]
    n_items = 1
    for d in shape:
        n_items *= d
    if len(data) != head + n_items:
        raise _corrupt(
            path,
            f"the file holds {len(data)} bytes, but its header {tuple(shape)} needs "
            f"{head + n_items} (truncated or padded)",
        )
    return data, shape


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 from a pair of IDX files."""
    img, shape = _read_idx(images_path, _IMAGES_MAGIC, 3)
    if shape[1:] != [IMAGE_SIZE, IMAGE_SIZE]:
        raise _corrupt(
            images_path, f"its header says images of {shape[1]}x{shape[2]} pixels, expected {IMAGE_SIZE}x{IMAGE_SIZE}"
        )
    if shape[0] == 0:
        raise _corrupt(images_path, "its header says it holds 0 images")
    lab, (n_labels,) = _read_idx(labels_path, _LABELS_MAGIC, 1)
    if n_labels != shape[0]:
        raise _corrupt(labels_path, f"it holds {n_labels} labels but {images_path.name} holds {shape[0]} images")
    data = torch.frombuffer(img, dtype=torch.uint8, offset=16).view(*shape)
    targets = torch.frombuffer(lab, dtype=torch.uint8, offset=8).long()
    _check_labels(targets, labels_path)
    return data, targets


def _check_labels(targets: torch.Tensor, where: Path) -> None:
    if targets.numel() == 0:
        raise _corrupt(where, "it holds no labels (0 images)")
    if int(targets.min()) < 0 or int(targets.max()) >= NUM_CLASSES:
        first = int(torch.nonzero((targets < 0) | (targets >= NUM_CLASSES))[0])
        raise _corrupt(where, f"label {int(targets[first])} at index {first} is outside 0..{NUM_CLASSES - 1}")


def _check_arrays(data: torch.Tensor, targets: torch.Tensor, where: Path) -> None:
    if data.dim() != 3 or tuple(data.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise _corrupt(where, f"images of shape {tuple(data.shape)}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})")
    if targets.dim() != 1 or targets.numel() != data.shape[0]:
        raise _corrupt(where, f"{targets.numel()} labels for {data.shape[0]} images")
    _check_labels(targets, where)


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

    def to(self, device: torch.device | str) -> TaskBatch:
        """The same tasks on ``device`` (``self`` when they are there already)."""
        if self.support_x.device == torch.device(device):
            return self
        return TaskBatch(*(getattr(self, k).to(device) for k in ("support_x", "support_y", "query_x", "query_y")))


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
        check_images("dataset.images", dataset.images)
        ways = checks.integer("ways", ways)
        if ways < 2:
            raise ValueError(f"ways must be an integer >= 2, got {ways}")
        shots = checks.integer("shots", shots)
        if shots < 1:
            raise ValueError(f"shots must be an integer >= 1, got {shots}")
        if classes is None:
            available = dataset.classes
        else:
            if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
                raise TypeError(f"classes must be a list of class numbers or None, got {classes!r}")
            available = sorted(checks.integer("classes", c, lo=0) for c in classes)
            repeated = sorted({c for c in available if available.count(c) > 1})
            if repeated:
                raise ValueError(f"classes must be distinct, got {list(classes)!r} (repeated: {repeated})")
        if ways > len(available):
            raise ValueError(
                f"ways must be at most the number of classes ({len(available)}) of {dataset.name}, got {ways}"
            )
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
        gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(checks.integer("seed", seed))
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

"""Where tensors live: the device of a run and how random draws reach it.

The library follows the device of its inputs: every tensor a function creates goes to
the device of the parameters or images it was given. The device of a whole run (a
meta-training, a grid cell) is :func:`resolve`'s: an explicit ``device`` argument, else
the environment variable ``MAMLPRIV_DEVICE`` (the CLI's ``--device`` sets it, so worker
processes inherit it), else the CPU.

Random draws are made on the CPU with the caller's ``torch.Generator`` and then moved
(:func:`draw`), so a seed gives the same noise, tasks and initial batches on every
device; results on a GPU differ from the CPU's only by float rounding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch

ENV = "MAMLPRIV_DEVICE"


def resolve(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` if given, else ``$MAMLPRIV_DEVICE``, else the CPU.
    Refuses names torch does not know and devices this machine does not have."""
    source = "device"
    if device is None:
        device, source = os.environ.get(ENV) or "cpu", ENV
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip())
        except RuntimeError:
            raise ValueError(
                f"{source} must name a torch device such as 'cpu', 'cuda' or 'cuda:1', got {device!r}"
            ) from None
    else:
        raise TypeError(f"{source} must be a str or torch.device, got {type(device).__name__}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{source}={str(device)!r}: this machine has no CUDA device (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{source}={str(device)!r}: CUDA devices are 0..{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{source}={str(device)!r}: MPS is not available on this machine")
    return dev


def draw(make: Callable[[], torch.Tensor], device: torch.device) -> torch.Tensor:
    """A random tensor drawn on the CPU by ``make()`` (which uses a CPU generator), moved
    to ``device``: the same numbers on every device for the same seed."""
    return make().to(device)


def move(tree, device: torch.device):
    """``tree`` (a tensor, or dicts/lists/tuples of tensors) with every tensor on ``device``."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, Mapping):
        return {k: move(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(move(v, device) for v in tree)
    return tree


def of(params: Mapping[str, torch.Tensor]) -> torch.device:
    """The device of a parameter dict (of its first entry)."""
    return next(iter(params.values())).device


def synchronize(device: torch.device) -> None:
    """Wait for the queued work of ``device`` (for timing; a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Shared fixtures. Real data come from $MAMLPRIV_DATA, defaulting to ../shared/data
beside the checkout (where CI puts it)."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MAMLPRIV_DATA", str(REPO.parent / "shared" / "data"))

from mamlpriv.data import ImageDataset  # noqa: E402


@pytest.fixture
def tiny_dataset() -> ImageDataset:
    """4 classes with 6, 6, 6 and 3 images of 1x28x28 noise."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 6 + [1] * 6 + [2] * 6 + [3] * 3)
    images = torch.rand(labels.numel(), 1, 28, 28, generator=gen)
    return ImageDataset("tiny", "train", images, labels)

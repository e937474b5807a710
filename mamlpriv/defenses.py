"""Defences: the paper's four noise locations (section IV-E) and a calibrated Gaussian
mechanism with a privacy budget.

The paper's noise (:func:`noise_at`) is Gaussian noise of standard deviation ``std`` at
one of the four hooks of the task gradient (:class:`~mamlpriv.maml.TaskNoise`): the
support images, each adaptation gradient, the query images, or the shared gradient
itself. It comes with no guarantee. The Gaussian mechanism (:func:`gaussian_mechanism`)
clips each task's shared gradient to norm ``clip`` and adds ``N(0, (sigma * clip)^2)``
to every coordinate, before the gradient leaves the task-learner (task-level privacy in
the sense of Zhou and Bassily 2022: neighbouring runs differ by one task-learner).
:func:`epsilon` accounts it over the whole meta-training with Opacus' accountants.

Accounting assumptions (stated in the book): a population of ``population``
task-learners, each taking part in a meta-iteration independently with probability
``meta_batch / population`` (Poisson sampling, what the accountants assume), one
release per participation, sensitivity ``clip`` (add/remove one task-learner).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import checks
from .maml import GaussianNoise, TaskNoise

LOCATIONS = ("support_data", "adaptation_grad", "query_data", "validation_grad")
ACCOUNTANTS = ("rdp", "prv")


def spec_key(spec: dict | None) -> str:
    """A hashable, order-free name of a defence's JSON spec (None: no defence)."""
    import json

    return json.dumps(spec or {}, sort_keys=True)


def noise_at(location: str, std: float) -> TaskNoise:
    """Zero-mean Gaussian noise of standard deviation ``std`` at one of :data:`LOCATIONS`."""
    checks.choice("location", location, LOCATIONS)
    checks.real("std", std, lo=0.0)
    parts: dict[str, Any] = {location: GaussianNoise(0.0, float(std))}
    return TaskNoise(**parts)


def gaussian_mechanism(clip: float, noise_multiplier: float) -> TaskNoise:
    """Clip the shared gradient to norm ``clip``, then add ``N(0, (noise_multiplier *
    clip)^2)`` per coordinate."""
    checks.real("clip", clip, lo=0.0, lo_open=True)
    checks.real("noise_multiplier", noise_multiplier, lo=0.0)
    return TaskNoise(validation_grad=GaussianNoise(0.0, noise_multiplier * clip), clip=float(clip))


def epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float = 1e-5, accountant: str = "rdp"
) -> float:
    """The privacy budget epsilon at ``delta`` after ``steps`` sub-sampled Gaussian
    releases (Opacus' RDP or PRV accountant); ``inf`` without noise (``noise_multiplier
    = 0``). ``noise_multiplier`` must be finite: the accountant never sees ``inf`` or NaN."""
    checks.choice("accountant", accountant, ACCOUNTANTS)
    noise_multiplier = checks.real("noise_multiplier", noise_multiplier, lo=0.0)
    sample_rate = checks.real("sample_rate", sample_rate, lo=0.0, hi=1.0, lo_open=True)
    steps = checks.integer("steps", steps, lo=1)
    delta = checks.real("delta", delta, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    for _ in range(steps):  # public API only; consecutive equal steps are merged by the accountant
        acc.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    with warnings.catch_warnings():
        # at the ends of the noise range the RDP bound is best at the largest order (little
        # noise: an epsilon of thousands) or the smallest (much noise: well below 1), and Opacus
        # warns that a wider range of orders could tighten it; the RDP accountant's number is
        # still a valid upper bound, which is what the book reports
        warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
        return float(acc.get_epsilon(delta))


def confident_area(
    levels: Sequence[float],
    attack_accuracy: Sequence[float],
    learning_accuracy: Sequence[float],
    baseline_learning: float,
    attack_max: float = 0.6,
    learning_drop: float = 0.05,
) -> list[bool]:
    """The paper's "confident noise area", computed: the levels at which the attack's
    accuracy is at most ``attack_max`` while the learning accuracy stays within
    ``learning_drop`` of the noise-free run ``baseline_learning``."""
    if not len(levels) == len(attack_accuracy) == len(learning_accuracy):
        raise ValueError("levels, attack_accuracy and learning_accuracy must have the same length")
    return [
        a <= attack_max and lrn >= baseline_learning - learning_drop
        for a, lrn in zip(attack_accuracy, learning_accuracy)
    ]


# ----- a defence as a typed part of a cell's configuration ------------------------------


class _Spec:
    """What both defences share: ``to_json`` (their fields, in order, as the cells store
    them), ``label`` (the location, or the mechanism's name) and ``level`` (the noise)."""

    _LEVEL: str

    def __init_subclass__(cls, level: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._LEVEL = level

    @property
    def label(self) -> str:
        return str(getattr(self, "location", "gaussian mechanism"))

    @property
    def level(self) -> float:
        return float(getattr(self, self._LEVEL))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses


@dataclass(frozen=True)
class RawNoise(_Spec, level="std"):
    """The paper's noise as a cell stores it: ``{"location": ..., "std": ...}``, Gaussian
    noise of standard deviation ``std`` at one of :data:`LOCATIONS`."""

    location: str
    std: float

    def __post_init__(self) -> None:
        checks.choice("location", self.location, LOCATIONS)
        object.__setattr__(self, "std", checks.real("std", self.std, 0.0))

    def task_noise(self) -> TaskNoise:
        return noise_at(self.location, self.std)


@dataclass(frozen=True)
class GaussianMechanismSpec(_Spec, level="noise_multiplier"):
    """The Gaussian mechanism as a cell stores it: ``{"clip": ..., "noise_multiplier": ...}``.

    ``shares`` = m > 1: the noise is added once to the sum of a meta-batch of m task
    gradients (secure aggregation) instead of to each: every task-learner adds an
    independent share ``N(0, (sigma * clip)^2 / m)``, so the sum the meta-learner sees
    carries exactly ``N(0, (sigma * clip)^2)`` -- the same release, and so the same
    accountant's epsilon, as one task's gradient under the per-task mechanism -- while
    the mean it steps along has ``sqrt(m)`` times less noise (``sigma * clip / m`` in
    place of ``sigma * clip / sqrt(m)``). Stored only when not 1."""

    clip: float
    noise_multiplier: float
    shares: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "clip", checks.real("clip", self.clip, 0.0, lo_open=True))
        object.__setattr__(self, "noise_multiplier", checks.real("noise_multiplier", self.noise_multiplier, 0.0))
        object.__setattr__(self, "shares", checks.integer("shares", self.shares, 1))

    @property
    def label(self) -> str:
        return "gaussian mechanism" if self.shares == 1 else "gaussian mechanism, aggregated"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        if self.shares == 1:
            del d["shares"]  # the cells stored before aggregation keep their ids
        return d

    def task_noise(self) -> TaskNoise:
        return gaussian_mechanism(self.clip, self.noise_multiplier / math.sqrt(self.shares))


Defence = RawNoise | GaussianMechanismSpec


def defence_point(defence: Defence | dict | None) -> tuple[str, float]:
    """``(label, level)`` of a defence or of its stored spec: where it sits on the book's
    axes; ``("none", 0.0)`` without one."""
    d = defence_from_json(defence) if isinstance(defence, dict) or defence is None else defence
    return ("none", 0.0) if d is None else (d.label, d.level)


def defence_from_json(spec: dict | None) -> Defence | None:
    """The typed defence of a stored spec (None or ``{}``: no defence)."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        raise TypeError(f"a defence spec must be a dict, got {spec!r}")
    keys = set(spec)
    if keys == {"location", "std"}:
        return RawNoise(spec["location"], spec["std"])
    if keys in ({"clip", "noise_multiplier"}, {"clip", "noise_multiplier", "shares"}):
        return GaussianMechanismSpec(spec["clip"], spec["noise_multiplier"], spec.get("shares", 1))
    raise ValueError(
        "a defence spec has keys {'location', 'std'} or {'clip', 'noise_multiplier'} (and optionally 'shares'), "
        f"got {spec!r}"
    )

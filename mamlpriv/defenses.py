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

import math
from collections.abc import Sequence

from .maml import GaussianNoise, TaskNoise

LOCATIONS = ("support_data", "adaptation_grad", "query_data", "validation_grad")
ACCOUNTANTS = ("rdp", "prv")


def spec_key(spec: dict | None) -> str:
    """A hashable, order-free name of a defence's JSON spec (None: no defence)."""
    import json

    return json.dumps(spec or {}, sort_keys=True)


def noise_at(location: str, std: float) -> TaskNoise:
    """Zero-mean Gaussian noise of standard deviation ``std`` at one of :data:`LOCATIONS`."""
    if location not in LOCATIONS:
        raise ValueError(f"location must be one of {LOCATIONS}, got {location!r}")
    if not (std >= 0) or not math.isfinite(std):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    return TaskNoise(**{location: GaussianNoise(0.0, float(std))})


def gaussian_mechanism(clip: float, noise_multiplier: float) -> TaskNoise:
    """Clip the shared gradient to norm ``clip``, then add ``N(0, (noise_multiplier *
    clip)^2)`` per coordinate."""
    if not (clip > 0) or not math.isfinite(clip):
        raise ValueError(f"clip must be a finite number > 0, got {clip!r}")
    if not (noise_multiplier >= 0) or not math.isfinite(noise_multiplier):
        raise ValueError(f"noise_multiplier must be a finite number >= 0, got {noise_multiplier!r}")
    return TaskNoise(validation_grad=GaussianNoise(0.0, noise_multiplier * clip), clip=float(clip))


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float = 1e-5,
            accountant: str = "rdp") -> float:
    """The privacy budget epsilon at ``delta`` after ``steps`` sub-sampled Gaussian
    releases (Opacus' RDP or PRV accountant); ``inf`` without noise."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if not (noise_multiplier >= 0):
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier!r}")
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    for _ in range(steps):  # public API only; consecutive equal steps are merged by the accountant
        acc.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    return float(acc.get_epsilon(delta))


def confident_area(levels: Sequence[float], attack_accuracy: Sequence[float], learning_accuracy: Sequence[float],
                   baseline_learning: float, attack_max: float = 0.6, learning_drop: float = 0.05) -> list[bool]:
    """The paper's "confident noise area", computed: the levels at which the attack's
    accuracy is at most ``attack_max`` while the learning accuracy stays within
    ``learning_drop`` of the noise-free run ``baseline_learning``."""
    if not len(levels) == len(attack_accuracy) == len(learning_accuracy):
        raise ValueError("levels, attack_accuracy and learning_accuracy must have the same length")
    return [a <= attack_max and lrn >= baseline_learning - learning_drop
            for a, lrn in zip(attack_accuracy, learning_accuracy)]

"""Seed streams: every stochastic step of the library draws from its own stream.

A draw's seed is :func:`derive_seed` of the owner's seed, a :class:`Stream` tag and the
draw's indices (iteration, task, ...), so that no two kinds of draw ever share a seed
and a run can be resumed or split into chunks without changing a single number. The
tags are part of every stored result: changing one changes the results.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """The tags of :func:`derive_seed` (values fixed: stored results depend on them)."""

    TRAIN = 0  # meta-training tasks: (seed, TRAIN, iteration, task)
    EVAL = 1  # held-out evaluation tasks: (seed, EVAL, task)
    TRAIN_NOISE = 2  # defence noise during meta-training: (seed, TRAIN_NOISE, iteration)
    PROBE = 7  # tasks that probe a trained network (gradient norms, anatomy): (seed, PROBE, task)
    GAME_TASK = 11  # membership game: the task of each trial (seed, GAME_TASK, trial)
    GAME_TRIAL = 12  # membership game: members, slots and non-members (seed, GAME_TRIAL)
    GAME_ATTACK = 13  # membership game: the attack's initial batches (seed, GAME_ATTACK)
    GAME_NOISE = 14  # membership game: defence noise on the real gradients (seed, GAME_NOISE)
    CEILING = 15  # the other world's image of each member trial, for the ceiling (seed, CEILING)
    AGGREGATE = 16  # the other tasks summed with a trial's under aggregation: (seed, AGGREGATE, trial, k)


# Validation trials of a membership cell play the game with seed ``seed + VALIDATION_OFFSET``:
# never the tasks of its test trials.
VALIDATION_OFFSET = 1_000_003


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (e.g. ``(seed, Stream.TRAIN, iteration, task)``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)

"""Seed streams: the tags and the validation offset are part of every stored result."""

import numpy as np
import pytest

from mamlpriv import data, seeds
from mamlpriv.seeds import VALIDATION_OFFSET, Stream, derive_seed


def test_stream_values_are_fixed():
    """Stored results were drawn with these tags: changing one changes every number."""
    assert {s.name: int(s) for s in Stream} == {
        "TRAIN": 0, "EVAL": 1, "TRAIN_NOISE": 2, "PROBE": 7,
        "GAME_TASK": 11, "GAME_TRIAL": 12, "GAME_ATTACK": 13, "GAME_NOISE": 14, "CEILING": 15,
        "AGGREGATE": 16}
    assert VALIDATION_OFFSET == 1_000_003


def test_derive_seed_is_deterministic_and_a_63_bit_integer():
    a = derive_seed(0, Stream.TRAIN, 5, 2)
    assert a == derive_seed(0, Stream.TRAIN, 5, 2) == derive_seed(np.int64(0), 0, 5, 2)
    assert isinstance(a, int) and 0 <= a < 2**63
    # an independent oracle: numpy's SeedSequence, top bit dropped
    assert a == int(np.random.SeedSequence([0, 0, 5, 2]).generate_state(1, dtype=np.uint64)[0]) >> 1


def test_derive_seed_depends_on_every_part():
    parts = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
    values = {derive_seed(*p) for p in parts}
    assert len(values) == len(parts) and all(0 <= s < 2**63 for s in values)


# the parts each stream is drawn with in the library (seeds.Stream's comments)
ARITY = {Stream.TRAIN: 2, Stream.EVAL: 1, Stream.TRAIN_NOISE: 1, Stream.PROBE: 1, Stream.GAME_TASK: 1,
         Stream.GAME_TRIAL: 0, Stream.GAME_ATTACK: 0, Stream.GAME_NOISE: 0, Stream.CEILING: 0,
         Stream.AGGREGATE: 2}


def test_streams_as_the_library_draws_them_never_share_a_seed():
    """Every kind of draw has its own seeds: owner seeds 0-2, indices 0-4, each stream
    with the number of indices the library gives it."""
    import itertools

    draws = [(seed, s, *idx) for seed in range(3) for s in Stream
             for idx in itertools.product(range(5), repeat=ARITY[s])]
    assert set(ARITY) == set(Stream)
    assert len({derive_seed(*d) for d in draws}) == len(draws)


@pytest.mark.xfail(strict=True, reason="numpy's SeedSequence ignores trailing zero words: derive_seed(s, tag) == "
                                       "derive_seed(s, tag, 0) (a library limitation, reported; fixing it would "
                                       "change every stored result)")
def test_a_trailing_zero_part_changes_the_seed():
    assert derive_seed(0, Stream.EVAL) != derive_seed(0, Stream.EVAL, 0)


def test_validation_games_never_play_the_test_tasks():
    test = {derive_seed(seed, Stream.GAME_TASK, t) for seed in range(3) for t in range(100)}
    val = {derive_seed(seed + VALIDATION_OFFSET, Stream.GAME_TASK, t) for seed in range(3) for t in range(100)}
    assert len(test) == len(val) == 300 and not test & val


def test_data_reexports_the_same_function():
    assert data.derive_seed is seeds.derive_seed


def test_derive_seed_refuses_non_integers():
    with pytest.raises((TypeError, ValueError)):
        derive_seed(0, "train")

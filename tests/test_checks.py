"""Boundary checks: each helper returns the clean value or raises an error that names
the parameter, the value and what is allowed."""

import math

import numpy as np
import pytest

from mamlpriv import checks


def test_integer_accepts_integral_values_and_returns_int():
    assert checks.integer("ways", 5) == 5
    v = checks.integer("ways", np.int64(5), 2, 10)
    assert v == 5 and type(v) is int
    assert checks.integer("n", -3) == -3  # no bounds
    assert checks.integer("n", 2, 2, 2) == 2  # bounds are inclusive


@pytest.mark.parametrize("value,error", [(True, TypeError), (2.0, TypeError), ("3", TypeError), (None, TypeError),
                                         (1, ValueError), (11, ValueError)])
def test_integer_errors_name_the_parameter_and_value(value, error):
    with pytest.raises(error, match="ways") as err:
        checks.integer("ways", value, 2, 10)
    assert repr(value) in str(err.value) or str(value) in str(err.value)


def test_integer_error_states_the_range():
    with pytest.raises(ValueError, match=r"shots must be an integer in \[1, inf\), got 0"):
        checks.integer("shots", 0, 1)
    with pytest.raises(ValueError, match=r"hold must be an integer in \[0, 9\], got 10"):
        checks.integer("hold", 10, 0, 9)
    with pytest.raises(ValueError, match=r"k must be an integer in \(-inf, 3\], got 4"):
        checks.integer("k", 4, hi=3)


def test_real_accepts_finite_numbers_in_range():
    assert checks.real("lr", 1) == 1.0 and type(checks.real("lr", 1)) is float
    assert checks.real("lr", np.float32(0.5), 0.0, lo_open=True) == 0.5
    assert checks.real("p", 1.0, 0.0, 1.0) == 1.0  # closed end
    assert checks.real("x", -1e300) == -1e300  # no bounds


@pytest.mark.parametrize("value,kw,error", [
    (math.inf, {}, ValueError), (-math.inf, {}, ValueError), (math.nan, {}, ValueError),
    (0.0, {"lo": 0.0, "lo_open": True}, ValueError), (-0.1, {"lo": 0.0}, ValueError),
    (1.0, {"hi": 1.0, "hi_open": True}, ValueError), (1.5, {"lo": 0.0, "hi": 1.0}, ValueError),
    (True, {}, TypeError), ("0.1", {}, TypeError), (None, {}, TypeError)])
def test_real_errors_name_the_parameter(value, kw, error):
    with pytest.raises(error, match="outer_lr"):
        checks.real("outer_lr", value, **kw)


def test_real_error_shows_the_interval_with_its_open_ends():
    with pytest.raises(ValueError, match=r"lr must be a finite number in \(0, inf.?, got 0"):
        checks.real("lr", 0, 0.0, lo_open=True)
    with pytest.raises(ValueError, match=r"p must be a finite number in \[0, 1\), got 1"):
        checks.real("p", 1, 0.0, 1.0, hi_open=True)


def test_flag_accepts_real_bools_only():
    assert checks.flag("first_order", True) is True
    assert checks.flag("first_order", np.bool_(False)) is False
    for bad in ("False", 0, 1, None, 1.0):
        with pytest.raises(TypeError, match="first_order must be True or False"):
            checks.flag("first_order", bad)


def test_choice_names_the_parameter_and_the_allowed_values():
    assert checks.choice("target", "query", ("query", "support")) == "query"
    with pytest.raises(ValueError, match=r"target must be one of \('query', 'support'\), got 'both'"):
        checks.choice("target", "both", ("query", "support"))
    with pytest.raises(ValueError, match="size"):
        checks.choice("size", 4, {3: None, 5: None})  # any collection: a dict's keys

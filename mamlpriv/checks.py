"""Checks at the boundary: every public configuration and function refuses bad input
with an error that names the parameter, the value and what is allowed.

Counts accept any :class:`numbers.Integral` (``np.int64(5)`` too) but never a ``bool``;
flags must be real ``bool`` s (the string ``'False'`` is truthy); real numbers must be
finite unless a bound says otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in {_range(lo, hi)}, got {v}")
    return v


def real(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the interval given (open ends where said)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    bad = not math.isfinite(v)
    if lo is not None:
        bad = bad or (v <= lo if lo_open else v < lo)
    if hi is not None:
        bad = bad or (v >= hi if hi_open else v > hi)
    if bad:
        left = "(" if lo_open or lo is None else "["
        right = ")" if hi_open or hi is None else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ValueError(f"{name} must be a finite number in {left}{lo_s}, {hi_s}{right}, got {value!r}")
    return v


def flag(name: str, value: Any) -> bool:
    """A real ``bool`` (numpy's ``bool_`` too), never a string or a number."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")  # numpy 1 / 2
    if not isinstance(value, bool) and not numpy_bool:
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def choice(name: str, value: Any, allowed: Collection) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"[{lo}, {hi}]"
    if lo is not None:
        return f"[{lo}, inf)"
    return f"(-inf, {hi}]"

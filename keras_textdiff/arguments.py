"""Argument checks shared by the recipes and `evaluate`: a clear `ValueError`
naming the argument, raised before any work."""

import math
import numbers


def check_int(name, value, minimum=1, optional=False):
    """Raise a `ValueError` naming `name` unless `value` is an int >= `minimum`
    (or `None`, when `optional`)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an int >= {minimum}"
            f"{' (or None)' if optional else ''}. Received: {name}={value!r}"
        )


def check_positive_number(name, value, described):
    """Raise a `ValueError` naming `name` unless `value` is a finite real
    number > 0; `described` says what is expected, e.g. "a finite number of
    seconds > 0"."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"`{name}` must be {described}. Received: {name}={value!r}")

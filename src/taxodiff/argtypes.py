"""Argument types for command-line options that set no config key: a bad value is refused by argparse in one
line (exit code 2) naming the value and what is allowed."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not allowed: allowed is an integer >= 1")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{v} is not allowed: allowed is a number >= 0")
    return v


def budget_factors(text: str) -> tuple[float, ...]:
    """``1,2,4`` -> (1.0, 2.0, 4.0): finite numbers > 0, comma-separated, increasing. One number is allowed: a
    study resumes its rows, so one budget can run alone and the others join it later in the same folder."""
    try:
        vs = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated numbers (e.g. 1,2,4)") from None
    if not all(0 < v < math.inf for v in vs) or list(vs) != sorted(set(vs)):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: allowed are increasing numbers > 0 (e.g. 1,2,4 or 4)")
    return vs

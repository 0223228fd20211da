"""Numeric bounds written in a parameter's `doc`, so "min 0, max 2" is a constraint and not just a hint.

Accepted forms (case-insensitive, anywhere in the doc; numbers may be negative, decimal or 1e-3 style):
    "min 0" / "minimum 0" / "at least 0" / ">= 0"         lower bound
    "max 2" / "maximum 2" / "at most 2"  / "<= 2"         upper bound
    "between 0 and 2" / "from 0 to 2" / "in [0, 2]"       both (inclusive)
A colon or `=` may follow the word ("min: 0", "max=2"). Bounds apply to int and float parameters only;
when a doc gives a bound twice, the tighter one counts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_SEP = r"\s*[:=]?\s*"
_LOW = re.compile(rf"(?:\bmin(?:imum)?|\bat\s+least|>=){_SEP}{_NUMBER}", re.IGNORECASE)
_HIGH = re.compile(rf"(?:\bmax(?:imum)?|\bat\s+most|<=){_SEP}{_NUMBER}", re.IGNORECASE)
_BOTH = re.compile(rf"(?:\bbetween\s+{_NUMBER}\s+and\s+{_NUMBER})|(?:\bfrom\s+{_NUMBER}\s+to\s+{_NUMBER})"
                   rf"|(?:\bin\s*\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\])", re.IGNORECASE)


@dataclass(frozen=True)
class Bounds:
    low: float | None
    high: float | None

    def problem(self, value: object) -> str | None:
        """One line saying why `value` is outside the bounds, or None when it is inside (or not a number)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if self.low is not None and value < self.low:
            return f"{value!r} is below the minimum {_show(self.low)} stated in its doc; propose a value in {self}"
        if self.high is not None and value > self.high:
            return f"{value!r} is above the maximum {_show(self.high)} stated in its doc; propose a value in {self}"
        return None

    def __str__(self) -> str:
        low = "-inf" if self.low is None else _show(self.low)
        high = "inf" if self.high is None else _show(self.high)
        return f"[{low}, {high}]"


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def parse_bounds(doc: str | None) -> Bounds | None:
    """The bounds a doc states, or None when it states none (or contradictory ones: min above max)."""
    if not doc:
        return None
    lows, highs = [], []
    for match in _BOTH.finditer(doc):
        numbers = [float(n) for n in match.groups() if n is not None]
        lows.append(min(numbers))
        highs.append(max(numbers))
    text = _BOTH.sub(" ", doc)   # "between 0 and 2" must not also read as a bare "and 2"
    lows += [float(m.group(1)) for m in _LOW.finditer(text)]
    highs += [float(m.group(1)) for m in _HIGH.finditer(text)]
    lows = [n for n in lows if math.isfinite(n)]
    highs = [n for n in highs if math.isfinite(n)]
    if not lows and not highs:
        return None
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None and low > high:
        return None   # a doc that contradicts itself constrains nothing; the prompt still shows it
    return Bounds(low, high)

"""A statistics helper with a bug the optimizer must repair."""

import tracec


@tracec.trainable(doc="the median of a non-empty list of numbers")
def median(values: list) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle]


@tracec.trace
def summarize(values: list) -> float:
    return median(values)

"""A buggy trainable function, repaired from its failing tests: `tracec optimize --pytest tests`.

`median` forgets to sort and does not average the two middle values of an even-length list; two of the
four tests in tests/ fail because of it. Those failures (the assertion messages pytest prints) are the
feedback the optimizer sends to the model."""

import tracec


@tracec.trainable(doc="the median of a non-empty list of numbers")
def median(values: list[float]) -> float:
    middle = len(values) // 2
    return values[middle]

"""Repair `median`: odd-length lists already work, even-length ones must average the two middle values."""

import stats

LISTS = [[3, 1, 2], [4, 1, 3, 2], [5], [10, 20], [7, 7, 1, 9], [1, 2, 3, 4, 5, 6], [9, 8, 7], [2, 2, 3, 3],
         [1, 100], [5, 3, 1, 4], [6, 1, 8], [0, 0, 1, 1, 2, 2], [11, 13], [3, 9, 1, 7, 5], [8, 2, 6, 4]]
train = LISTS[0:7]
val = LISTS[7:11]
test = LISTS[11:15]


def run(values):
    return stats.summarize(list(values))


def feedback(values, result):
    ordered = sorted(values)
    n = len(ordered)
    expected = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    if result == expected:
        return 1.0, f"correct: median of {values} is {expected}"
    return 0.0, f"wrong: median of {values} should be {expected}, got {result!r}"

"""Fetch through flaky links: success is worth 1, each attempt costs 0.04. Runs are random (unseeded), so
each example is run `repeats` times and scored by the mean."""

import fetch

repeats = 3
RATES = [0.5, 0.6, 0.4, 0.7, 0.5, 0.3, 0.6, 0.5, 0.65, 0.45, 0.55, 0.6, 0.5, 0.4, 0.7]
train = RATES[0:7]
val = RATES[7:11]
test = RATES[11:15]


def run(rate):
    return fetch.fetch(rate)


def feedback(rate, attempts):
    if attempts == 0:
        return 0.0, f"gave up after {fetch.RETRIES} attempt(s) on a link failing {rate:.0%} of the time"
    return 1.0 - 0.04 * attempts, f"succeeded on attempt {attempts} (each attempt costs 0.04)"

"""A flaky fetch with retries: each attempt fails at random; more retries succeed more often but cost time."""

import random

import tracec

RETRIES = tracec.param(1, doc="attempts before giving up, a whole number from 1 to 10")


@tracec.trace
def fetch(failure_rate: float) -> int:
    for attempt in range(1, RETRIES + 1):
        if random.random() >= failure_rate:
            return attempt
    return 0

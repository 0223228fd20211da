"""Bounds in a parameter's doc ("min 0, max 2") are enforced on the optimizer's proposals."""

from __future__ import annotations

import json

import pytest

from tracec.optimize.bounds import parse_bounds
from tracec.optimize.prompt import Variable
from tracec.optimize.reply import parse_reply


@pytest.mark.parametrize("doc, low, high", [
    ("proportional gain, min 0, max 2", 0, 2),
    ("gain between 0 and 2", 0, 2),
    ("from -1 to 1", -1, 1),
    ("in [0.1, 1e1]", 0.1, 10),
    ("at least 3 seconds", 3, None),
    ("at most 0.5", None, 0.5),
    ("Minimum: -2.5; Maximum=7", -2.5, 7),
    (">= 0 and <= 4", 0, 4),
    ("max 10, and at most 5", None, 5),            # the tighter of two upper bounds
    ("between 2 and 8, min 4", 4, 8),
])
def test_accepted_forms(doc, low, high):
    bounds = parse_bounds(doc)
    assert (bounds.low, bounds.high) == (low, high)


@pytest.mark.parametrize("doc", [None, "", "system prompt", "minutes to wait", "admin 3 users",
                                 "min 5, max 1"])   # the last contradicts itself: no bound
def test_docs_without_usable_bounds(doc):
    assert parse_bounds(doc) is None


GAIN = Variable("sim:GAIN", "value", 0.5, "proportional gain, min 0, max 2", "sim.py", 3)
STEPS = Variable("sim:STEPS", "value", 10, "simulation steps, between 1 and 100", "sim.py", 4)
WORDS = Variable("sim:WORDS", "value", "hi", "at most 2 words", "sim.py", 5)   # not a number: no bound


def suggest(**values) -> str:
    return json.dumps({"reasoning": "r", "suggestion": values})


def test_proposal_outside_the_bounds_is_refused_with_a_one_line_reason():
    proposal = parse_reply(suggest(GAIN=5, STEPS=0), [GAIN, STEPS])
    assert proposal.values == {}
    assert proposal.problems == (
        "GAIN: 5.0 is above the maximum 2 stated in its doc; propose a value in [0, 2]",
        "STEPS: 0 is below the minimum 1 stated in its doc; propose a value in [1, 100]")


def test_proposal_on_or_inside_the_bounds_is_accepted():
    proposal = parse_reply(suggest(GAIN=2, STEPS="1", WORDS="one two three"), [GAIN, STEPS, WORDS])
    assert proposal.problems == ()
    assert proposal.values == {"sim:GAIN": 2.0, "sim:STEPS": 1, "sim:WORDS": "one two three"}

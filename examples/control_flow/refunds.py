"""Refund requests: small ones are approved on the spot, larger ones go to a person for review.

The decision is one of two fixed strings, so no *value* flows from `AUTO_APPROVE_UP_TO` to the answer: the
parameter reaches it only through the `if`. A tracer that follows values (Microsoft Trace's runtime, where
`bool(node)` is not recorded) sees no dependence at all; tracec records the condition as a control node,
so feedback on a wrong decision reaches the parameter."""

import tracec

AUTO_APPROVE_UP_TO = tracec.param(500, doc="refunds up to this many euros skip review, between 0 and 1000")


@tracec.trace
def decide(request: dict) -> str:
    amount = request["amount"]
    if amount <= AUTO_APPROVE_UP_TO:
        decision = "approve"
    else:
        decision = "review"
    return decision

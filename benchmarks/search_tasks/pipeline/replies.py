"""A support reply pipeline: short messages get a short answer, long ones are escalated. Three params;
only LONG_AFTER decides, and it reaches the answer only through the `if`."""

import tracec

LONG_AFTER = tracec.param(25, doc="messages with more words than this are escalated to a person")
SHORT_REPLY = tracec.param("Thanks, we are on it.", doc="the answer to a short message")
ESCALATION = tracec.param("A specialist will contact you.", doc="the answer to a long message")


@tracec.trace
def answer(message: str) -> str:
    words = len(message.split())
    if words > LONG_AFTER:
        return ESCALATION
    return SHORT_REPLY

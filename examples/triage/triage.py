"""Route customer-support tickets to a queue: a small workflow with trainable parts.

`URGENT_WORDS` and `ESCALATE_AT` are trainable constants; `urgency` is a trainable function. The
decision in `route` is an `if` on the urgency score: the parameters reach the chosen queue only through
that control flow, which a runtime tracer that only follows values (Trace's) cannot see."""

import tracec

URGENT_WORDS = tracec.param(["refund", "broken"], doc="words that make a ticket urgent")
ESCALATE_AT = tracec.param(1, doc="urgency score at which a ticket goes to the escalations queue")
QUEUES = {"billing": ["invoice", "charge", "refund"], "tech": ["error", "crash", "broken", "login"]}


@tracec.trainable(doc="scores how urgent a ticket is; higher is more urgent")
def urgency(text: str) -> int:
    words = text.lower().split()
    score = sum(1 for word in words if word.strip(".,!?") in URGENT_WORDS)
    if text.isupper() or text.count("!") >= 2:
        score += 1
    return score


@tracec.trace
def topic(text: str) -> str:
    lowered = text.lower()
    for queue, keywords in QUEUES.items():
        if any(keyword in lowered for keyword in keywords):
            return queue
    return "general"


@tracec.trace
def route(ticket: dict) -> str:
    text = ticket["subject"] + " " + ticket["body"]
    score = urgency(text)
    if score >= ESCALATE_AT:
        queue = "escalations"
    else:
        queue = topic(text)
    return queue

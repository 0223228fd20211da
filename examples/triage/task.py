"""The triage workflow as an optimization task: `tracec optimize examples/triage/task.py`.

train/val are labelled tickets; run() routes one; feedback() scores the queue and says what went wrong."""

import triage
from tickets import TRAIN, VAL

train = TRAIN
val = VAL


def run(ticket: dict) -> str:
    return triage.route(ticket)


def feedback(ticket: dict, queue: str) -> tuple[float, str]:
    expected = ticket["queue"]
    if queue == expected:
        return 1.0, f"correct: routed to {queue!r}"
    if queue == "escalations":
        return 0.0, (f"wrong: routed to 'escalations' but belongs in {expected!r}; this ticket is not urgent "
                     "enough to escalate")
    if expected == "escalations":
        return 0.0, f"wrong: routed to {queue!r} but it is urgent and belongs in 'escalations'"
    return 0.0, f"wrong: routed to {queue!r} but belongs in {expected!r}"

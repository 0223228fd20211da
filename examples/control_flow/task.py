"""The refund gate as an optimization task: `tracec optimize examples/control_flow/task.py`."""

import refunds
from refund_requests import TRAIN, VAL

train = TRAIN
val = VAL


def run(request: dict) -> str:
    return refunds.decide(request)


def feedback(request: dict, decision: str) -> tuple[float, str]:
    expected = request["expected"]
    if decision == expected:
        return 1.0, f"correct: {request['amount']:.2f} EUR -> {decision}"
    if decision == "approve":
        return 0.0, (f"wrong: {request['amount']:.2f} EUR was approved without review, but finance reviews "
                     "refunds this large")
    return 0.0, f"wrong: {request['amount']:.2f} EUR went to review, but refunds this small are approved directly"

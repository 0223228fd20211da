"""Decide every labelled refund under recording, send feedback on the wrong decisions backward, and write the
graph for `tracec show`.

Run it instrumented:  tracec run examples/control_flow/main.py  (then: tracec show .tracec/refunds-graph.json)"""

import os
import sys

import refunds
from refund_requests import REQUESTS

import tracec
from tracec.runtime import write_graph


def main() -> int:
    with tracec.record() as run:
        decisions = [refunds.decide(request) for request in REQUESTS]
    if not run.outputs:
        print("refunds.py was not instrumented: run `tracec run examples/control_flow/main.py`", file=sys.stderr)
        return 2
    for index, (request, decision) in enumerate(zip(REQUESTS, decisions)):
        ok = decision == request["expected"]
        print(f"{'ok   ' if ok else 'WRONG'} {request['id']} {request['amount']:8.2f} EUR -> {decision}")
        if not ok:
            run.feedback(index, f"{request['amount']:.2f} EUR should go to {request['expected']!r}, not "
                                f"{decision!r}", score=0.0)
    for key, reach in sorted(run.backward().items()):
        conditions = sorted({run.nodes[n].code for n in reach.nodes if run.nodes[n].kind == "control"})
        print(f"\nfeedback on {len(reach.feedback)} wrong decision(s) reaches {key} through the condition(s) "
              f"{conditions}")
    out = os.path.join(os.getcwd(), ".tracec", "refunds-graph.json")
    write_graph(run, out)
    print(f"graph: {os.path.relpath(out)}  (view it: tracec show {os.path.relpath(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

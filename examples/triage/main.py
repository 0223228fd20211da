"""Run the triage workflow on labelled tickets, record it, send feedback backward, show the graph.

Run it instrumented:  tracec instrument examples/triage && python .tracec/build/examples/triage/main.py"""

import os
import sys

import triage
from tickets import TICKETS

import tracec
from tracec.runtime import write_graph


def main() -> int:
    if "_tracec_m" not in vars(triage):
        print("triage.py is not instrumented: run `tracec instrument examples/triage` and then "
              "`python .tracec/build/examples/triage/main.py`", file=sys.stderr)
        return 2
    tickets = TICKETS
    with tracec.record() as run:
        answers = [triage.route(ticket) for ticket in tickets]
    wrong = 0
    for index, (ticket, answer) in enumerate(zip(tickets, answers)):
        ok = answer == ticket["queue"]
        wrong += not ok
        print(f"{'ok   ' if ok else 'WRONG'} {ticket['subject']!r:22} -> {answer:12} (expected {ticket['queue']})")
        if not ok:
            run.feedback(index, f"ticket {ticket['subject']!r} was routed to {answer!r} but belongs in "
                                f"{ticket['queue']!r}", score=0.0)
    print(f"\n{len(tickets) - wrong}/{len(tickets)} routed correctly; recorded {len(run.nodes)} nodes")
    print("\nParameters the failures reach (through data and control edges):")
    for key, reach in sorted(run.backward().items()):
        lines = sorted({run.nodes[n].line for n in reach.nodes})
        print(f"  {key:28} {reach.param.kind:5} {len(reach.feedback)} failing ticket(s), "
              f"{len(reach.nodes)} nodes on lines {lines}")
    out = os.path.join(os.getcwd(), ".tracec", "triage-graph.json")
    write_graph(run, out)
    print(f"\ngraph: {os.path.relpath(out)}  (view it: tracec show {os.path.relpath(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

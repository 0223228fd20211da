"""Greet one colleague under recording and show which parameters the proofreader's feedback reaches.

Run it instrumented:  tracec run examples/greeting/main.py   (calls the model: see examples/README.md)"""

import sys

import greeting
import task

import tracec


def main() -> int:
    colleague = task.val[0]
    with tracec.record() as run:
        card = greeting.greet(colleague["name"])
    score, text = task.feedback(colleague, card)
    print(f"card: {card!r}\nfeedback ({score:.2f}): {text}")
    if not run.outputs:
        print("greeting.py was not instrumented: run `tracec run examples/greeting/main.py`", file=sys.stderr)
        return 2
    run.feedback(run.outputs[-1], text, score=score)
    for key, reach in sorted(run.backward().items()):
        print(f"feedback reaches {key} ({reach.param.kind}) through {len(reach.nodes)} recorded nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Simulate one day under recording and show which parameters the feedback reaches.

Run it instrumented:  tracec run examples/thermostat/main.py"""

import sys

import task
import thermostat

import tracec


def main() -> int:
    day = task.val[0]
    with tracec.record() as run:
        history = thermostat.heat(day["target"], day["outdoor"])
    score, text = task.feedback(day, history)
    print(f"GAIN={thermostat.GAIN} INTEGRAL_GAIN={thermostat.INTEGRAL_GAIN}: {text}")
    if not run.outputs:
        print("thermostat.py was not instrumented: run `tracec run examples/thermostat/main.py`", file=sys.stderr)
        return 2
    run.feedback(run.outputs[-1], text, score=score)
    for key, reach in sorted(run.backward().items()):
        print(f"feedback reaches {key} through {len(reach.nodes)} recorded nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

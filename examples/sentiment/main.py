"""Classify the validation reviews once under recording and print the accuracy and what the feedback reaches.

Run it instrumented:  tracec run examples/sentiment/main.py   (calls the model: see examples/README.md)"""

import sys

import sentiment
import task

import tracec


def main() -> int:
    with tracec.record() as run:
        labels = [sentiment.classify(review["text"]) for review in task.val]
    if not run.outputs:
        print("sentiment.py was not instrumented: run `tracec run examples/sentiment/main.py`", file=sys.stderr)
        return 2
    correct = 0
    for index, (review, label) in enumerate(zip(task.val, labels)):
        score, text = task.feedback(review, label)
        correct += score == 1.0
        run.feedback(index, text, score=score)
        print(f"{label:9} {review['text'][:60]!r}: {text}")
    print(f"\naccuracy {correct}/{len(labels)}")
    for key, reach in sorted(run.backward().items()):
        print(f"feedback reaches {key} ({reach.param.kind}) through {len(reach.nodes)} recorded nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prompt optimization on a small labelled dataset: `tracec optimize examples/sentiment/task.py`.

reviews.jsonl (48 hand-written product reviews, half positive, half negative) ships with the example.
Every third review is held out as `val` (8 positive, 8 negative); the optimizer learns from minibatches of
`train` and keeps a candidate only if it scores better on `val` than the best so far (keep-best), so the
patch it writes is the best instruction/parser it found, not the last one it tried."""

import json
from pathlib import Path

import sentiment

REVIEWS = [json.loads(line) for line in (Path(__file__).parent / "reviews.jsonl").read_text().splitlines()
           if line.strip()]
train = [review for index, review in enumerate(REVIEWS) if index % 3 != 0]   # 32 reviews
val = [review for index, review in enumerate(REVIEWS) if index % 3 == 0]     # 16 reviews


def run(review: dict) -> str:
    return sentiment.classify(review["text"])


def feedback(review: dict, label: str) -> tuple[float, str]:
    if label == review["label"]:
        return 1.0, f"correct: {review['label']}"
    if label not in sentiment.LABELS:
        return 0.0, f"no usable label (got {label!r}); the review is {review['label']}"
    return 0.0, f"wrong: labelled {label} but the review is {review['label']}"

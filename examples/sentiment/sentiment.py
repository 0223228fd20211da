"""Review sentiment with a model: a trainable instruction sent with each review through `tracec.chat`, and a
trainable function that reads the label out of the model's reply."""

import tracec

INSTRUCTION = tracec.param("What do you think of this review?",
                           doc="system instruction sent to the model with each review")
LABELS = ("positive", "negative")


@tracec.trainable(doc="reads 'positive' or 'negative' out of the model's reply ('unknown' if it cannot)")
def label_of(reply: str) -> str:
    words = reply.strip().lower().split()
    return words[0] if words and words[0] in LABELS else "unknown"


@tracec.trace
def classify(review: str) -> str:
    reply = tracec.chat(INSTRUCTION, review, max_tokens=20)   # a label is a word or two; no essays
    return label_of(reply)

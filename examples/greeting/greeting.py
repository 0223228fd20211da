"""A greeting agent: a trainable system prompt sent to a model with `tracec.chat`, and a trainable helper
that turns the model's reply into the text printed on a welcome card.

The model is whatever `tracec optimize` would use (see examples/README.md): the embedded local/smollm2 by
default, `TRACEC_MODEL` / `TRACEC_API_BASE` or `[tool.tracec]` model / api_base otherwise."""

import tracec

SYSTEM_PROMPT = tracec.param("You are a helpful assistant.", doc="system prompt sent to the model for every greeting")


@tracec.trainable(doc="turns the model's reply into the card text: one line, at most 12 words")
def card_text(name: str, reply: str) -> str:
    return reply.strip()


@tracec.trace
def greet(name: str) -> str:
    reply = tracec.chat(SYSTEM_PROMPT, f"Write a welcome greeting for our new colleague {name}.", max_tokens=60)
    return card_text(name, reply)

"""The annotations users write. Un-instrumented they cost nothing; the transform reads them statically."""

from __future__ import annotations

import weakref
from typing import Any, Callable, TypeVar

from tracec import runtime
from tracec.literals import require_writable
from tracec.runtime import record

F = TypeVar("F", bound=Callable[..., Any])
def param(value: Any, *, doc: str | None = None, name: str | None = None) -> Any:
    """A trainable constant. Returns `value` unchanged; the instrumented module records where it is read."""
    require_writable(value, "the value")
    return value


def _annotation(func: Callable | None, options: dict) -> Any:
    unknown = set(options) - {"doc", "name"}
    if unknown:
        raise TypeError(f"unexpected option(s) {', '.join(sorted(unknown))}: use doc= or name=")
    if func is None:
        return lambda f: f
    return func


def trace(func: F | None = None, **options: Any) -> F:
    """Record this function's statements (`@tracec.trace` or `@tracec.trace(doc=...)`)."""
    return _annotation(func, options)


def trainable(func: F | None = None, **options: Any) -> F:
    """Record this function and let the optimizer rewrite its body (`@tracec.trainable(doc=...)`)."""
    return _annotation(func, options)


# Every tracec.feedback(...) call made under a recording, attached or not, by recording: a test whose code
# made no traced call still has its explicit feedback on record (the pytest plugin reports it).
_explicit: "weakref.WeakKeyDictionary[runtime.Recorder, list[tuple[str, float | None]]]" = weakref.WeakKeyDictionary()


def feedback(text: str, score: float | None = None, *, output: Any = None) -> list:
    """Feedback on what the code under the active recording produced (under `pytest --tracec`: the
    current test's traced calls so far). `output=None` attaches it to every output recorded so far; an
    int picks one by its index in `run.outputs` (negative allowed), a Node picks that node. Returns the
    Feedback objects attached: none without an active recording (so the same code runs unchanged
    without tracec) or when no traced call has returned yet (then it is only kept on record)."""
    recorder = runtime.active()
    if recorder is None:
        return []
    _explicit.setdefault(recorder, []).append((str(text), None if score is None else float(score)))
    if output is not None:
        return [recorder.feedback(output, text, score)]
    return [recorder.feedback(node, text, score) for node in recorder.outputs]


def explicit_feedback(recorder: runtime.Recorder) -> list[tuple[str, float | None]]:
    """(text, score) of every tracec.feedback call made while `recorder` was the active recording."""
    return list(_explicit.get(recorder, ()))


__all__ = ["feedback", "param", "record", "trace", "trainable"]

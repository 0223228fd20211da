"""The annotations users write. Un-instrumented they cost nothing; the transform reads them statically."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from .runtime import record

F = TypeVar("F", bound=Callable[..., Any])
LITERAL_TYPES = (str, int, float, bool, type(None))


def _check_literal(value: Any, where: str) -> None:
    if isinstance(value, LITERAL_TYPES):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_literal(key, where)
            _check_literal(item, where)
        return
    raise TypeError(f"tracec.param: {where} must be a literal (str, number, bool, None, or a list/tuple/dict "
                    f"of literals), got {type(value).__name__}")


def param(value: Any, *, doc: str | None = None, name: str | None = None) -> Any:
    """A trainable constant. Returns `value` unchanged; the instrumented module records where it is read."""
    _check_literal(value, "the value")
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


__all__ = ["param", "record", "trace", "trainable"]

"""The one rule for a value tracec can write back as Python source, a *writable literal*.

`tracec.param` accepts exactly these values, a model's reply may set only these, `tracec check` (TC101)
asks for these, and the patch writer writes these: str, int, finite float, bool, None, and lists, tuples
and dicts of them, by exact type (an IntEnum member is an int whose repr is no literal; nan and inf have
no literal at all).
"""

from __future__ import annotations

import ast
import math

SCALARS = (str, int, float, bool, type(None))
DESCRIPTION = "str, number, bool, None, or a list/tuple/dict of them"


def unwritable(value: object) -> str | None:
    """None when `value` is a writable literal, else what is not (a type name, or why)."""
    stack, seen = [value], set()
    while stack:   # iteratively: a value nested thousands deep is still answered
        item = stack.pop()
        kind = type(item)
        if kind is float and not math.isfinite(item):
            return f"{item!r} (a float no literal spells)"
        if kind in SCALARS:
            continue
        if kind not in (list, tuple, dict):
            return kind.__name__
        if id(item) in seen:
            return f"a {kind.__name__} that contains itself"
        seen.add(id(item))
        if kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            stack.extend(item)
    return None


def require_writable(value: object, where: str) -> None:
    """TypeError naming `where` unless `value` is a writable literal."""
    problem = unwritable(value)
    if problem is not None:
        raise TypeError(f"tracec.param: {where} must be a literal ({DESCRIPTION}), got {problem}")


def spelled_repr(text: str) -> str | None:
    """repr() of the literal value `text` spells, None when it spells none. Equal reprs tell 1 from 1.0
    and True from 1 at any depth, which == does not."""
    try:
        return repr(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def source_text(value: object) -> str | None:
    """Python source that spells `value` (its repr), None when `value` is no writable literal."""
    if unwritable(value) is not None:
        return None
    text = repr(value)
    return text if spelled_repr(text) == text else None

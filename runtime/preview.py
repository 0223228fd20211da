"""Bounded previews of values that never run the user's code.

Recording must not change what a program does, so a preview never calls a user-defined `__repr__`,
`__iter__` or property (they can have side effects, be slow, or keep state). Builtin scalars and
containers are rendered by walking them with their C-level methods; exceptions, named tuples, enums and
dataclasses are rendered field by field; values whose repr is defined by the standard library and
holds no user objects (dates, decimals, paths, ...) use it; anything else is `<module.Class object>`."""

from __future__ import annotations

import collections
import dataclasses
import enum
import sys
import types

PREVIEW_CHARS = 200
_ITEMS = 12       # elements shown per container
_DEPTH = 4        # nesting shown
_SCALARS = (int, float, complex, bool, bytes, bytearray, range, type(None), type(...))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"builtins", "_decimal", "_datetime"}


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    kind = type(value)
    # the common cases, exactly and cheaply (`type(value) is`, which is `kind is`, tells mypy what value is)
    if value is None or kind is bool or kind is float or (type(value) is int and -10**15 < value < 10**15) \
            or (type(value) is str and len(value) <= limit // 4):
        return repr(value)
    try:
        text = _render(value, _DEPTH, limit)
    except Exception:
        text = f"<{_name(kind)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(kind: type) -> str:
    module = getattr(kind, "__module__", "")
    return kind.__qualname__ if module in ("builtins", "__main__", None, "") else f"{module}.{kind.__qualname__}"


def _render(value, depth: int, limit: int) -> str:
    # every decision uses type(value): an instance check would consult a user-defined __class__
    kind = type(value)
    if issubclass(kind, str):
        text = str.__str__(value)
        return repr(text if len(text) <= limit else text[:limit])
    if issubclass(kind, _SCALARS) and kind.__repr__ is _base_repr(kind):
        return repr(value)[: limit + 10]
    if depth <= 0:
        return "..."
    if issubclass(kind, BaseException):
        args = BaseException.__getattribute__(value, "args")
        return f"{kind.__name__}({_sequence(args, depth, limit)})"
    if issubclass(kind, enum.Enum):
        return f"<{kind.__name__}.{value._name_}>"
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):   # a named tuple
        fields = ", ".join(f"{f}={_render(tuple.__getitem__(value, i), depth - 1, limit)}"
                           for i, f in enumerate(kind._fields[:_ITEMS]))
        return f"{kind.__name__}({fields})"
    if dataclasses.is_dataclass(kind):
        shown = [f for f in dataclasses.fields(kind) if f.repr][:_ITEMS]
        fields = ", ".join(f"{f.name}={_render(object.__getattribute__(value, f.name), depth - 1, limit)}"
                           for f in shown)
        return f"{kind.__name__}({fields})"
    if issubclass(kind, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return f"<function {getattr(value, '__qualname__', '?')}>"
    for base, opening, closing in _CONTAINERS:
        if issubclass(kind, base):
            size = base.__len__(value)
            if size == 0 and base in (set, frozenset, collections.deque):
                return f"{kind.__name__}()"
            inner = _sequence(base.__iter__(value), depth, limit, size)
            if base is tuple and size == 1:
                inner += ","
            text = opening + inner + closing
            return text if kind is base and base is not collections.deque else f"{kind.__name__}({text})"
    if issubclass(kind, dict):
        items = []
        for i, (key, item) in enumerate(dict.items(value)):
            if i == _ITEMS:
                items.append("...")
                break
            items.append(f"{_render(key, depth - 1, limit)}: {_render(item, depth - 1, limit)}")
        text = "{" + ", ".join(items) + "}"
        return text if kind is dict else f"{kind.__name__}({text})"
    if kind.__repr__ is not object.__repr__ and _stdlib_repr(kind):   # object's own repr shows an address
        return repr(value)
    return f"<{_name(kind)} object>"


_CONTAINERS = ((list, "[", "]"), (tuple, "(", ")"), (set, "{", "}"), (frozenset, "{", "}"),
               (collections.deque, "[", "]"))


def _sequence(items, depth: int, limit: int, length: int | None = None) -> str:
    shown = []
    for i, item in enumerate(items):
        if i == _ITEMS:
            shown.append(f"... ({length} items)" if length is not None else "...")
            break
        shown.append(_render(item, depth - 1, limit))
    return ", ".join(shown)


def _base_repr(kind: type):
    for base in _SCALARS:
        if issubclass(kind, base):
            return base.__repr__
    return None


def _stdlib_repr(kind: type) -> bool:
    """Does this type's repr come from the standard library rather than from the user (or a package)?
    Iterable types are left out: their repr would show their elements, which may be user objects."""
    if hasattr(kind, "__iter__"):
        return False
    method = kind.__repr__
    owner = getattr(method, "__objclass__", None)
    module = (owner.__module__ if owner is not None else getattr(method, "__module__", None)) or ""
    return module.split(".")[0] in _STDLIB and kind.__module__.split(".")[0] in _STDLIB

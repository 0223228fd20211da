"""The helpers every generated program starts with, and the endings that raise on purpose."""

from __future__ import annotations

PRELUDE = '''
TOTAL = 0


class AppError(Exception):
    """Raised on purpose by generated code."""


class Marker(Exception): pass


def side(tag, value):
    print("side", tag, value)
    return value


class Holder:
    def __init__(self, value):
        self.value = value
        self.items = [value, 1, 2]
        self.table = {"k": value}

    def bump(self):
        self.value += 1
        return self

    def __repr__(self):
        return f"Holder({self.value}, {self.items}, {self.table})"


@contextlib.contextmanager
def tag_cm(name):
    print("enter", name)
    try:
        yield len(name)
    finally:
        print("exit", name)


class Suppress:
    def __init__(self, *kinds):
        self.kinds = kinds

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        print("suppress", kind.__name__ if kind else None)
        return kind is not None and issubclass(kind, self.kinds)


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        print("call", fn.__name__, args, sorted(kwargs.items()))
        result = fn(*args, **kwargs)
        print("return", fn.__name__, result)
        return result
    return wrapper


def repeat(times):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            result = None
            for _ in range(times):
                result = fn(*args, **kwargs)
            return result
        return wrapper
    return decorate


def ident(x): return x
'''

ENDINGS = [  # (code after the final print, exception type it raises)
    ("raise SystemExit($k)", "SystemExit"),
    ('raise AppError("finished", RESULT)', "AppError"),
    ("raise KeyError(RESULT)", "KeyError"),
    ('sys.exit(f"bye {RESULT}")', "SystemExit"),
    ("def finish(x):\n    try:\n        raise ValueError(x)\n    finally:\n        x = None\n\n\nfinish(RESULT)",
     "ValueError"),
]

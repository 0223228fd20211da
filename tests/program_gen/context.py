"""The generator's bounds, the records it returns, and the indenting line writer."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

MODULUS = 10007  # pool functions return results modulo this, so values never grow without bound
COST_BUDGET = 300  # rough cap on the statements one call of a generated function executes
LOOP_CAP = 40  # product of enclosing loop bounds a new loop may reach
EXCEPTIONS = ("ValueError", "KeyError", "IndexError", "ZeroDivisionError", "AppError", "TypeError")


@dataclass(frozen=True)
class GeneratedProgram:
    seed: int
    source: str
    raises: str | None  # exception type the program raises on purpose after its "final" line


@dataclass(frozen=True)
class PoolFunction:
    """A generated function that takes `arity` ints, returns an int and never raises."""
    name: str
    arity: int
    cost: int


@dataclass
class Ctx:
    """What the code being generated at this point may use."""
    vars: list[str]  # int names definitely bound here
    func: str | None = None  # enclosing function; None at module level
    returns: bool = False  # a `return <int>` is allowed here
    depth: int = 0
    mult: int = 1  # how often this code may run per call of the function (product of loop bounds)
    in_loop: bool = False
    catches: frozenset = frozenset()  # exception types an enclosing try/with in this function catches
    frozen: frozenset = frozenset()  # loop counters that must not be reassigned
    global_ok: bool = False  # `TOTAL` may be assigned here

    def child(self, **changes) -> Ctx:
        changes.setdefault("vars", list(self.vars))
        return replace(self, depth=self.depth + 1, **changes)

    def assignable(self) -> list[str]:
        return [v for v in self.vars if v not in self.frozen]

    def covers(self, kind: str) -> bool:
        return "Exception" in self.catches or kind in self.catches


class Lines:
    """Indented source lines; a block that ends up empty gets `pass`."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 0

    def add(self, text: str) -> None:
        pad = "    " * self.level
        self.lines.extend(pad + part if part else part for part in text.split("\n"))

    @contextmanager
    def block(self, header: str):
        self.add(header)
        self.level += 1
        start = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == start:
                self.add("pass")
            self.level -= 1

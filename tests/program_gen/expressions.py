"""Expressions: literals, names, calls, conditions and assignment targets."""

from __future__ import annotations

import random

from .context import COST_BUDGET, LOOP_CAP, MODULUS, Ctx, Lines, PoolFunction
from .grammar import GrammarEdges


class ExpressionGenerator(GrammarEdges):
    """Expressions, conditions and assignment targets over the names in scope."""

    """Random int-valued expressions and statements over the names a Ctx says are bound."""

    MODULUS, LOOP_CAP = MODULUS, LOOP_CAP  # for the GrammarEdges mixin

    def __init__(self, rng: random.Random, out: Lines) -> None:
        self.rng = rng
        self.out = out
        self.pool: list[PoolFunction] = []
        self.raisers: list[tuple[str, frozenset]] = []  # (call format with {}, exception types it raises)
        self.counter = 0
        self.cost = 0  # estimated statements executed by one call of the function being generated

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # -- expressions ---------------------------------------------------------------------------------

    def lit(self) -> str:
        return str(self.rng.randint(-4, 12))

    def atom(self, ctx: Ctx) -> str:
        return self.rng.choice(ctx.vars) if ctx.vars and self.rng.random() < 0.75 else self.lit()

    def expr(self, ctx: Ctx, depth: int = 0) -> str:
        r = self.rng
        if depth >= 2 or r.random() < 0.35:
            return self.atom(ctx)
        kind = r.choices(["bin", "call", "ifexp", "builtin"], [5, 2, 1, 2])[0]
        sub = lambda: self.expr(ctx, depth + 1)  # noqa: E731
        if kind == "call":
            call = self.call(ctx, depth)
            if call:
                return call
        if kind == "ifexp":
            return f"({sub()} if {self.cond(ctx, depth + 1)} else {sub()})"
        if kind == "builtin":
            return r.choice([f"abs({sub()})", f"min({sub()}, {sub()})", f"max({sub()}, {sub()}, {self.lit()})",
                             f"sum([{sub()}, {sub()}])", f"len(str({sub()}))", f"divmod({sub()}, 7)[0]",
                             f"int(str({sub()}))", f"round({sub()} / 4)"])
        op = r.choice(["+", "-", "+", "-", "//", "%", "|", "^", "&", "*"])
        if op in ("//", "%"):
            return f"({sub()} {op} {r.choice(['2', '3', '5', '7', '-3'])})"
        if op == "*":  # only by a small constant and never inside loops: values stay small
            return f"({sub()} * {r.choice(['2', '3', '-1'])})" if ctx.mult == 1 else f"({sub()} - 1)"
        return f"({sub()} {op} {sub()})"

    def call(self, ctx: Ctx, depth: int = 0) -> str | None:
        options = [f for f in self.pool if self.cost + f.cost * ctx.mult <= COST_BUDGET]
        if not options:
            return None
        fn = self.rng.choice(options)
        self.cost += fn.cost * ctx.mult
        return f"{fn.name}({', '.join(self.expr(ctx, depth + 1) for _ in range(fn.arity))})"

    def cond(self, ctx: Ctx, depth: int = 0) -> str:
        r = self.rng
        kind = "cmp" if depth >= 2 else r.choices(
            ["cmp", "chain", "mod", "not", "and", "or", "side", "in"], [4, 2, 2, 1, 1, 1, 1, 1])[0]
        sub = lambda: self.expr(ctx, depth + 1)  # noqa: E731
        if kind == "chain":
            if r.random() < 0.5:
                return f"{self.lit()} <= {sub()} < {r.randint(5, 20)}"
            return f"{sub()} < {sub()} <= {sub()}"
        if kind == "mod":
            return f"{self.atom(ctx)} % {r.randint(2, 4)} == {r.randint(0, 1)}"
        if kind == "not":
            return f"not {self.cond(ctx, depth + 1)}"
        if kind in ("and", "or"):
            return f"({self.cond(ctx, depth + 1)} {kind} {self.cond(ctx, depth + 1)})"
        if kind == "side":  # prints when evaluated: short-circuit order shows in the output
            return f'side("{self.fresh("s")}", {self.cond(ctx, depth + 1)})'
        if kind == "in":
            return f"{sub()} in ({self.lit()}, {self.lit()}, {self.lit()})"
        return f"{sub()} {r.choice(['<', '<=', '>', '>=', '==', '!='])} {sub()}"

    def target(self, ctx: Ctx, fresh_chance: float = 0.5) -> tuple[str, bool]:
        """A name to assign: an existing unfrozen one or a fresh one (then the caller binds it)."""
        names = ctx.assignable()
        if names and self.rng.random() > fresh_chance:
            return self.rng.choice(names), False
        return self.fresh("v"), True

    def assign(self, ctx: Ctx, value: str, fresh_chance: float = 0.5) -> str:
        name, new = self.target(ctx, fresh_chance)
        self.out.add(f"{name} = {value}")
        if new:
            ctx.vars.append(name)
        return name

"""Deterministic generator of runnable Python programs for the tracec semantics property tests.

`generate(seed)` builds a program that exercises everything the tracec transform rewrites: calls between
functions, bounded recursion, every compound statement (if/while/for/try/with/match, with break, continue,
loop `else`, `return` inside `finally`, re-raise, exceptions crossing several functions), comprehensions
with conditions and walrus, lambdas, closures with nonlocal, global, generators (send, throw, yield
from), async functions, classes (property, staticmethod, classmethod, super()), decorators, augmented
assignment on names, attributes and subscripts, unpacking with starred targets, f-strings (`=`, nested
specs), chained comparisons, short-circuit with printed side effects, multi-line expressions, one-line
compound statements, docstrings and sometimes `from __future__ import annotations`; and the grammar's
corners from tests/program_gen_grammar.py: a walrus, a conditional expression and a lambda as the test of
every condition position, keywords directly followed by `(`, and deeply nested expressions.

Programs only ever print deterministic values (ints, strings, lists; never ids, object reprs, hashes
of str or times), terminate quickly (loop bounds multiply into a per-function cost budget, pool functions
reduce their results modulo a prime so integers stay small) and end by printing a line starting with
"final"; some then raise on purpose (`GeneratedProgram.raises`). The statement and expression grammar is
in `StatementGenerator`; the larger feature templates (generators, async, classes, ...) and the program
layout are in `ProgramBuilder`.
"""

from __future__ import annotations

import random
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, replace
from string import Template

from program_gen_grammar import GrammarEdges

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


def generate_program(seed: int, small: bool = False) -> str:
    """The source of the program for `seed` (same seed, same program, on the same Python minor version)."""
    return generate(seed, small).source


class StatementGenerator(GrammarEdges):
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

    # -- statements ----------------------------------------------------------------------------------

    def body(self, ctx: Ctx, count: int) -> None:
        for _ in range(count):
            self.stmt(ctx)

    def stmt(self, ctx: Ctx) -> None:
        self.cost += ctx.mult
        compound = ctx.depth < 3
        in_func = ctx.func is not None
        kinds = [
            (4, self.s_assign, True), (3, self.s_aug, bool(ctx.assignable())), (2, self.s_print, True),
            (1, self.s_fstring, bool(ctx.vars)), (1, self.s_unpack, True), (1, self.s_holder, True),
            (2, self.s_comprehension, True), (1, self.s_lambda, True), (2, self.s_oneliner, True),
            (1, self.s_multiline, True), (0.5, self.s_misc, True), (1, self.s_walrus_if, compound),
            (1.5, self.s_raise, bool(ctx.catches)), (1.5, self.s_loop_exit, ctx.in_loop),
            (1, self.s_global, ctx.global_ok), (0.7, self.s_return, ctx.returns and ctx.depth > 0),
            (1, self.s_closure, in_func and ctx.depth == 0 and bool(ctx.assignable())),
            (2, self.s_if, compound), (1.5, self.s_for, compound and ctx.mult * 2 <= LOOP_CAP),
            (1, self.s_while, compound and ctx.mult * 2 <= LOOP_CAP), (1.5, self.s_try, compound),
            (1, self.s_with, compound), (1, self.s_match, compound), (2, self.s_condition, True),
            (1.5, self.s_keyword_paren, True),
        ]
        kinds = [(w, f) for w, f, ok in kinds if ok]
        self.rng.choices([f for _, f in kinds], [w for w, _ in kinds])[0](ctx)

    def s_assign(self, ctx: Ctx) -> None:
        self.assign(ctx, self.expr(ctx))

    def s_aug(self, ctx: Ctx) -> None:
        r = self.rng
        name = r.choice(ctx.assignable())
        op = r.choice(["+=", "-=", "|=", "^=", "//=", "%="] + (["*="] if ctx.mult == 1 else []))
        value = {"//=": r.choice(["2", "3", "-5"]), "%=": r.choice(["7", "11", "-6"]),
                 "*=": r.choice(["2", "3", "-1"])}.get(op) or self.expr(ctx)
        self.out.add(f"{name} {op} {value}")

    def s_print(self, ctx: Ctx) -> None:
        tag = self.fresh("p")
        args = ", ".join(self.expr(ctx) for _ in range(self.rng.randint(1, 3)))
        self.out.add(self.rng.choice([
            f'print("{tag}", {args})', f'print("{tag}", *[{args}], sep="|")', f'print("{tag}", {args}, end=" <\\n")',
            f'print("{tag}", sys._getframe().f_lineno, {args})']))

    def s_fstring(self, ctx: Ctx) -> None:
        r = self.rng
        var, width = r.choice(ctx.vars), r.randint(3, 8)
        fields = [f"{{{self.expr(ctx)}}}", f"{{{var}=}}", f"{{{self.expr(ctx)}:>{width}}}", f"{{{var}!r}}",
                  f"{{{var}:+d}}", f"{{{var}:{{{width}}}}}", f"{{{var} = }}", f"{{{self.expr(ctx)}:#x}}",
                  f"{{{var} * 2 if {var} > 0 else -{var}}}"]
        chosen = " ".join(r.sample(fields, r.randint(2, 4)))
        self.out.add(f"print(f'{self.fresh('f')} {chosen}')")

    def s_unpack(self, ctx: Ctx) -> None:
        r = self.rng
        kind = r.randint(0, 4)
        names = ctx.assignable()
        if kind == 0 and len(names) >= 2:
            a, b = r.sample(names, 2)
            self.out.add(f"{a}, {b} = {b}, {a}")
        elif kind == 1:
            first, rest = self.fresh("v"), self.fresh("rest")
            self.out.add(f"{first}, *{rest} = [{self.expr(ctx)}, {self.expr(ctx)}, {self.expr(ctx)}]")
            ctx.vars.append(first)
            self.assign(ctx, f"{first} + len({rest}) + sum({rest})")
        elif kind == 2:
            a, b, c = self.fresh("v"), self.fresh("v"), self.fresh("v")
            self.out.add(f"({a}, {b}), {c} = ({self.expr(ctx)}, {self.expr(ctx)}), {self.expr(ctx)}")
            ctx.vars += [a, b, c]
        elif kind == 3:
            a, mid, b = self.fresh("v"), self.fresh("mid"), self.fresh("v")
            self.out.add(f"{a}, *{mid}, {b} = range({r.randint(2, 6)})")
            ctx.vars += [a, b]
            self.assign(ctx, f"{a} + {b} + len({mid})")
        else:
            a, b = self.fresh("v"), self.fresh("v")
            self.out.add(f"{a}, {b} = {self.expr(ctx)}, {self.expr(ctx)}")
            ctx.vars += [a, b]

    def s_holder(self, ctx: Ctx) -> None:
        """Augmented assignment on attributes and subscripts of one object."""
        h = self.fresh("h")
        self.out.add(f"{h} = Holder({self.expr(ctx)})")
        mul = "*=" if ctx.mult == 1 else "|="
        options = [f"{h}.value += {self.expr(ctx)}", f"{h}.items[{self.atom(ctx)} % 3] -= {self.expr(ctx)}",
                   f'{h}.table["k"] {mul} 2', f'{h}.table.setdefault("n", []).append({self.expr(ctx)})',
                   f"{h}.items[-1], {h}.value = {h}.value, {h}.items[-1]", f"{h}.bump().value ^= 5"]
        for line in self.rng.sample(options, self.rng.randint(1, 3)):
            self.out.add(line)
        if self.rng.random() < 0.5:
            self.out.add(f'print("holder", {h})')
        self.assign(ctx, f'{h}.value + {h}.items[0] + {h}.table["k"]')

    def s_comprehension(self, ctx: Ctx) -> None:
        r = self.rng
        k = r.randint(2, 6)
        x = self.fresh("x")
        inner = ctx.child(vars=ctx.vars + [x], mult=ctx.mult * k)
        e, c = self.expr(inner), self.cond(inner)
        kind = r.randint(0, 6)
        if kind == 0:
            value = f"sum([{e} for {x} in range({k}) if {c}])"
        elif kind == 1:
            d = self.fresh("d")
            self.out.add(f"{d} = {{{x}: {e} for {x} in range({k}) if {c}}}")
            value = f"sum({d}.values()) + len({d})"
        elif kind == 2:
            s = self.fresh("s")
            self.out.add(f"{s} = {{({e}) % 4 for {x} in range({k})}}")
            self.out.add(f'print("set", sorted({s}))')
            value = f"len({s})"
        elif kind == 3:
            value = f"sum({e} for {x} in range({k}) if {c})"
        elif kind == 4:  # walrus inside a comprehension binds in the enclosing scope
            y = self.fresh("y")
            value = f"len([{y} for {x} in range({k}) if ({y} := {e}) % 2 == 0])"
        elif kind == 5:
            z = self.fresh("z")
            value = f"sum([{x} - {z} for {x} in range({k}) for {z} in range({x}) if {x} != {z}])"
        else:
            value = f'int(any(side("{self.fresh("g")}", {x} > {self.atom(ctx)}) for {x} in range({k})))'
        self.assign(ctx, value)

    def s_lambda(self, ctx: Ctx) -> None:
        r = self.rng
        kind = r.randint(0, 2)
        if kind == 0:
            fn = self.fresh("fn")
            self.out.add(f"{fn} = lambda q, k={self.lit()}: q + k - {self.atom(ctx)}")
            self.assign(ctx, f"{fn}({self.expr(ctx)})")
        elif kind == 1:
            self.assign(ctx, f"sorted([{self.expr(ctx)}, {self.expr(ctx)}, {self.expr(ctx)}], key=lambda q: (q % 3, -q))[0]")
        else:
            self.assign(ctx, f"(lambda *a, **kw: len(a) + sum(kw.values()))({self.expr(ctx)}, {self.atom(ctx)}, z={self.expr(ctx)})")

    def s_oneliner(self, ctx: Ctx) -> None:
        r = self.rng
        names = ctx.assignable()
        kind = r.randint(0, 5)
        if not names or kind == 5:
            a, b = self.fresh("v"), self.fresh("v")
            self.out.add(f'{a} = {self.expr(ctx)}; {b} = {a} - 1; print("semi", {a}, {b})')
            ctx.vars += [a, b]
            return
        t = r.choice(names)
        if kind == 0:
            self.out.add(f"if {self.cond(ctx)}: {t} = {self.expr(ctx)}")
        elif kind == 1:
            self.out.add(f"if {self.cond(ctx)}: {t} += 1; {t} -= {self.atom(ctx)}")
        elif kind == 2 and ctx.mult * 4 <= LOOP_CAP:
            x = self.fresh("x")
            self.out.add(f"for {x} in range({r.randint(1, 4)}): {t} += {x}")
        elif kind == 3:
            self.out.add(r.choice([f"while {t} > 60: {t} //= 2", f"while {t} < -60: {t} //= 2"]))
        else:
            n = self.fresh("n")
            self.out.add(f'with tag_cm("{n}") as {n}: {t} += {n}')

    def s_multiline(self, ctx: Ctx) -> None:
        e = lambda: self.expr(ctx)  # noqa: E731
        value = self.rng.choice([
            f"(\n    {e()}\n    + {e()}\n    - {e()}\n)", f"max(\n    {e()},\n    {e()},\n)",
            f"{e()} + \\\n    {e()}", f"[\n    {e()},\n    {e()},\n][{self.atom(ctx)} % 2]",
            f"(\n    {e()}  # a comment inside\n    if {self.cond(ctx)}\n    else {e()}\n)"])
        if self.rng.random() < 0.2:
            self.out.add(f'print(\n    "ml",\n    f\'{{{e()}}}\'\n    "tail",\n)')
        self.assign(ctx, value)

    def s_misc(self, ctx: Ctx) -> None:
        r = self.rng
        kind = r.randint(0, 3)
        if kind == 0:
            self.out.add(f'assert isinstance({self.expr(ctx)}, int), "ints only"')
        elif kind == 1 and ctx.assignable():
            d = self.fresh("tmp")
            self.out.add(f"{d} = {self.expr(ctx)}; {r.choice(ctx.assignable())} += {d}; del {d}")
        elif kind == 2 and ctx.func:
            self.out.add('print("locals", sorted(locals()))')
        else:
            self.out.add('print("globals", sorted(k for k in globals() if not k.startswith("_")))')

    def s_walrus_if(self, ctx: Ctx) -> None:
        w = self.fresh("w")
        with self.out.block(f"if ({w} := {self.expr(ctx)}) > {self.lit()}:"):
            self.body(ctx.child(vars=ctx.vars + [w]), self.rng.randint(1, 2))
        ctx.vars.append(w)

    def s_raise(self, ctx: Ctx) -> None:
        r = self.rng
        raisers = [(fmt, kinds) for fmt, kinds in self.raisers if all(ctx.covers(k) for k in kinds)]
        kinds = [k for k in EXCEPTIONS if ctx.covers(k)]
        if raisers and r.random() < 0.3:
            fmt, _ = r.choice(raisers)
            self.assign(ctx, fmt.format(self.expr(ctx)))
            return
        kind, e, c = r.choice(kinds), self.expr(ctx), self.cond(ctx)
        if kind == "KeyError":
            self.assign(ctx, f"{{{r.randint(0, 3)}: {e}, {r.randint(4, 8)}: {e}}}[{self.expr(ctx)}]")
        elif kind == "IndexError":
            self.assign(ctx, f"[{e}, {e}, {e}][{self.expr(ctx)}]")
        elif kind == "ZeroDivisionError":
            self.assign(ctx, f"{e} // ({self.atom(ctx)} % 3)")
        elif kind == "ValueError" and r.random() < 0.5:
            self.assign(ctx, f'int("1" if {c} else "x")')
        else:
            self.out.add(f"if {c}: raise {kind}({e})")

    def s_loop_exit(self, ctx: Ctx) -> None:
        self.out.add(f"if {self.cond(ctx)}: {self.rng.choice(['break', 'continue'])}")

    def s_global(self, ctx: Ctx) -> None:
        self.out.add(self.rng.choice([f"TOTAL += {self.expr(ctx)}", f"TOTAL = TOTAL % 997 + {self.expr(ctx)}"]))

    def s_return(self, ctx: Ctx) -> None:
        with self.out.block(f"if {self.cond(ctx)}:"):
            self.out.add(f"return ({self.expr(ctx)}) % {MODULUS}")

    def s_closure(self, ctx: Ctx) -> None:
        r = self.rng
        fn, var = self.fresh("bump"), r.choice(ctx.assignable())
        with self.out.block(f"def {fn}(step={self.lit()}):"):
            if r.random() < 0.7:
                self.out.add(f"nonlocal {var}")
                self.out.add(f"{var} += step")
            self.out.add(f"return {var} + step")
        self.assign(ctx, f"{fn}() + {fn}({self.expr(ctx)})")

    def s_if(self, ctx: Ctx) -> None:
        r = self.rng
        c = self.cond(ctx)
        header = f"if (\n    {c}\n    or {self.cond(ctx)}\n):" if r.random() < 0.15 else f"if {c}:"
        with self.out.block(header):
            self.body(ctx.child(), r.randint(1, 3))
        for _ in range(r.choice([0, 0, 1, 2])):
            with self.out.block(f"elif {self.cond(ctx)}:"):
                self.body(ctx.child(), r.randint(1, 2))
        if r.random() < 0.5:
            with self.out.block("else:"):
                self.body(ctx.child(), r.randint(1, 2))

    def s_for(self, ctx: Ctx) -> None:
        r = self.rng
        k = r.randint(2, min(5, LOOP_CAP // ctx.mult))
        x, i = self.fresh("x"), self.fresh("i")
        header, names = r.choice([
            (f"for {x} in range({k}):", [x]), (f"for {x} in range({self.lit()}, {self.lit()} + {k}):", [x]),
            (f"for {x} in reversed(range({self.atom(ctx)} % {k} + 1)):", [x]),
            (f"for {i}, {x} in enumerate([{', '.join(self.expr(ctx) for _ in range(k))}], start=1):", [i, x]),
            (f"for {i}, ({x}, _) in enumerate(zip(range({k}), range(9))):", [i, x])])
        with self.out.block(header):
            self.body(ctx.child(vars=ctx.vars + names, mult=ctx.mult * k, in_loop=True), r.randint(1, 4))
        if r.random() < 0.3:
            with self.out.block("else:"):
                self.body(ctx.child(), 1)

    def s_while(self, ctx: Ctx) -> None:
        r = self.rng
        k = r.randint(2, min(5, LOOP_CAP // ctx.mult))
        w = self.fresh("w")
        self.out.add(f"{w} = 0")
        ctx.vars.append(w)
        inner = ctx.child(mult=ctx.mult * k, in_loop=True, frozen=ctx.frozen | {w})
        if r.random() < 0.5:
            with self.out.block(f"while {w} < {k}:"):
                self.out.add(f"{w} += 1")
                self.body(inner, r.randint(1, 3))
            if r.random() < 0.4:
                with self.out.block("else:"):
                    self.body(ctx.child(), 1)
        else:
            with self.out.block("while True:"):
                self.out.add(f"{w} += 1")
                self.out.add(f"if {w} > {k}: break")
                self.body(inner, r.randint(1, 3))

    def s_try(self, ctx: Ctx) -> None:
        r = self.rng
        handlers = r.sample([("ValueError",), ("KeyError", "IndexError"), ("ZeroDivisionError",), ("AppError",),
                             ("TypeError", "ValueError")], r.randint(0, 2))
        if r.random() < 0.4:
            handlers.append(("Exception",))
        caught = frozenset(k for h in handlers for k in h)
        with self.out.block("try:"):
            inner = ctx.child(catches=ctx.catches | caught)
            self.body(inner, r.randint(1, 2))
            if caught and r.random() < 0.8:
                self.s_raise(inner)
            self.body(inner, r.randint(0, 1))
        for kinds in handlers:
            e = self.fresh("err")
            spec = kinds[0] if len(kinds) == 1 else f"({', '.join(kinds)})"
            with self.out.block(f"except {spec} as {e}:"):
                self.out.add(f'print("caught", type({e}).__name__, {e}.args)')
                self.body(ctx.child(), r.randint(0, 1))
                if all(ctx.covers(k) for k in kinds) and r.random() < 0.4:
                    self.out.add(r.choice(["raise", f"raise AppError({e}.args) from {e}"]
                                          if ctx.covers("AppError") else ["raise"]))
        if handlers and r.random() < 0.3:
            with self.out.block("else:"):
                self.body(ctx.child(), 1)
        if not handlers or r.random() < 0.5:
            with self.out.block("finally:"):
                self.out.add(f'print("finally", "{self.fresh("t")}")')
                self.body(ctx.child(), r.randint(0, 1))

    def s_with(self, ctx: Ctx) -> None:
        r = self.rng
        n, m = self.fresh("n"), self.fresh("n")
        header, names, caught = r.choice([
            (f'with tag_cm("{n}") as {n}:', [n], ()),
            ("with Suppress(ValueError, KeyError):", [], ("ValueError", "KeyError")),
            (f'with tag_cm("{n}") as {n}, Suppress(ZeroDivisionError):', [n], ("ZeroDivisionError",)),
            (f'with (\n    tag_cm("{n}") as {n},\n    tag_cm("{m}") as {m},\n):', [n, m], ())])
        with self.out.block(header):
            inner = ctx.child(vars=ctx.vars + names, catches=ctx.catches | frozenset(caught))
            self.body(inner, r.randint(1, 2))
            if caught and r.random() < 0.7:
                self.s_raise(inner)

    def s_match(self, ctx: Ctx) -> None:
        r = self.rng
        a, b = self.fresh("m"), self.fresh("m")
        cases = r.choice([
            (f"({self.expr(ctx)}, {self.expr(ctx)} % 3)",
             [("(0, _)", []), (f"({a}, 1) if {a} > {self.lit()}", [a]), ("(_, 2) | (1, _)", [])]),
            (self.expr(ctx), [("0 | 1", []), (f"int({a}) if {a} < 0", [a]), (f"{a} if {a} > 7", [a])]),
            (f"[{self.expr(ctx)}, {self.expr(ctx)}, {self.expr(ctx)}][:{self.atom(ctx)} % 4]",
             [("[]", []), (f"[{a}]", [a]), (f"[{a}, *{b}]", [a])]),
            (f'{{"k": {self.expr(ctx)}, "n": {self.expr(ctx)}}}',
             [('{"k": 0}', []), (f'{{"k": {a}, **{b}}} if {a} > 2', [a])])])
        subject, patterns = cases
        if r.random() < 0.7:
            patterns = patterns + [("_", [])]
        with self.out.block(f"match {subject}:"):
            for pattern, bound in patterns:
                with self.out.block(f"case {pattern}:"):
                    self.body(ctx.child(vars=ctx.vars + bound), r.randint(1, 2))


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


class ProgramBuilder(StatementGenerator):
    """Lays out one program: header, prelude, feature templates, main() and the module tail."""

    def __init__(self, seed: int, small: bool = False) -> None:
        super().__init__(random.Random(seed), Lines())
        self.seed = seed
        self.small = small
        self.future = self.rng.random() < 0.3
        self.features: list[PoolFunction] = []  # called once each by main()
        self.introspect: list[str] = []  # plain functions whose metadata main() prints

    def emit(self, template: str, **values) -> str:
        """Add a block of code written with $placeholders; returns the text added."""
        text = Template(textwrap.dedent(template).strip("\n")).substitute(values)
        self.out.add(text)
        self.out.add("\n")
        return text

    def feature(self, name: str, arity: int, cost: int) -> None:
        fn = PoolFunction(name, arity, cost)
        self.pool.append(fn)
        self.features.append(fn)

    def build(self) -> GeneratedProgram:
        r = self.rng
        self.header()
        self.out.add(PRELUDE)
        templates = [self.t_recursion, self.t_generator, self.t_async, self.t_class, self.t_decorator,
                     self.t_chain, self.t_finally, self.t_match, self.t_counter, self.t_probe,
                     self.t_keyword_parens, self.t_deep]
        if sys.version_info >= (3, 11):
            templates.append(self.t_groups)
        if self.small:
            chosen = r.sample(templates, r.randint(1, 2)) + [self.t_plain] * r.randint(1, 2)
        else:
            chosen = r.sample(templates, r.randint(3, 7)) + [self.t_plain] * r.randint(2, 4)
        r.shuffle(chosen)
        for template in chosen:
            template()
        self.main()
        raises = self.tail()
        return GeneratedProgram(self.seed, "\n".join(self.out.lines).rstrip("\n") + "\n", raises)

    def header(self) -> None:
        r = self.rng
        if r.random() < 0.2:
            self.out.add("#!/usr/bin/env python3\n# -*- coding: utf-8 -*-")
        if r.random() < 0.6:
            self.out.add(r.choice([f'"""Generated program {self.seed}."""',
                                   f'"""Generated program {self.seed}.\n\nIt prints what it computes.\n"""']))
        if self.future:
            self.out.add("from __future__ import annotations")
        if r.random() < 0.1:  # no simple statement at module level before the first compound one
            self.out.add("try:\n    import asyncio\nexcept ImportError:\n    asyncio = None")
            self.out.add("import contextlib, functools, inspect, sys")
        else:
            self.out.add("import asyncio\nimport contextlib\nimport functools\nimport inspect\nimport sys")

    def main(self) -> None:
        r = self.rng
        self.cost = 0
        results = []
        with self.out.block("def main(seed_value):"):
            self.out.add('"""Call every feature once and combine the results."""')
            ctx = Ctx(vars=["seed_value"], func="main")
            for fn in self.features:
                if r.random() < 0.5:
                    self.stmt(ctx)
                result = self.fresh("r")
                args = ", ".join(self.expr(ctx) for _ in range(fn.arity))
                self.out.add(f'{result} = {fn.name}({args})\nprint("{fn.name}", {result})')
                ctx.vars.append(result)
                results.append(result)
            for name in self.introspect:
                self.out.add(r.choice([f'print("meta", {name}.__name__, {name}.__qualname__, {name}.__doc__)',
                                       f'print("signature", inspect.signature({name}))',
                                       f'print("annotations", {name}.__annotations__)']))
            self.out.add(f"return ({' + '.join(results) or '0'}) % {MODULUS}")
        self.out.add("\n")

    def tail(self) -> str | None:
        r = self.rng
        if r.random() < 0.3:
            self.out.add(f'if __name__ == "__main__":\n    RESULT = main({self.lit()})\nelse:\n    RESULT = -1')
        else:
            self.out.add(f"RESULT = main({self.lit()})")
        self.cost = 0
        self.body(Ctx(vars=["RESULT"], global_ok=True), r.randint(0, 3))
        self.out.add('print("final", RESULT, TOTAL)')
        if r.random() < 0.12:
            code, raises = r.choice(ENDINGS)
            self.out.add(Template(code).substitute(k=r.randint(0, 3)))
            self.out.lines.append("")
            return raises
        self.out.lines.append("")
        return None

    # -- feature templates: each defines functions and registers one that main() calls ---------------

    def t_plain(self) -> None:
        r = self.rng
        name = self.fresh("f")
        self.cost = 0
        decorators = r.choice([[], [], [], ["@logged"], ["@repeat(2)"], ["@logged", "@repeat(2)"],
                               ["@functools.lru_cache(maxsize=None)"]])
        signature = r.choice(["(a, b)", "(a, b=4)", "(a, *rest, b=2, **kw)", "(a: int, b: int = 3) -> int"])
        for decorator in decorators:
            self.out.add(decorator)
        with self.out.block(f"def {name}{signature}:"):
            if r.random() < 0.4:
                self.out.add(r.choice([f'"""Plain function {name}."""',
                                       f'"""Plain function {name}.\n\n    Returns an int.\n    """']))
            ctx = Ctx(vars=["a", "b"], func=name, returns=True, global_ok=r.random() < 0.3)
            if ctx.global_ok:
                self.out.add("global TOTAL")
            if "*rest" in signature:
                self.out.add("b += len(rest) + len(kw)")
            self.body(ctx, r.randint(2, 4) if self.small else r.randint(2, 6))
            self.out.add(f"return ({self.expr(ctx)}) % {MODULUS}")
        self.out.add("\n")
        times = 2 if "@repeat(2)" in decorators else 1
        self.feature(name, 2, (self.cost + 1) * times)
        if r.random() < 0.5:
            self.introspect.append(name)

    def t_recursion(self) -> None:
        r = self.rng
        kind, name = r.randint(0, 2), self.fresh("rec")
        if kind == 0:
            limit = r.randint(4, 8)
            self.emit('''
                def $name(n, acc=0):
                    """Recurses at most $limit levels."""
                    if n > $limit:
                        return $name(n % $limit, acc)
                    if n <= 0:
                        return acc % $mod
                    if n % $k == 0: acc -= n
                    return $name(n - 1, acc + n * $k)
                ''', name=name, limit=limit, k=r.randint(2, 5), mod=MODULUS)
            self.feature(name, 1, limit + 2)
        elif kind == 1:
            self.emit('''
                def ${name}_even(n):
                    if n == 0:
                        return True
                    return ${name}_odd(n - 1)


                def ${name}_odd(n):
                    return False if n == 0 else ${name}_even(n - 1)


                def $name(n):
                    n = abs(n) % $limit
                    return 1 if ${name}_even(n) else 0
                ''', name=name, limit=r.randint(5, 15))
            self.feature(name, 1, 16)
        else:
            cache = "@functools.lru_cache(maxsize=None)\n" if r.random() < 0.3 else ""
            self.emit('''
                ${cache}def ${name}_fib(n):
                    return n if n < 2 else ${name}_fib(n - 1) + ${name}_fib(n - 2)


                def $name(n):
                    return ${name}_fib(abs(n) % 9)
                ''', name=name, cache=cache)
            self.feature(name, 1, 60)

    def t_generator(self) -> None:
        r = self.rng
        name = self.fresh("gen")
        k = r.randint(2, 3)
        self.emit('''
            def ${name}_source(limit):
                total = 0
                for i in range(limit):
                    if i % $k == $j:
                        continue
                    got = yield i * $m + total
                    if got is not None:
                        total += got
                    if total > $cap:
                        break
                else:
                    total -= 1
                return total


            def ${name}_relay(limit):
                result = yield from ${name}_source(limit)
                yield -result


            def ${name}_guarded():
                seen = []
                while True:
                    try:
                        value = yield len(seen)
                    except ValueError as error:
                        seen.append(-len(error.args))
                        continue
                    if value is None:
                        return seen
                    seen.append(value)


            def $name(a):
                g = ${name}_source(abs(a) % 4 + 3)
                first = next(g)
                try:
                    second = g.send(a % 5)
                except StopIteration as stop:
                    second = stop.value
                rest = list(g)
                relayed = list(${name}_relay(abs(a) % 5))
                squares = (x * x for x in relayed if x)
                guard = ${name}_guarded()
                next(guard)
                guard.send(a % 7)
                thrown = guard.throw(ValueError("in", a))
                try:
                    guard.send(None)
                except StopIteration as stop:
                    print("guarded", thrown, stop.value)
                guard.close()
                print("gen", first, second, rest, relayed, sum(squares))
                return (first + second + sum(rest)) % $mod
            ''', name=name, k=k, j=r.randint(0, k - 1), m=r.randint(1, 3), cap=r.randint(5, 30), mod=MODULUS)
        self.feature(name, 1, 40)

    def t_async(self) -> None:
        r = self.rng
        name = self.fresh("aio")
        self.emit('''
            class ${name}_Gate:
                async def __aenter__(self):
                    print("gate open")
                    await asyncio.sleep(0)
                    return self

                async def __aexit__(self, kind, value, tb):
                    print("gate close", kind is not None)
                    return False


            async def ${name}_work(i, steps):
                for s in range(steps):
                    await asyncio.sleep(0)
                    print("work", i, s)
                if i == $bad:
                    raise ValueError(i)
                return i * $k


            async def ${name}_ticks(n):
                for i in range(n):
                    await asyncio.sleep(0)
                    yield i


            async def ${name}_main(n):
                results = await asyncio.gather(*(${name}_work(i, (i * 7 + 1) % 3) for i in range(n)),
                                               return_exceptions=True)
                seen = [x async for x in ${name}_ticks(n) if x != 1]
                async with ${name}_Gate() as gate:
                    task = asyncio.create_task(${name}_work(9, 1))
                    other = await ${name}_work(8, 2)
                    done = await task
                try:
                    await ${name}_work($bad, 1)
                except ValueError as error:
                    print("async caught", error.args)
                return [r if isinstance(r, int) else type(r).__name__ for r in results], seen, other + done


            def $name(a):
                results, seen, extra = asyncio.run(${name}_main(abs(a) % 3 + 2))
                print("async", results, seen, extra)
                return (len(results) + sum(seen) + extra) % $mod
            ''', name=name, bad=r.randint(-1, 3), k=r.randint(2, 5), mod=MODULUS)
        self.feature(name, 1, 80)

    def t_class(self) -> None:
        r = self.rng
        name = self.fresh("Acc")
        self.emit('''
            class $name:
                """Accumulates clamped values."""
                scale = $k

                def __init__(self, start=0):
                    self.total = start
                    self.items = []

                def __repr__(self):
                    return f"$name({self.total}, {self.items})"

                def add(self, x):
                    self.total += x * self.scale
                    self.items.append(x)
                    return self

                @property
                def size(self):
                    return len(self.items)

                @size.setter
                def size(self, n):
                    del self.items[n:]

                @staticmethod
                def clamp(x, lo=-50, hi=50):
                    return lo if x < lo else hi if x > hi else x

                @classmethod
                def build(cls, *values, **options):
                    acc = cls(options.get("start", 0))
                    for v in values:
                        acc.add(cls.clamp(v))
                    return acc


            class ${name}_Sub($name):
                def add(self, x):
                    print("sub add", x)
                    return super().add(x + 1)


            def use_$name(a, b):
                acc = ${name}_Sub.build(a % 100, b % 100, $k, start=3)
                acc.add(a % 9).add(b % 9)
                acc.total -= 1
                acc.items[0] *= 2
                acc.items[-1] += acc.size
                acc.size = 3
                print("class", acc, acc.size, $name.clamp(a * 10), $name.__doc__, type(acc).__name__)
                return acc.total % $mod
            ''', name=name, k=r.randint(1, 3), mod=MODULUS)
        self.feature(f"use_{name}", 2, 30)

    def t_decorator(self) -> None:
        r = self.rng
        name = self.fresh("dec")
        outer = r.choice(["@logged", "@repeat(2)\n@logged", "@logged\n@repeat(2)"])
        self.emit('''
            $outer
            def $name(a, b=2, *rest, scale=1, **extra):
                """Decorated: $name."""
                total = a + b + sum(rest)
                for key, value in sorted(extra.items()):
                    total += value if key != "skip" else 0
                return (total * scale) % $mod


            def use_$name(a, b):
                first = $name(a)
                second = $name(a, b, 1, 2, scale=$k, extra_one=3, skip=4)
                print("decorated", $name.__name__, $name.__doc__, first, second)
                return (first + second) % $mod
            ''', name=name, outer=outer, k=r.randint(1, 3), mod=MODULUS)
        self.feature(f"use_{name}", 2, 20)

    def t_chain(self) -> None:
        """An exception raised three calls deep, re-raised, wrapped with `from`, caught at the top."""
        r = self.rng
        name = self.fresh("chain")
        k, k2 = r.randint(2, 4), r.randint(3, 5)
        self.emit('''
            class ${name}_Deep(AppError):
                def __init__(self, code):
                    super().__init__(f"deep {code}")
                    self.code = code


            def ${name}_deep(x):
                if x % $k == $j:
                    raise ${name}_Deep(x)
                if x % $k2 == $j2:
                    raise KeyError(x)
                return x * 2


            def ${name}_middle(x):
                try:
                    return ${name}_deep(x) + 1
                finally:
                    print("middle finally", x)


            def ${name}_relay(x):
                try:
                    return ${name}_middle(x)
                except KeyError as error:
                    print("relay re-raises", error.args)
                    raise
                except ${name}_Deep as error:
                    raise AppError(f"wrapped {error.code}") from error


            def $name(a):
                total = 0
                for x in range(a % 3, a % 3 + 5):
                    try:
                        total += ${name}_relay(x)
                    except AppError as error:
                        print("top caught", type(error).__name__, error, type(error.__cause__).__name__)
                    except KeyError as error:
                        print("top key", error)
                        continue
                    else:
                        total += 1
                    finally:
                        total += 10
                return total % $mod
            ''', name=name, k=k, j=r.randint(0, k - 1), k2=k2, j2=r.randint(0, k2 - 1), mod=MODULUS)
        self.raisers.append((f"{name}_relay({{}})", frozenset({"AppError", "KeyError"})))
        self.feature(name, 1, 60)

    def t_finally(self) -> None:
        """`return` and `break` inside `finally` swallow exceptions."""
        r = self.rng
        name = self.fresh("fin")
        k = r.randint(1, 6)
        self.emit('''
            def ${name}_swallow(x):
                try:
                    if x > $k:
                        raise ValueError(x)
                    return x * 2
                finally:
                    print("finally", x)
                    if x % 2 == 0:
                        return -x


            def $name(a):
                out = []
                for x in (a % 5, $k + 1, $k + 2):
                    try:
                        out.append(${name}_swallow(x))
                    except ValueError as error:
                        out.append(-1000 - error.args[0])
                for i in range(4):
                    try:
                        if i == a % 3:
                            raise KeyError(i)
                        out.append(i)
                    finally:
                        if i == a % 3:
                            break
                print("swallow", out)
                return sum(out) % $mod
            ''', name=name, k=k, mod=MODULUS)
        self.feature(name, 1, 25)

    def t_match(self) -> None:
        r = self.rng
        name = self.fresh("shape")
        items = ["0", "-3", "[a, 2, 3]", '{"kind": "pt", "x": a, "z": 1}', f"{name}_Pt(0, b)",
                 f"{name}_Pt(a, a)", '"text"', "4.5", "(1,)", "b % 5", "[b]", '{"kind": "other"}']
        self.emit('''
            class ${name}_Pt:
                __match_args__ = ("x", "y")

                def __init__(self, x, y):
                    self.x = x
                    self.y = y


            def ${name}_classify(item):
                match item:
                    case 0 | 1:
                        return "small"
                    case int(n) if n < 0:
                        return f"negative {n}"
                    case [x, y, *rest]:
                        return f"sequence {x} {y} {len(rest)}"
                    case [single]:
                        return f"single {single}"
                    case {"kind": "pt", "x": x, **others}:
                        return f"mapping {x} {sorted(others)}"
                    case ${name}_Pt(x=0, y=y):
                        return f"on axis {y}"
                    case ${name}_Pt(x, y) if x == y:
                        return "diagonal"
                    case str() as s:
                        return "string " + s
                    case float() | (_,):
                        return "float or 1-tuple"
                    case _:
                        return "other"


            def $name(a, b):
                labels = [${name}_classify(item) for item in [$items]]
                print("match", labels)
                return len(labels) + sum(len(label) for label in labels)
            ''', name=name, items=", ".join(r.sample(items, r.randint(4, len(items)))))
        self.feature(name, 2, 30)

    def t_counter(self) -> None:
        """Closures with nonlocal, a global, lambdas with defaults bound in a loop."""
        name = self.fresh("counter")
        self.emit('''
            def ${name}_make(start):
                count = start

                def step(by=1):
                    nonlocal count
                    count += by
                    return count

                def peek():
                    return count

                return step, peek


            def $name(a):
                global TOTAL
                step, peek = ${name}_make(a % 50)
                for i in range($n):
                    step(i)
                TOTAL += peek()
                fns = [lambda k=i: k * 2 + a % 7 for i in range(3)]
                late = [lambda: i for i in range(3)]
                print("counter", peek(), [f() for f in fns], [f() for f in late], TOTAL)
                return peek() % $mod
            ''', name=name, n=self.rng.randint(1, 4), mod=MODULUS)
        self.feature(name, 1, 15)

    def t_probe(self) -> None:
        """Dunder methods that print: each must run exactly as often as in the plain program."""
        name = self.fresh("Probe")
        self.emit('''
            class $name:
                def __init__(self, n):
                    self.n = n

                def __bool__(self):
                    print("bool", self.n)
                    return self.n > 0

                def __len__(self):
                    print("len", self.n)
                    return abs(self.n)

                def __iter__(self):
                    print("iter", self.n)
                    return iter(range(abs(self.n) % 4))

                def __getitem__(self, i):
                    print("getitem", i)
                    return i * self.n

                def __getattr__(self, attr):
                    print("getattr", attr)
                    return len(attr)

                def __repr__(self):
                    raise RuntimeError("repr of a probe must never be needed")


            def use_$name(a):
                p = $name(a % 5 - 2)
                if p:
                    print("truthy")
                n = len(p)
                items = [x for x in p]
                v = p[2] + p.missing
                q = p and $name(1)
                r = not q
                print("probe", n, items, v, r)
                return (n + sum(items) + v) % $mod
            ''', name=name, mod=MODULUS)
        self.feature(f"use_{name}", 1, 20)

    def t_groups(self) -> None:
        name = self.fresh("groups")
        self.emit('''
            def $name(a):
                try:
                    raise ExceptionGroup("many", [ValueError(a), KeyError(a % 3), TypeError("t")])
                except* ValueError as group:
                    print("values", [e.args for e in group.exceptions])
                except* (KeyError, TypeError) as group:
                    print("others", sorted(type(e).__name__ for e in group.exceptions))
                return a % $mod
            ''', name=name, mod=MODULUS)
        self.feature(name, 1, 5)


def generate(seed: int, small: bool = False) -> GeneratedProgram:
    """The program for `seed` with the exception it raises on purpose (if any); `small` programs use fewer
    features (quicker to instrument, for the test suite)."""
    return ProgramBuilder(seed, small).build()

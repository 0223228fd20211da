"""Statements: simple ones, one-liners, and every compound statement."""

from __future__ import annotations

from .context import EXCEPTIONS, LOOP_CAP, MODULUS, Ctx
from .expressions import ExpressionGenerator


class StatementGenerator(ExpressionGenerator):
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

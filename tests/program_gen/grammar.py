"""The grammar's corners for the program generator: statements and templates that the transform must
embed its hooks into without changing what the code means.

- Every condition position (`if`, `elif`, `while` tests, comprehension `if`s, the test of a conditional
  expression, `assert`, match guards) holding a walrus, a conditional expression and a lambda-containing
  expression: bare where the grammar takes one as the whole test, parenthesised where it must be.
- Keywords directly followed by a parenthesis: `if(`, `elif(`, `while(`, `return(`, `assert(`, `del(`,
  `in(`, `with(`, `yield(`, `await(`, `not(`, `lambda:(`.
- Deep nesting within what CPython compiles: long sums and `and` chains, nested lists, calls and
  conditional expressions, a dict literal of 2 000 entries, an `elif` chain of hundreds of branches.

`GrammarEdges` is mixed into program_gen.StatementGenerator and uses its rng, out, fresh, expr, cond, atom,
lit, body and assign, and the class constants MODULUS and LOOP_CAP. Everything stays deterministic,
terminating and int-valued, like the rest of the generator.
"""

from __future__ import annotations

FORMS = ("walrus", "ifexp", "lambda")
POSITIONS = ("if", "elif", "while", "comprehension", "ifexp", "assert", "guard")
# the forms the grammar accepts bare as the whole test at each position (the others need parentheses)
BARE = {"if": set(FORMS), "elif": set(FORMS), "while": set(FORMS), "guard": set(FORMS),
        "assert": {"ifexp", "lambda"}, "comprehension": set(), "ifexp": set()}
COMPOUND = {"if", "elif", "while", "guard"}


class GrammarEdges:
    """Statements and templates for the grammar's corners (see the module docstring)."""

    # -- a walrus, a conditional expression or a lambda as the test of every condition position ---------

    def edge_test(self, ctx, position: str, form: str) -> tuple[str, str | None]:
        """A test of `form` for `position`, and the name a walrus in it binds (else None)."""
        r = self.rng
        bare = form in BARE[position] and r.random() < 0.7
        if form == "walrus":
            w, value = self.fresh("w"), self.expr(ctx)
            if bare:
                return f"{w} := {value}", w
            return r.choice([f"({w} := {value}) > {self.lit()}", f"({w} := {value})",
                             f"{self.lit()} <= ({w} := {value})"]), w
        if form == "ifexp":
            inner = f"{self.expr(ctx)} if {self.cond(ctx)} else {self.expr(ctx)}"
            return (inner if bare else r.choice([f"({inner})", f"({inner}) > {self.lit()}"])), None
        if bare:  # a lambda is always true
            return f"lambda: {self.expr(ctx)}", None
        return r.choice([f"(lambda q: q > {self.lit()})({self.expr(ctx)})", f"(lambda: {self.cond(ctx)})()",
                         f"sorted([{self.expr(ctx)}, {self.expr(ctx)}], key=lambda q: -q)[0] > {self.lit()}"]), None

    def s_condition(self, ctx) -> None:
        r = self.rng
        positions = [p for p in POSITIONS if ctx.depth < 3 or p not in COMPOUND]
        if ctx.mult * 5 > self.LOOP_CAP:
            positions = [p for p in positions if p not in ("while", "comprehension")]
        position, form = r.choice(positions), r.choice(FORMS)
        getattr(self, f"_test_in_{position}")(ctx, form)

    def _test_in_if(self, ctx, form: str) -> None:
        test, w = self.edge_test(ctx, "if", form)
        with self.out.block(f"if {test}:"):
            self.body(ctx.child(vars=ctx.vars + [w] if w else list(ctx.vars)), self.rng.randint(1, 2))
        if self.rng.random() < 0.4:
            with self.out.block("else:"):
                self.body(ctx.child(vars=ctx.vars + [w] if w else list(ctx.vars)), 1)
        if w:  # the test always runs
            ctx.vars.append(w)

    def _test_in_elif(self, ctx, form: str) -> None:
        with self.out.block(f"if {self.cond(ctx)}:"):
            self.body(ctx.child(), 1)
        test, w = self.edge_test(ctx, "elif", form)
        with self.out.block(f"elif {test}:"):  # a walrus here binds only when the `if` failed
            self.body(ctx.child(vars=ctx.vars + [w] if w else list(ctx.vars)), self.rng.randint(1, 2))
        if self.rng.random() < 0.5:
            with self.out.block("else:"):
                self.body(ctx.child(), 1)

    def _test_in_while(self, ctx, form: str) -> None:
        r = self.rng
        k, n = r.randint(2, 4), self.fresh("n")
        self.out.add(f"{n} = 0")
        ctx.vars.append(n)
        w, guard = None, None
        if form == "walrus":
            w = self.fresh("w")
            test = r.choice([f"{w} := {k} - {n}", f"({w} := {n} + 1) <= {k}"])  # bare when it counts down
        elif form == "ifexp":
            test = r.choice([f"{n} < {k} if {self.cond(ctx)} else {n} < {k - 1}",
                             f"({n} if {self.cond(ctx)} else {n} + 1) < {k}"])
        else:
            test = r.choice([f"(lambda q: q < {k})({n})", f"lambda: {n}"])
            guard = f"if {n} > {k}: break" if test.startswith("lambda") else None
        inner = ctx.child(vars=ctx.vars + ([w] if w else []), mult=ctx.mult * (k + 1), in_loop=True,
                          frozen=ctx.frozen | {n} | ({w} if w else set()))
        with self.out.block(f"while {test}:"):
            self.out.add(f"{n} += 1")
            if guard:
                self.out.add(guard)
            self.body(inner, r.randint(1, 2))
        if w:
            ctx.vars.append(w)

    def _test_in_comprehension(self, ctx, form: str) -> None:
        r = self.rng
        k, x = r.randint(2, 5), self.fresh("x")
        inner = ctx.child(vars=ctx.vars + [x], mult=ctx.mult * k)
        test, _ = self.edge_test(inner, "comprehension", form)  # a walrus binds only if the loop runs
        self.assign(ctx, r.choice([f"sum([{self.expr(inner)} for {x} in range({k}) if {test}])",
                                   f"len({{{x}: {x} for {x} in range({k}) if {test}}})",
                                   f"sum({x} for {x} in range({k}) if {test})"]))

    def _test_in_ifexp(self, ctx, form: str) -> None:
        test, w = self.edge_test(ctx, "ifexp", form)
        self.assign(ctx, f"({self.expr(ctx)} if {test} else {self.expr(ctx)})")
        if w:
            ctx.vars.append(w)

    def _test_in_assert(self, ctx, form: str) -> None:
        """Asserts that always hold, whatever the values."""
        r = self.rng
        e, w = self.expr(ctx), None
        if form == "walrus":
            w = self.fresh("w")
            test = r.choice([f"({w} := {e}) == {w}", f"isinstance(({w} := {e}), int)", f"({w} := {e}) is not None"])
        elif form == "ifexp":
            test = r.choice([f"isinstance({e}, int) if {self.cond(ctx)} else True",
                             f"(True if {self.cond(ctx)} else {e} == {e})"])
        else:
            test = r.choice([f"lambda: {e}", f"(lambda q: q == q)({e})", f"all(map(lambda q: q == q, [{e}, 1]))"])
        self.out.add(f"assert {test}" + r.choice(["", ', "never fails"']))
        if w:
            ctx.vars.append(w)

    def _test_in_guard(self, ctx, form: str) -> None:
        r = self.rng
        m = self.fresh("m")
        case_ctx = ctx.child(vars=ctx.vars + [m])
        test, w = self.edge_test(case_ctx, "guard", form)
        with self.out.block(f"match {self.expr(ctx)}:"):
            with self.out.block(r.choice([f"case {m} if {test}:", f"case int({m}) if {test}:"])):
                self.body(ctx.child(vars=case_ctx.vars + ([w] if w else [])), r.randint(1, 2))
            with self.out.block("case _:"):
                self.body(ctx.child(), 1)

    # -- keywords directly followed by a parenthesis ------------------------------------------------------

    def s_keyword_paren(self, ctx) -> None:
        r = self.rng
        compound = ctx.depth < 3
        kinds = ["assert", "del", "in", "not", "lambda"] + (["if", "while", "for", "with"] if compound else [])
        if ctx.returns and ctx.depth > 0:
            kinds.append("return")
        kind = r.choice(kinds)
        if kind == "if":
            with self.out.block(f"if({self.cond(ctx)}):"):
                self.body(ctx.child(), 1)
            if r.random() < 0.7:
                with self.out.block(f"elif({self.cond(ctx)}):"):
                    self.body(ctx.child(), 1)
            with self.out.block(r.choice([f"elif not({self.cond(ctx)}):", "else:"])):
                self.body(ctx.child(), 1)
        elif kind == "while" and ctx.mult * 4 <= self.LOOP_CAP:
            n, k = self.fresh("n"), r.randint(1, 3)
            self.out.add(f"{n} = 0")
            ctx.vars.append(n)
            with self.out.block(f"while({n} < {k}):"):
                self.out.add(f"{n} += 1")
                self.body(ctx.child(mult=ctx.mult * (k + 1), in_loop=True, frozen=ctx.frozen | {n}), 1)
        elif kind == "for" and ctx.mult * 3 <= self.LOOP_CAP:
            x = self.fresh("x")
            with self.out.block(f"for {x} in(range({r.randint(1, 3)})):"):
                self.body(ctx.child(vars=ctx.vars + [x], mult=ctx.mult * 3, in_loop=True), 1)
        elif kind == "with":
            n = self.fresh("n")
            header = r.choice([f'with(tag_cm("{n}")) as {n}:', f'with(tag_cm("{n}") as {n}):'])
            with self.out.block(header):
                self.body(ctx.child(vars=ctx.vars + [n]), 1)
        elif kind == "return":
            with self.out.block(f"if({self.cond(ctx)}):"):
                self.out.add(f"return({self.expr(ctx)}) % {self.MODULUS}")
        elif kind == "assert":
            self.out.add(f"assert(isinstance({self.expr(ctx)}, int))")
        elif kind == "del":
            a, b = self.fresh("tmp"), self.fresh("tmp")
            self.out.add(f"{a} = {self.expr(ctx)}; {b} = {a} + 1")
            self.out.add(r.choice([f"del({a}, {b})", f"del({a}); del({b})", f"del({a}), {b}"]))
        elif kind == "not":
            self.assign(ctx, r.choice([f"int(not({self.cond(ctx)}))", f"(1 if not({self.cond(ctx)}) else 2)"]))
        elif kind == "lambda":
            fn = self.fresh("fn")
            self.out.add(f"{fn} = lambda:({self.expr(ctx)})")
            self.assign(ctx, r.choice([f"{fn}()", f"(lambda:({self.expr(ctx)}))() + {fn}()"]))
        else:  # "in", and loops where the budget is spent
            self.assign(ctx, r.choice([f"int({self.expr(ctx)} in({self.lit()}, {self.lit()}, {self.lit()}))",
                                       f"int({self.expr(ctx)} not in({self.lit()}, {self.lit()}))"]))

    def t_keyword_parens(self) -> None:
        """`yield(`, `await(` and `return(` need a generator and a coroutine."""
        r = self.rng
        name = self.fresh("paren")
        self.emit('''
            def ${name}_gen(n):
                total = yield(n)
                while(total is not None and total < $k):
                    total = yield(total + 1)
                return(total)


            async def ${name}_co(x):
                await(asyncio.sleep(0))
                doubled = await(${name}_twice(x))
                return(doubled + 1)


            async def ${name}_twice(x):
                return(x * 2)


            def $name(a):
                g = ${name}_gen(a % 5)
                first = next(g)
                seen = [first]
                try:
                    while(len(seen) < 10):
                        seen.append(g.send(seen[-1] + 1))
                except StopIteration as stop:
                    seen.append(stop.value)
                done = asyncio.run(${name}_co(a % 7))
                pick = (lambda:(a % 3))()
                print("parens", seen, done, pick, not(a), a in(1, 2, 3))
                return(sum(seen) + done + pick) % $mod
            ''', name=name, k=r.randint(3, 12), mod=self.MODULUS)
        self.feature(name, 1, 25)

    # -- deep nesting --------------------------------------------------------------------------------------

    def t_deep(self) -> None:
        """One to three of the deep forms at full size, the others shallow (LibCST takes seconds on each)."""
        r = self.rng
        name = self.fresh("deep")
        deep = set(r.sample(["sum", "lists", "chain", "ifexp", "calls", "dict", "elif"], r.randint(1, 3)))
        size = lambda kind, big, small=2: r.choice(big) if kind in deep else small  # noqa: E731
        terms, lists, calls = size("sum", [200, 600, 1500], 3), size("lists", [60, 120]), size("calls", [40, 90])
        total = "a" + "".join(f" {r.choice('+-')} {r.choice(['a', str(r.randint(1, 9))])}" for _ in range(terms - 1))
        chain = " and ".join(f"a > {-i}" for i in range(size("chain", [100, 300])))
        levels = size("ifexp", [40, 60])
        ifexp = "".join(f"({i} if a % {i + 2} == 0 else " for i in range(levels)) + "-1" + ")" * levels
        entries = ", ".join(f"{i}: {i * 7 % 13}" for i in range(size("dict", [2000, 3000], 5)))
        branches = "".join(f"\n    elif a == {i}: branch = {i * 3}" for i in range(1, size("elif", [300, 600])))
        self.emit('''
            def $name(a):
                total = $total
                nested = $open(a % 7)$close
                depth = 0
                while isinstance(nested, list):
                    nested = nested[0]
                    depth += 1
                flag = $chain
                pick = $ifexp
                wrapped = $calls_open(a)$calls_close
                table = {$entries}
                if a == 0: branch = 0$branches
                else: branch = -1
                print("deep", total % $mod, depth, nested, flag, pick, wrapped, table[a % len(table)], branch)
                return (total + depth + pick + wrapped + table[a % len(table)] + branch) % $mod
            ''', name=name, total=total, open="[" * lists, close="]" * lists, chain=chain, ifexp=ifexp,
                  calls_open="abs(" * calls, calls_close=")" * calls, entries=entries, branches=branches,
                  mod=self.MODULUS)
        self.feature(name, 1, lists + 20)

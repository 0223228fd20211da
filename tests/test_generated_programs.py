"""Property test of the tracec transform: programs instrumented with `--all` behave exactly like the originals.

Generated programs (tests/program_gen/) and hand-written tricky ones are instrumented with
all_functions=True; the result must compile and keep the line count, and running it with recording off and
with whole-process recording on (TRACEC_RECORD=1, TRACEC_GRAPH=file) must give the same stdout, stderr,
exception and exit status as the plain program; the recorded graph must be valid. The checking machinery
lives in tests/fuzz_semantics.py, which runs the same check on thousands of programs.
"""

from __future__ import annotations

import ast
import re
import textwrap

import fuzz_semantics as fuzz
import program_gen
import pytest
from program_gen import grammar as program_gen_grammar

GENERATED = 150  # small programs; each takes a fraction of a second to instrument


def failure_report(outcomes) -> str:
    failures = [o for o in outcomes if not o.ok]
    return f"{len(failures)} of {len(outcomes)} programs differ:\n\n" + "\n\n".join(o.describe() for o in failures)


def test_generated_programs_behave_the_same_instrumented():
    programs = []
    for seed in range(GENERATED):
        generated = program_gen.generate(seed, small=True)
        programs.append(fuzz.Program(f"seed {seed} (program_gen.generate({seed}, small=True))",
                                     generated.source, generated.raises))
    outcomes = fuzz.check_many(programs, jobs=2, batch=25)
    assert all(o.ok for o in outcomes), failure_report(outcomes)


def test_generator_is_deterministic_and_varied():
    assert program_gen.generate_program(7) == program_gen.generate_program(7)
    sources = {program_gen.generate_program(seed) for seed in range(20)}
    assert len(sources) == 20


def test_generator_covers_what_the_transform_rewrites():
    """Across the seeds the test runs, every construct of the brief shows up in some program."""
    sources = [program_gen.generate_program(seed, small=True) for seed in range(GENERATED)]
    text = "\n".join(sources)
    constructs = ["nonlocal ", "global TOTAL", "yield from", ".send(", ".throw(", "async def", "asyncio.gather",
                  "async for", "async with", "@functools.wraps", "@property", "@staticmethod", "@classmethod",
                  "super().", "match ", "case ", ":=", "lambda", "finally:", "        raise\n", ") from ",
                  "break", "continue", "while ", "else:", "*rest", "=}", "side(", "from __future__",
                  '"""', "with tag_cm", "Suppress(", "for x", " for ", "] -= ", ".value += ", "\\\n",
                  "return -x", "**kw", "sys.exit(", "raise SystemExit"]
    missing = [c for c in constructs if c not in text]
    assert not missing, f"no generated program uses {missing}"
    keyword_parens = ["if", "elif", "while", "return", "assert", "del", "in", "with", "yield", "await", "not"]
    missing = [f"{k}(" for k in keyword_parens if not re.search(rf"\b{k}\(", text)] + (
        [] if "lambda:(" in text else ["lambda:("])
    assert not missing, f"no generated program has a keyword directly followed by a parenthesis: {missing}"
    found = set().union(*(condition_forms(source) for source in sources))
    wanted = {(position, form) for position in program_gen_grammar.POSITIONS for form in program_gen_grammar.FORMS}
    wanted |= {(position, form, "bare") for position, forms in program_gen_grammar.BARE.items() for form in forms}
    assert not wanted - found, f"no generated program has these condition forms: {sorted(wanted - found)}"
    depths = {"sum terms": 0, "nested lists": 0, "dict entries": 0, "elif branches": 0}
    for source in sources:
        for key, value in nesting(source).items():
            depths[key] = max(depths[key], value)
    assert depths["sum terms"] >= 200 and depths["nested lists"] >= 60 and depths["dict entries"] >= 2000, depths
    assert depths["elif branches"] >= 300, depths


def condition_forms(source: str) -> set[tuple]:
    """(position, form) for every condition position whose test holds a walrus, a conditional expression or
    a lambda, plus (position, form, "bare") when the test is that expression itself, unparenthesised."""
    tree, lines = ast.parse(source), source.splitlines()
    tests = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            keyword = lines[node.lineno - 1][node.col_offset:].startswith("elif")
            tests.append(("elif" if keyword else "if", node.test))
        elif isinstance(node, (ast.While, ast.IfExp, ast.Assert)):
            tests.append(({ast.While: "while", ast.IfExp: "ifexp", ast.Assert: "assert"}[type(node)], node.test))
        elif isinstance(node, ast.comprehension):
            tests += [("comprehension", test) for test in node.ifs]
        elif isinstance(node, ast.match_case) and node.guard is not None:
            tests.append(("guard", node.guard))
    kinds = {ast.NamedExpr: "walrus", ast.IfExp: "ifexp", ast.Lambda: "lambda"}
    found = set()
    for position, test in tests:
        for inner in ast.walk(test):
            if type(inner) in kinds:
                found.add((position, kinds[type(inner)]))
        before = lines[test.lineno - 1][:test.col_offset].rstrip()
        if type(test) in kinds and not before.endswith("("):
            found.add((position, kinds[type(test)], "bare"))
    return found


def nesting(source: str) -> dict:
    """The longest sum (terms of one chain of + and -), deepest list nesting, largest dict literal and
    longest if/elif chain."""
    result = {"sum terms": 0, "nested lists": 0, "dict entries": 0, "elif branches": 0}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            terms, left = 2, node.left
            while isinstance(left, ast.BinOp) and isinstance(left.op, (ast.Add, ast.Sub)):
                terms, left = terms + 1, left.left
            result["sum terms"] = max(result["sum terms"], terms)
        elif isinstance(node, ast.List):
            depth, inner = 1, node
            while inner.elts and isinstance(inner.elts[0], ast.List):
                depth, inner = depth + 1, inner.elts[0]
            result["nested lists"] = max(result["nested lists"], depth)
        elif isinstance(node, ast.Dict):
            result["dict entries"] = max(result["dict entries"], len(node.keys))
        elif isinstance(node, ast.If):
            branches, inner = 1, node
            while len(inner.orelse) == 1 and isinstance(inner.orelse[0], ast.If):
                branches, inner = branches + 1, inner.orelse[0]
            result["elif branches"] = max(result["elif branches"], branches)
    return result


# Hand-written programs for behaviour the generator is unlikely to hit by chance. Each must print a last line
# starting with "final"; `raises` names the exception a program raises on purpose at the end.
TRICKY = {
    "finally-overrides-return-and-exception": ('''
        def f(x):
            try:
                if x:
                    raise ValueError(x)
                return "try"
            finally:
                return "finally"

        def g():
            for i in range(3):
                try:
                    raise KeyError(i)
                finally:
                    continue
            return i

        print(f(0), f(1), g())
        print("final")
        ''', None),
    "future-annotations-after-docstring": ('''
        """Module doc."""
        from __future__ import annotations
        import dataclasses

        @dataclasses.dataclass
        class Point:
            x: int
            y: list[int] = dataclasses.field(default_factory=list)

        def area(p: Point, scale: float = 1.0) -> float:
            """Area doc."""
            return p.x * len(p.y) * scale

        counter: int = 3
        print(__doc__, area.__doc__, area.__annotations__, __annotations__)
        print(Point(2, [1, 2]), area(Point(2, [1, 2])))
        print("final")
        ''', None),
    "fstring-debug-specifiers": ('''
        def show(x, width=6):
            y = [x, x + 1]
            print(f"{x=}", f"{x + 1 = }", f"{x!r:>{width}}", f"{y[0]*2=:+d}", f"{'a' if x else 'b'}")
            print(f"{f'{x:03d}'}|{len(y)=}")
            return f"{x}"

        print(show(5), show(0, width=3))
        print("final")
        ''', None),
    "dunders-called-exactly-as-often": ('''
        class Probe:
            def __init__(self, n):
                self.n = n
            def __bool__(self):
                print("bool", self.n)
                return bool(self.n)
            def __eq__(self, other):
                print("eq", self.n)
                return Probe(0)
            __hash__ = None
            def __getattr__(self, name):
                print("getattr", name)
                raise AttributeError(name)
            def __repr__(self):
                raise RuntimeError("repr must not be called")
            def __iter__(self):
                print("iter")
                yield self.n

        def use(p):
            if p:
                if p == 3:  # __eq__ returns a Probe: its __bool__ runs once, for the `if`
                    print("both")
            q = p or Probe(5)
            values = [v for v in q]
            ok = hasattr(p, "missing")
            return len(values), ok

        print(use(Probe(1)), use(Probe(0)))
        print("final")
        ''', None),
    "generator-protocol": ('''
        def gen():
            try:
                received = yield 1
                print("received", received)
                try:
                    yield 2
                except ValueError as e:
                    print("thrown", e)
                    yield 3
                return "done"
            finally:
                print("cleanup")

        g = gen()
        print(next(g), g.send("hello"), g.throw(ValueError("boom")))
        try:
            next(g)
        except StopIteration as stop:
            print("returned", stop.value)
        h = gen(); next(h); h.close()
        lazy = (print("lazy", i) or i for i in range(3))
        print("before consuming")
        print(sum(lazy))
        print("final")
        ''', None),
    "super-class-cell-and-class-scopes": ('''
        class Base:
            def greet(self):
                return "base"

        class Child(Base):
            names = ["a", "b"]
            upper = [n.upper() for n in names]
            def greet(self):
                return "child+" + super().greet() + " " + __class__.__name__
            @classmethod
            def make(cls):
                return cls()

        try:
            class Broken:
                value = 2
                doubled = [value * 2 for _ in range(2)]
        except NameError as e:
            print("class scope", e)
        print(Child.make().greet(), Child.upper)
        print("final")
        ''', None),
    "frames-and-locals": ('''
        import sys

        def callee():
            return sys._getframe(1).f_code.co_name, sys._getframe().f_lineno

        def caller(a, b=2):
            c = a + b
            name, line = callee()
            return name, line, sorted(locals()), eval("a * c"), sorted(vars())

        print(caller(3))
        print("final")
        ''', None),
    "traceback-lines-and-exception-context": ('''
        import sys, traceback

        def inner(x):
            return 10 // x

        def outer(x):
            try:
                return inner(x)
            except ZeroDivisionError:
                print("in handler", sys.exc_info()[0].__name__)
                raise KeyError(x)

        try:
            outer(0)
        except KeyError as e:
            frames = [(f.name, f.lineno) for f in traceback.extract_tb(e.__traceback__) if f.filename == "gen.py"]
            print(frames, type(e.__context__).__name__, e.__cause__, e.__suppress_context__)
        try:
            try:
                raise ValueError("a")
            except ValueError:
                raise TypeError("b") from None
        except TypeError as e:
            print(type(e.__context__).__name__, e.__suppress_context__)
        print(sys.exc_info())
        print("final")
        ''', None),
    "deep-recursion-and-recursion-error": ('''
        import sys

        def depth(n):
            return 0 if n == 0 else 1 + depth(n - 1)

        def forever(n):
            return forever(n + 1)

        print(depth(sys.getrecursionlimit() // 2))
        try:
            forever(0)
        except RecursionError:
            print("recursion error caught")
        print(depth(50))
        print("final")
        ''', None),
    "async-ordering-cancellation-contextvars": ('''
        import asyncio, contextvars

        request = contextvars.ContextVar("request", default="none")

        async def worker(name, steps):
            request.set(name)
            for i in range(steps):
                await asyncio.sleep(0)
                print(name, i, request.get())
            return name * steps

        async def sleeper():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                print("cancelled")
                raise

        async def main():
            task = asyncio.create_task(sleeper())
            results = await asyncio.gather(worker("a", 3), worker("b", 2))
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("task cancelled", task.cancelled())
            print(request.get())
            return results

        print(asyncio.run(main()))
        print("final")
        ''', None),
    "threads-keep-their-own-frames": ('''
        import threading

        results = {}

        def work(name, n):
            total = 0
            for i in range(n):
                total += i
            results[name] = total

        threads = [threading.Thread(target=work, args=(f"t{i}", 200 * i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(sorted(results.items()))
        print("final")
        ''', None),
    "one-line-compound-statements-and-semicolons": ('''
        def f(n):
            total = 0; count = 0
            if n > 2: total += 1; count += 1
            while n > 0: n -= 1; total += n
            for i in range(3): total += i; count += 1
            class Inner: value = total
            def g(): return Inner.value
            try: x = 1 // n
            except ZeroDivisionError: x = -1
            return g(), count, x

        print(f(5), f(0))
        print("final")
        ''', None),
    "parameters-and-star-expressions": ('''
        import inspect

        def f(a, /, b, *args, c, d=4, **kwargs):
            first, *middle, last = [a, b, *args, c]
            return first, middle, last, {**kwargs, "d": d}

        print(f(1, 2, 3, c=5, z=6), inspect.signature(f), f.__defaults__, f.__kwdefaults__)
        print(*[1, 2], *range(2), sep=",")
        print("final")
        ''', None),
    "globals-del-and-nonlocal-chains": ('''
        state = 1

        def drop():
            global state
            del state

        def outer():
            a = 0
            def middle():
                def inner():
                    nonlocal a
                    a += 10
                    return a
                nonlocal a
                a += 1
                return inner()
            return middle(), a

        print(outer())
        drop()
        try:
            print(state)
        except NameError as e:
            print("deleted", e)
        print(sorted(k for k in globals() if not k.startswith("_")))
        print("final")
        ''', None),
    "stderr-and-exit-status": ('''
        import sys

        def fail(code):
            print("to stderr", file=sys.stderr)
            sys.exit(code)

        print("final")
        fail(3)
        ''', "SystemExit"),
    "uncaught-exception-from-nested-calls": ('''
        class Custom(Exception):
            pass

        def level3():
            raise Custom("deep", 3)

        def level2():
            with open(__import__("os").devnull) as fh:
                return level3()

        def level1():
            try:
                level2()
            finally:
                Custom.seen = True

        print("final")
        level1()
        ''', "Custom"),
    "await-yield-walrus-inside-fstrings": ('''
        import asyncio

        async def value(x):
            await asyncio.sleep(0)
            return x

        async def agen():
            for i in range(2):
                yield i

        async def main():
            w = 3
            text = f"{await value(1)} {(y := w * 2)} {(lambda: y)()} {[i async for i in agen()]}"
            return text, y

        def echo():
            got = f"{(yield 1)}"
            yield got

        g = echo()
        next(g)
        print(asyncio.run(main()), g.send("sent"))
        print("final")
        ''', None),
    "decorators-defaults-annotations-evaluated-once": ('''
        def side(tag, value):
            print("side", tag)
            return value

        def ident(fn):
            return fn

        @side("decorator", ident)
        def f(x=side("default", 1), *, y: side("annotation", int) = side("kwdefault", 2)) -> side("return", int):
            return x + y

        for i in range(2):
            def h(z=side("loop default", i)):
                return z
            print(h())
        print(f(), f.__annotations__)
        print("final")
        ''', None),
    "generator-close-and-return-in-finally": ('''
        def g():
            try:
                yield 1
                yield 2
            except GeneratorExit:
                print("exit seen")
                raise
            finally:
                print("generator finally")

        def h():
            try:
                yield 1
            finally:
                return 5

        x = g()
        print(next(x))
        x.close()
        y = h()
        next(y)
        try:
            y.throw(KeyError("k"))
        except StopIteration as stop:
            print("swallowed", stop.value)
        print("final")
        ''', None),
    "bool-eq-hash-raising-values": ('''
        class Ambiguous:
            def __bool__(self):
                raise ValueError("ambiguous truth value")
            def __eq__(self, other):
                raise TypeError("no ==")
            def __hash__(self):
                raise TypeError("unhashable")
            def __len__(self):
                raise RuntimeError("no len")
            def __iter__(self):
                raise RuntimeError("no iter")

        def f():
            a = Ambiguous()
            b = [a, a]
            try:
                if a:
                    pass
            except ValueError as e:
                print("caught", e)
            return b

        print(len(f()))
        print("final")
        ''', None),
    "crlf-line-endings": ('def f(x):\r\n    if x:\r\n        return 1\r\n    return (\r\n        2\r\n    )\r\n'
                          'print(f(0), f(1))\r\nprint("final")\r\n', None),
    "tabs-formfeed-semicolons-no-final-newline": ('import sys\n\x0c\ndef f(x):\n\tif x:\n\t\treturn 1;\n\treturn 2\n'
                                                  'print(f(0), f(1))\nprint("final")  # no newline', None),
    "comments-inside-continued-lines": ('''
        def f(a,  # first
              b):
            total = (a +  # plus
                     b)
            if (a >
                    b):  # compare
                return total
            return [
                a,  # item
                b,
            ]

        print(f(1, 2), f(3, 2))
        print("final")
        ''', None),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_program_behaves_the_same_instrumented(name):
    source, raises = TRICKY[name]
    if source.startswith("\n"):  # written indented inside this file
        source = textwrap.dedent(source).lstrip("\n")
    outcome = fuzz.check_programs([fuzz.Program(name, source, raises)])[0]
    assert outcome.ok, outcome.describe()

"""Every place the pass embeds a user expression, with an expression of every binding strength of the
grammar's precedence table, and every keyword written directly against a parenthesis.

The cases are generated: a form per precedence level (transforms/embedding.py names the levels) times a
position per rewritten construct. A case whose *original* does not compile (the grammar does not allow
that form bare there) is dropped; every other one must instrument without an internal error, keep its
statements on their lines, and behave exactly like the original, recording off and on: same result or
exception, and the same sequence of dunder calls on the objects it touches (evaluation order)."""

from __future__ import annotations

import asyncio
import inspect
import re
import textwrap

import pytest

import tracec
from tracec.transforms import embedding, instrument_source

# One or more forms per binding level; `a`, `b`, `c` are Probe objects that log every operation.
FORMS = {
    "LOOSEST": ["w := a", "yield a", "a, b", "*a, b"],
    "LAMBDA": ["lambda: a"],
    "CONDITIONAL": ["a if b else c"],
    "OR": ["a or b"],
    "AND": ["a and b"],
    "NOT": ["not a"],
    "COMPARISON": ["a < b", "a in b", "a is not b"],
    "BIT_OR": ["a | b"], "BIT_XOR": ["a ^ b"], "BIT_AND": ["a & b"], "SHIFT": ["a << b"],
    "SUM": ["a + b"], "TERM": ["a * b"], "UNARY": ["-a"], "POWER": ["a ** b"],
    "AWAIT": ["await a"],
    "ATOM": ["a.x", "a[0]", "f(a)", "(a)", "[a]", "(y for y in a)", "tracec.param(3)"],
}

# Where the pass puts a user expression inside one of its own. {e} is the form.
POSITIONS = {
    "if test": "if {e}:\n    out.append(1)",
    "elif test": "if not a:\n    pass\nelif {e}:\n    out.append(1)",
    "while test": "while {e}:\n    out.append(1)\n    break",
    "for iterable": "for v in {e}:\n    out.append(v)",
    "with item": "with {e}:\n    out.append(1)",
    "with item as": "with {e} as v:\n    out.append(v)",
    "match subject": "match {e}:\n    case _:\n        out.append(1)",
    "return value": "return {e}",
    "yield value": "yield {e}",
    "assignment value": "v = {e}\nout.append(v)",
    "annotated value": "v: object = {e}\nout.append(v)",
    "augmented value": "v = a\nv += {e}\nout.append(v)",
    "expression statement": "{e}",
    "call argument": "out.append({e})",
    "default value": "def g(v={e}):\n    return v\nout.append(g())",
    "decorator": "@(lambda fn: {e})\ndef g():\n    pass\nout.append(g)",
    "f-string": "out.append(f'{{{e}!r}}')",
    "comprehension": "out.append([v for v in [a] if {e}])",
    "lambda body": "out.append((lambda: {e})())",
    "assert": "assert {e}",
}

# The same at module level, where the runtime header rides on the first expression the module evaluates
MODULE_POSITIONS = {
    "module if test": "if {e}:\n    out.append(1)",
    "module while test": "while {e}:\n    out.append(1)\n    break",
    "module for iterable": "for v in {e}:\n    out.append(v)",
    "module with item": "with {e}:\n    out.append(1)",
    "module match subject": "match {e}:\n    case _:\n        out.append(1)",
    "module class base": "class K({e} and object):\n    pass\nout.append(K.__mro__)",
    "module decorator": "@(lambda fn: {e})\ndef g():\n    pass\nout.append(g)",
}

# A keyword written directly against a parenthesis (or a string), before and after its operand is wrapped
KEYWORD_PARENS = [
    "if(a):\n    out.append(1)",
    "if not a:\n    pass\nelif(a):\n    out.append(1)",
    "while(a):\n    out.append(1)\n    break",
    "return(a)",
    "assert(a)",
    "v = [a]\ndel(v[0])",
    "for v in(a):\n    out.append(v)",
    "for v in'ab':\n    out.append(v)",
    "with(a):\n    out.append(1)",
    "with(a) as v, (b) as u:\n    out.append(v)",
    "yield(a)",
    "yield from(a)",
    "v = await(a)",
    "out.append(not(a))",
    "out.append(not(tracec.param(1)))",
    "out.append(await(tracec.param(a)))",
    "out.append((lambda:(a))())",
    "out.append((lambda:(tracec.param(2)))())",
    "match(a):\n    case _:\n        out.append(1)",
    "if'x':\n    out.append(1)",
    "out.append(a if(tracec.param(1))else b)",
    "out.append(1 in(tracec.param([1])))",
]

class Probe:
    """Logs every operation done on it; every operator gives a new Probe, so order is observable."""
    def __init__(self, name, log):
        self.name, self.log = name, log
    def _op(self, op, other=None):
        self.log.append((op, self.name, getattr(other, "name", repr(other))))
        return Probe(f"({self.name}{op}{getattr(other, 'name', other)})", self.log)
    def __bool__(self):
        self.log.append(("bool", self.name, None)); return True
    def __iter__(self):
        self.log.append(("iter", self.name, None)); return iter([self.name])
    def __enter__(self):
        self.log.append(("enter", self.name, None)); return self.name
    def __exit__(self, *exc):
        self.log.append(("exit", self.name, None)); return False
    def __await__(self):
        self.log.append(("await", self.name, None)); yield from (); return self.name
    def __contains__(self, item):
        self.log.append(("contains", self.name, getattr(item, "name", repr(item)))); return True
    def __getitem__(self, key):
        return self._op("[]", key)
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._op(".", attr)
    def __repr__(self):
        return f"Probe({self.name})"
    __add__ = lambda s, o: s._op("+", o); __mul__ = lambda s, o: s._op("*", o)
    __or__ = lambda s, o: s._op("|", o); __xor__ = lambda s, o: s._op("^", o)
    __and__ = lambda s, o: s._op("&", o); __lshift__ = lambda s, o: s._op("<<", o)
    __pow__ = lambda s, o: s._op("**", o); __lt__ = lambda s, o: s._op("<", o)
    __neg__ = lambda s: s._op("-"); __iadd__ = lambda s, o: s._op("+=", o)


ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def function_source(body: str) -> str:
    is_async = "await" in body
    is_generator = "yield" in body
    header = ("async " if is_async else "") + "def run(a, b, c, out):\n"
    return ("import tracec\ndef f(v):\n    return v\n" + header
            + textwrap.indent(body, "    ") + ("\n" if is_generator else "\n    return out\n"))


def module_source(body: str) -> str:
    # no import first: the header has to find its place in the statement under test
    return body + "\nimport tracec\ndef run(a, b, c, out):\n    return out\n"


def cases() -> list:
    found = []
    for level, forms in FORMS.items():
        for form in forms:
            for position, template in POSITIONS.items():
                found.append(pytest.param(function_source(template.format(e=form)), id=f"{level}:{form}@{position}"))
            for position, template in MODULE_POSITIONS.items():
                found.append(pytest.param(module_source(template.format(e=form)), id=f"{level}:{form}@{position}"))
    found += [pytest.param(function_source(body), id=f"keyword-paren:{body.splitlines()[0]}")
              for body in KEYWORD_PARENS]
    return found


def test_every_precedence_level_has_a_form():
    levels = {name for name in dir(embedding) if name.isupper() and isinstance(getattr(embedding, name), int)
              and name not in ("CALL_ARGUMENT", "CONDITION", "OR_OPERAND")}
    assert levels == set(FORMS)


async def _collect(agen) -> list:
    return [item async for item in agen]


def outcome(code, name: str) -> tuple:
    """What running the module and then its `run` does: the results and every operation on a, b, c."""
    log: list = []
    a, b, c = (Probe(n, log) for n in "abc")
    shown = []
    for step in ("module", "run"):
        try:
            if step == "module":
                namespace = {"__name__": name, "a": a, "b": b, "c": c, "out": []}
                exec(code, namespace)
                result = namespace["out"]
            else:
                result = namespace["run"](a, b, c, [])
                if inspect.isgenerator(result):
                    result = list(result)
                elif inspect.iscoroutine(result):
                    result = asyncio.run(result)
                elif inspect.isasyncgen(result):
                    result = asyncio.run(_collect(result))
            shown.append(repr(result))
        except Exception as exc:
            shown.append(f"raised {type(exc).__name__}: {exc}")
            break
    return ADDRESS.sub("0x", repr(shown)), ADDRESS.sub("0x", repr(log))


@pytest.mark.parametrize("source", cases())
def test_embedded_expression_keeps_its_meaning(source):
    try:
        plain = compile(source, "case.py", "exec")
    except SyntaxError:
        pytest.skip("the grammar does not allow this form bare here")
    result = instrument_source(source, path="case.py", module="case", all_functions=True)
    assert result.internal is None, f"{result.internal}\n{source}"
    assert result.error is None and result.header_placed
    instrumented = compile(result.code, "case.py", "exec")
    expected = outcome(plain, "case")
    assert outcome(instrumented, "case") == expected
    with tracec.record() as run:
        recorded = outcome(instrumented, "case")
    assert recorded == expected and run.internal_errors == 0

"""Instrumented code behaves exactly like plain code and records the graph the DESIGN promises.

Every test runs twice: modules instrumented directly by the transform, and modules imported through the
import hook (the way `tracec run` loads a project)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import pickle
import subprocess
import sys
import textwrap

import pytest
from support import load_module

import tracec
from tracec import importhook


@pytest.fixture(params=["transform", "import-hook"])
def load(request, tmp_path, monkeypatch):
    names = []

    def loader(source: str, instrument: bool = True, all_functions: bool = True):
        name = f"mod_{request.param.replace('-', '_')}_{len(names)}_{'i' if instrument else 'p'}"
        names.append(name)
        if request.param == "transform" or not instrument:
            return load_module(tmp_path, name, source, instrument, all_functions)
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        importhook.install(tmp_path, all_functions=all_functions)
        try:
            __import__(name)
        finally:
            importhook.uninstall()
        module = sys.modules[name]
        assert "_tracec_m" in vars(module), "the import hook must instrument project modules"
        return module

    yield loader
    for name in names:
        sys.modules.pop(name, None)


def nodes_named(run, name, kind=None):
    return [n for n in run.nodes if n.name == name and (kind is None or n.kind == kind)]


def ancestors(run, node) -> set[int]:
    seen, todo = set(), [node.id]
    while todo:
        nid = todo.pop()
        for p in (*run.nodes[nid].parents, *run.nodes[nid].control):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


SEMANTICS = """
import asyncio, contextlib, functools
log = []

def note(x):
    log.append(x)
    return x

def order(a, b):
    r = note(a) and note(b) or note("c")
    if (w := note(len(log))) > 100:
        return None
    return r, [y for x in range(3) if (y := note(x) * 2)], w

def gen(n):
    total = 0
    for i in range(n):
        got = yield i
        total += got or 0
    return total

async def co(x):
    await asyncio.sleep(0)
    return x * 2

async def main():
    return await asyncio.gather(co(1), co(2))

def raises(x):
    if x:
        raise KeyError(x)
    return x

def fin():
    try:
        return "try"
    finally:
        return "finally"

def loc(a, b=2, *args, k=1, **kw):
    c = a + b
    return sorted(locals())

def counter():
    count = 0
    def inc():
        nonlocal count
        count += 1
        return count
    inc(); inc()
    return count

class Box:
    def __init__(self, v):
        self.v = v
    @staticmethod
    def twice(x):
        return 2 * x
    @classmethod
    def make(cls, v):
        return cls(v)
    @property
    def value(self):
        return self.v
    def __eq__(self, other):
        return isinstance(other, Box) and other.v == self.v

@contextlib.contextmanager
def ctx():
    log.append("enter")
    yield 5
    log.append("exit")

def deco(f):
    @functools.wraps(f)
    def wrapper(*a, **k):
        return f(*a, **k)
    return wrapper

@deco
def wrapped(x, y=3):
    with ctx() as v:
        return x + y + v

def shape(p):
    match p:
        case {"k": v}:
            return v
        case [first, *rest]:
            return first, rest
        case _:
            return None
"""


def exercise(m):
    g = m.gen(3)
    sent = [next(g), g.send(5), g.send(7)]
    try:
        g.send(1)
    except StopIteration as stop:
        sent.append(stop.value)
    with pytest.raises(KeyError) as info:
        m.raises("boom")
    return [m.order(1, 2), m.order(0, 2), sent, asyncio.run(m.main()), str(info.value), m.fin(),
            m.loc(1, 2, 3, k=4, z=5), m.counter(), m.Box.make(3).value, m.Box.twice(4), m.wrapped(1),
            m.shape({"k": 1}), m.shape([1, 2, 3]), m.shape(3), list(m.log)]


@pytest.mark.parametrize("recording", [False, True])
def test_results_exceptions_order_and_locals_are_unchanged(load, recording):
    plain = exercise(load(SEMANTICS, instrument=False))
    module = load(SEMANTICS)
    if recording:
        with tracec.record() as run:
            instrumented = exercise(module)
        assert run.nodes and run.internal_errors == 0
    else:
        instrumented = exercise(module)
    assert instrumented == plain


def test_signatures_pickling_and_function_kinds_are_unchanged(load):
    plain, module = load(SEMANTICS, instrument=False), load(SEMANTICS)
    for name in ("order", "gen", "co", "loc", "wrapped", "shape"):
        assert inspect.signature(getattr(module, name)) == inspect.signature(getattr(plain, name))
    assert inspect.isgeneratorfunction(module.gen) and inspect.iscoroutinefunction(module.co)
    assert pickle.loads(pickle.dumps(module.order)) is module.order
    assert pickle.loads(pickle.dumps(module.Box(4))) == module.Box(4)
    assert module.wrapped.__wrapped__.__name__ == "wrapped"


@pytest.mark.parametrize("recording", [False, True])
def test_functions_made_by_traced_code_pickle_by_value(load, recording):
    # cloudpickle ships a nested function with the globals it uses (how Ray, Dask, joblib send work):
    # the hooks among them must travel as references, and run anywhere as the plain function would
    import cloudpickle

    module = load("""
        def make(k):
            def scale(x):
                y = x * k
                return y
            return scale
        """)
    with (tracec.record() if recording else contextlib.nullcontext()):
        scale = module.make(3)
        data = cloudpickle.dumps(scale)
        assert cloudpickle.loads(data)(2) == 6
    elsewhere = subprocess.run([sys.executable, "-c", "import sys, cloudpickle; "
                                "print(cloudpickle.loads(sys.stdin.buffer.read())(5))"],
                               input=data, capture_output=True, timeout=60)
    assert elsewhere.stdout == b"15\n", elsewhere.stderr.decode()
    for hook in ("_tracec_v", "_tracec_p", "_tracec_m"):
        assert pickle.loads(pickle.dumps(vars(module)[hook])) is not None


def test_tracebacks_point_at_the_same_lines(load):
    source = "import os\ndef f(x):\n    y = x + 1\n    return {}[y]\n"
    lines = []
    for instrument in (False, True):
        module = load(source, instrument=instrument)
        with pytest.raises(KeyError) as info:
            module.f(1)
        lines.append([entry.lineno for entry in info.traceback][-1])
    assert lines[0] == lines[1] == 3   # pytest counts from 0: line 4 of the file


WORKFLOW = """
import tracec

PROMPT = tracec.param("Answer in one word.", doc="system prompt")
STYLE = tracec.param("plain", doc="unused by the failing path")

def call_llm(prompt, question):
    return "sorry, I cannot" if "why" in question else "Paris"

@tracec.trainable
def parse(reply):
    return reply.strip().split()[-1]

@tracec.trace
def solve(question):
    reply = call_llm(PROMPT, question)
    if "sorry" in reply:
        reply = call_llm(PROMPT + " Never apologise.", question)
    return parse(reply)

@tracec.trace
def unused_style():
    return STYLE
"""


def test_data_control_and_call_edges(load):
    module = load(WORKFLOW, all_functions=False)
    with tracec.record() as run:
        answer = module.solve("why is the sky blue?")
    assert answer == "cannot"
    [prompt] = nodes_named(run, "PROMPT", "param")
    first_reply, second_reply = nodes_named(run, "reply", "op")[:2]
    [condition] = [n for n in run.nodes if n.kind == "control" and n.code == 'if "sorry" in reply:']
    assert prompt.id in first_reply.parents and nodes_named(run, "question", "input")[0].id in first_reply.parents
    assert condition.parents == (first_reply.id,)
    assert second_reply.control == (condition.id,), "a statement under `if` depends on the condition"
    [output] = run.outputs
    assert output.kind == "return" and output.function.endswith("solve") and output.value == "'cannot'"
    [callee_return] = [n for n in run.nodes if n.kind == "return" and n.function.endswith("parse")]
    assert callee_return.id in output.parents, "the caller's statement depends on the callee's return"
    parse_argument = [n for n in run.nodes if n.name == "reply" and n.function.endswith("parse")][0]
    assert second_reply.id in parse_argument.parents, "the callee's argument depends on the caller's reads"


def test_trainable_nodes_depend_on_the_code_parameter_and_backward_finds_minimal_subgraphs(load):
    module = load(WORKFLOW, all_functions=False)
    with tracec.record() as run:
        module.solve("why?")
        module.unused_style()
    code = next(p for p in run.params if p.kind == "code")
    assert code.key.endswith(":parse") and code.line == 11
    for node in run.nodes:
        if node.function.endswith(".parse") and node.kind != "param":
            assert code.node in node.parents
    run.feedback(run.outputs[0], "expected a one-word answer, got an apology", score=0.0)
    reached = run.backward()
    assert set(reached) == {f"{module.__name__}:PROMPT", f"{module.__name__}:parse"}
    prompt = reached[f"{module.__name__}:PROMPT"]
    assert prompt.feedback[0].text.startswith("expected") and prompt.feedback[0].score == 0.0
    nodes = set(prompt.nodes)
    assert prompt.param.node in nodes and run.outputs[0].id in nodes
    for nid in nodes:   # minimal: every node lies on a path from the parameter to the output
        assert prompt.param.node == nid or prompt.param.node in ancestors(run, run.nodes[nid])
        assert nid == run.outputs[0].id or nid in ancestors(run, run.outputs[0])


def test_mutations_write_new_nodes(load):
    module = load("""
        def build(x):
            msgs = []
            msgs.append(x)
            state = {}
            state["k"] = x
            box = type("B", (), {})()
            box.p = x
            n = 0
            n += x
            return msgs, state, box.p, n
        """)
    with tracec.record() as run:
        module.build(3)
    [append] = [n for n in run.nodes if n.name == "msgs.append"]
    [store] = [n for n in run.nodes if n.name == 'state["k"]']
    [attr] = [n for n in run.nodes if n.name == "box.p"]
    [aug] = [n for n in run.nodes if n.name == "n" and n.code == "n += x"]
    assert aug.value == "3"
    ret = run.outputs[0]
    assert {append.id, store.id, attr.id, aug.id} <= set(ret.parents)


def test_exceptions_become_error_nodes_and_propagate_unchanged(load):
    module = load("""
        def inner(x):
            y = x * 2
            raise ValueError(f"bad {y}")
        def outer(x):
            return inner(x)
        def handled(x):
            try:
                outer(x)
            except ValueError as e:
                message = str(e)
            return message
        """)
    with pytest.raises(ValueError, match="bad 2"):
        with tracec.record() as run:
            module.outer(1)
    errors = [n for n in run.nodes if n.kind == "error"]
    assert [(e.function.split(".")[-1], e.line) for e in errors] == [("inner", 4), ("outer", 6)]
    assert errors[0].error["type"] == "ValueError" and errors[0].error["message"] == "bad 2"
    assert errors[0].id in errors[1].parents and run.outputs[-1].id == errors[1].id
    with tracec.record() as run:
        assert module.handled(2) == "bad 4"
    [handler] = [n for n in run.nodes if n.code == "except ValueError as e:"]
    [message] = nodes_named(run, "message")
    assert any(run.nodes[p].kind == "error" for p in handler.parents)
    assert message.control == (handler.id,) and handler.id in message.parents


def test_generators_async_threads_and_recursion_keep_separate_frames(load):
    module = load("""
        import asyncio, threading
        def numbers(n):
            for i in range(n):
                yield i * 10
        def consume():
            total = sum(numbers(3))
            return total
        async def double(x):
            await asyncio.sleep(0)
            return x * 2
        async def both():
            a, b = await asyncio.gather(double(1), double(2))
            return a + b
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        def square(i, out):
            out[i] = i * i
        def in_threads():
            out = {}
            workers = [threading.Thread(target=square, args=(i, out)) for i in range(4)]
            for w in workers: w.start()
            for w in workers: w.join()
            return sorted(out.items())
        """)
    with tracec.record() as run:
        assert module.consume() == 30
        assert asyncio.run(module.both()) == 6
        assert module.fact(4) == 24
        assert module.in_threads() == [(0, 0), (1, 1), (2, 4), (3, 9)]
    [total] = nodes_named(run, "total")
    yields = [n for n in run.nodes if n.name == "yield"]
    assert len(yields) == 3 and all(y.id in total.parents for y in yields)
    [pair] = nodes_named(run, "a, b")
    doubles = [n for n in run.nodes if n.kind == "return" and n.function.endswith(".double")]
    assert len(doubles) == 2 and all(d.id in pair.parents for d in doubles)
    fact_returns = [n for n in run.nodes if n.kind == "return" and n.function.endswith(".fact")]
    assert len(fact_returns) == 4
    assert all(fact_returns[i].id in fact_returns[i + 1].parents for i in range(3))
    squares = [n for n in run.nodes if n.function.endswith(".square") and n.kind == "op" and n.name == "out[i]"]
    assert len(squares) == 4
    outer_functions = [o.function.split(".")[-1] for o in run.outputs]
    # each thread's outermost traced call is an output of its own
    assert outer_functions[0] == "consume" and outer_functions.count("square") == 4
    assert "in_threads" in outer_functions


def test_closures_globals_walrus_and_comprehensions(load):
    module = load("""
        SCALE = 3
        def make():
            base = 10
            def add(x):
                return base + x
            return add(1)
        def bump():
            global SCALE
            SCALE = SCALE + 1
            return SCALE
        def pick(xs):
            kept = [y for x in xs if (y := x * SCALE) > 3]
            return kept, y
        """)
    with tracec.record() as run:
        assert module.make() == 11
        assert module.bump() == 4
        assert module.pick([1, 2]) == ([4, 8], 8)
    [base] = nodes_named(run, "base")
    [add_return] = [n for n in run.nodes if n.kind == "return" and n.function.endswith("add")]
    assert base.id in add_return.parents, "a closure's read of an enclosing variable is a data edge"
    [scale] = [n for n in run.nodes if n.name == "SCALE" and n.kind == "op"]
    [kept] = nodes_named(run, "kept")
    assert scale.id in kept.parents, "a global written by one traced call is read by the next"
    pick_return = run.outputs[-1]
    assert kept.id in pick_return.parents   # `y` was bound by the walrus in the comprehension
    assert "y" not in [run.nodes[p].name for p in kept.parents]


def test_node_cap_truncates_and_loops_are_summarised(load):
    module = load("""
        def spin(n):
            i = 0
            while i < n:
                i += 1
            return i
        """)
    with tracec.record(max_nodes=50) as run:
        module.spin(100)
        hook = vars(module)["_tracec_v"]
        assert not hasattr(hook, "__code__"), "a full recording switches the hooks back to pass-through"
    assert len(run.nodes) == 50 and run.truncated and run.to_json()["truncated"] is True
    with tracec.record() as run:
        assert module.spin(50_000) == 50_000
    assert not run.truncated and len(run.nodes) < 2_100
    assert max(n.repeats for n in run.nodes) > 40_000


def test_values_are_bounded_previews_and_json_follows_the_contract(load):
    module = load("import os\ndef f(x):\n    y = x * 1000\n    return len(y)\n")
    with tracec.record() as run:
        module.f("ab")
    [y] = nodes_named(run, "y")
    assert len(y.value) <= 200 and y.value.startswith("'abab")
    data = run.to_json()
    assert data["version"] == 1 and data["outputs"] == [run.outputs[0].id]
    node = data["nodes"][y.id]
    assert set(node) >= {"id", "kind", "name", "code", "value", "file", "line", "function", "parents", "control"}
    assert node["file"].endswith(".py") and node["line"] == 3 and node["code"] == "y = x * 1000"


def test_uninstrumented_annotations_cost_nothing():
    def f(x):
        return x
    assert tracec.trace(f) is f and tracec.trainable(f) is f and tracec.trainable(doc="d")(f) is f
    value = {"a": [1, 2.5, "s", None, True]}
    assert tracec.param(value, doc="x") is value
    with pytest.raises(TypeError, match="literal"):
        tracec.param(object())


# CPython 3.12+ reports exceptions leaving frames (sys.monitoring PY_UNWIND); older ones cannot
SEES_UNWINDING = sys.version_info >= (3, 12)


def test_a_call_ended_by_an_exception_caught_outside_traced_code_is_not_a_return(load):
    module = load("""
        def divide(item):
            x = 10 // item
            return x
        """)
    with tracec.record() as run:
        try:
            module.divide(0)
        except ZeroDivisionError:
            pass   # untraced code swallows it
        assert module.divide(5) == 2
    first, second = run.outputs
    assert first.kind == "error"
    if SEES_UNWINDING:   # the real exception, at the line that raised it
        assert (first.error["type"], first.line) == ("ZeroDivisionError", 3)
        assert first.error["message"] == "integer division or modulo by zero"
    else:
        assert "untraced code" in first.error["message"]
    assert nodes_named(run, "item", "input")[0].id in ancestors(run, first) | {first.id}
    assert second.kind == "return" and second.value == "2"


def test_an_exception_caught_outside_traced_code_keeps_the_trainable_that_raised_it(load):
    module = load("""
        import tracec
        @tracec.trainable
        def parse(reply):
            return int(reply)
        def solve(reply):
            n = parse(reply)
            return n
        """)
    with tracec.record() as run:
        try:
            module.solve("many")
        except ValueError:
            pass   # e.g. the script's own try/except around main()
    (out,) = run.outputs
    code = next(n for n in run.nodes if n.kind == "param" and n.name == "parse")
    if not SEES_UNWINDING:
        assert out.kind == "error" and "untraced code" in out.error["message"]
        return
    raised = [n for n in run.nodes if n.kind == "error"]
    assert [(n.function.split(".")[-1], n.line, n.error["type"]) for n in raised] == \
        [("parse", 5, "ValueError"), ("solve", 7, "ValueError")]
    assert raised[-1].id == out.id and "invalid literal for int()" in out.error["message"]
    assert code.id in ancestors(run, out)


def test_an_exception_passing_through_finally_keeps_its_error_nodes(load):
    module = load("""
        def fail(x):
            y = x + 1
            raise ValueError(f"failed {y}")
        def cleanup(x):
            try:
                fail(x)
            finally:
                done = True
        """)
    with pytest.raises(ValueError):
        with tracec.record() as run:
            module.cleanup(1)
    errors = [n for n in run.nodes if n.kind == "error"]
    assert [e.function.split(".")[-1] for e in errors] == ["fail", "cleanup"]
    assert errors[0].error["message"] == "failed 2" and errors[0].line == 4
    assert not [n for n in run.nodes if n.kind == "return"], "no call returned"


def test_recording_never_runs_user_reprs_nor_keeps_caught_exceptions_alive(load):
    module = load("""
        class Lazy:
            calls = 0
            def __repr__(self):
                Lazy.calls += 1
                return "Lazy()"
        def touch(x):
            y = [x, {"k": x}]
            return y
        def lookup(d, key):
            try:
                return d[key]
            except KeyError:
                return None
        """)
    import gc
    import weakref

    class Key:
        pass

    with tracec.record() as run:
        module.touch(module.Lazy())
        key = Key()
        ref = weakref.ref(key)
        assert module.lookup({}, key) is None
        del key
        gc.collect()
        assert ref() is None, "a caught exception's frames must not be kept alive by the recorder"
    assert module.Lazy.calls == 0
    assert nodes_named(run, "y")[0].value.startswith("[<") and "Lazy object>" in nodes_named(run, "y")[0].value


def test_recording_does_not_extend_the_lifetime_of_locals(load):
    module = load("""
        import gc, weakref
        class Big:
            pass
        def drop(obj):
            ref = weakref.ref(obj)
            yield
            obj = None
            gc.collect()
            yield ref() is None
        """)
    with tracec.record():
        steps = module.drop(module.Big())   # only the generator's frame holds the object now
        next(steps)
        assert next(steps) is True


def test_conditions_are_tested_once_and_user_attribute_hooks_are_not_called(load):
    source = """
        calls = []
        class Falsy:
            def __bool__(self):
                calls.append("bool")
                return False
        class Spy:
            def __getattribute__(self, name):
                calls.append("getattribute " + name)
                return object.__getattribute__(self, name)
        def branch(p, q):
            if p and 1:
                return "a"
            elif not (p or q):
                return "b"
            return "c"
        def make():
            s = Spy()
            return s
        """
    plain = load(source, instrument=False)
    plain.branch(plain.Falsy(), 0), plain.make()
    module = load(source)
    with tracec.record():
        assert module.branch(module.Falsy(), 0) == "b"
        module.make()
    assert module.calls == plain.calls == ["bool", "bool"]

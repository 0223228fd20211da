"""The import hook instruments the project's own modules on import, and nothing else."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import textwrap
from pathlib import Path

import pytest

import tracec.runtime as rt
from tracec import importhook, project
from tracec.transforms import instrument_source

# Evaluation-order-sensitive code (the kind pytest's assertion rewriting once got wrong): walrus
# in conditions, short-circuit `and`/`or` whose right side has side effects, chained comparisons,
# conditional expressions, comprehensions, generators, try/finally, closures, match.
ORDER_SENSITIVE = '''
LOG = []


def note(tag, value):
    LOG.append(tag)
    return value


def walrus_conditions(items):
    out = []
    if (n := len(items)) > 2 and (first := items[0]) is not None:
        out.append((n, first))
    it = iter(items)
    while (item := next(it, None)) is not None:
        out.append(item)
    assert (total := sum(items)) == sum(items), total
    return out, n, total


def short_circuit(flag):
    a = note("a", flag) and note("b", "right")
    b = note("c", flag) or note("d", "fallback")
    c = note("e", 0) or note("f", "") or note("g", "last")
    d = note("h", 1) < note("i", 2) < note("j", 0) < note("k", 5)
    e = note("l", "yes") if note("m", flag) else note("n", "no")
    return a, b, c, d, e


def comprehensions(limit):
    squares = [y for x in range(limit) if (y := x * x) % 2 == 0]
    pairs = {k: v for k, v in zip("abc", range(limit))}
    gen = (note("gen", x) for x in range(limit))
    return squares, pairs, sum(gen), y


def control_flow(values):
    seen = []
    for v in values:
        try:
            if v == 0:
                raise ValueError("zero")
            seen.append(10 // v)
        except ValueError as exc:
            seen.append(str(exc))
            continue
        finally:
            seen.append("finally")
        if v > 5:
            break
    else:
        seen.append("no break")
    return seen


def closures(start):
    count = start

    def bump(step=1):
        nonlocal count
        count += step
        return count

    bump()
    bump(step=note("step", 3))
    label = f"{count=} {'odd' if count % 2 else 'even'}"
    return count, label, (lambda x, *rest, **kw: (x, rest, kw))(1, 2, z=3)


def matching(value):
    match value:
        case [first, *rest] if note("guard", first) > 0:
            return ("list", first, rest)
        case {"k": v}:
            return ("dict", v)
        case _:
            return ("other", value)


def generator(n):
    received = []
    for i in range(n):
        got = yield note("yield", i)
        received.append(got)
    return received


def run_all():
    gen = generator(3)
    sent = [next(gen), gen.send("x"), gen.send("y")]
    try:
        gen.send("z")
    except StopIteration as stop:
        sent.append(stop.value)
    return [
        walrus_conditions([3, 4, 5]),
        walrus_conditions([]),
        short_circuit(True),
        short_circuit(False),
        comprehensions(5),
        control_flow([2, 0, 7, 1]),
        control_flow([1, 2]),
        closures(4),
        matching([2, 3]),
        matching([-1]),
        matching({"k": 9}),
        sent,
    ], list(LOG)
'''


@pytest.fixture
def isolated_imports(monkeypatch):
    """Undo sys.path/sys.modules/meta_path changes a test makes."""
    before = set(sys.modules)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    importhook.uninstall()
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(name: str, folder: Path):
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_instrumented_module_gives_the_same_results_as_plain(tmp_path, isolated_imports):
    write(tmp_path / "plain" / "order_plain.py", ORDER_SENSITIVE)
    write(tmp_path / "project" / "order_traced.py", ORDER_SENSITIVE)
    importhook.install(tmp_path / "project", all_functions=True)
    plain = load("order_plain", tmp_path / "plain")  # outside the root: not instrumented
    traced = load("order_traced", tmp_path / "project")

    assert type(plain.__loader__) is importlib.machinery.SourceFileLoader
    assert isinstance(traced.__loader__, importhook.TracecLoader)
    expected = plain.run_all()
    assert traced.run_all() == expected  # hooks in pass-through mode
    traced.LOG.clear()
    with rt.record() as run:
        assert traced.run_all() == expected  # hooks recording
    functions = {node.function for node in run.nodes}
    assert {"order_traced.walrus_conditions", "order_traced.short_circuit"} <= functions
    assert {node.file for node in run.nodes} == {"order_traced.py"}


def test_graph_names_use_dotted_module_and_root_relative_path(tmp_path, isolated_imports):
    write(tmp_path / "src" / "shop" / "__init__.py", "")
    write(tmp_path / "src" / "shop" / "prompts.py", """\
        import tracec

        GREETING = tracec.param("hello", doc="greeting")


        @tracec.trace
        def greet(name):
            text = GREETING + " " + name
            return text
    """)
    importhook.install(tmp_path)
    module = load("shop.prompts", tmp_path / "src")
    with rt.record() as run:
        assert module.greet("ada") == "hello ada"
    assert [param.key for param in run.params] == ["shop.prompts:GREETING"]
    assert {node.file for node in run.nodes} == {"src/shop/prompts.py"}
    assert any(node.code == 'text = GREETING + " " + name' and node.line == 8 for node in run.nodes)


def test_module_without_a_spare_line_for_the_header(tmp_path, isolated_imports):
    source = "def kind():\n    return int\ndef double(x: kind()):\n    return x * 2\n"
    result = instrument_source(source, path="defs.py", module="defs", all_functions=True)
    assert result.changed and not result.header_placed  # the case under test
    write(tmp_path / "defs.py", source)
    importhook.install(tmp_path, all_functions=True)
    module = load("defs", tmp_path)
    with rt.record() as run:
        assert module.double(21) == 42
    assert [node.kind for node in run.nodes if node.kind == "return"] == ["return"]


def test_only_project_sources_that_want_instrumentation_are_taken(tmp_path, isolated_imports):
    traced = "import tracec\n\n@tracec.trace\ndef f(x):\n    return x + 1\n"
    write(tmp_path / "mine.py", traced)
    write(tmp_path / "unannotated.py", "def f(x):\n    return x + 1\n")
    write(tmp_path / "env" / "pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path / "env" / "lib" / "invenv.py", traced)
    write(tmp_path / "vendor" / "site-packages" / "third.py", traced)
    importhook.install(tmp_path)
    for folder in (tmp_path / "env" / "lib", tmp_path / "vendor" / "site-packages"):
        sys.path.insert(0, str(folder))
    mine, unannotated, invenv, third = (
        load(name, tmp_path) for name in ("mine", "unannotated", "invenv", "third")
    )
    assert isinstance(mine.__loader__, importhook.TracecLoader)
    for module in (unannotated, invenv, third):
        assert type(module.__loader__) is importlib.machinery.SourceFileLoader, module
    assert mine.f(1) == invenv.f(1) == third.f(1) == 2


def test_syntax_error_is_a_normal_syntax_error(tmp_path, isolated_imports):
    broken = write(tmp_path / "broken.py", "import tracec\n\ndef f(:\n    pass\n")
    importhook.install(tmp_path)
    with pytest.raises(SyntaxError) as info:
        load("broken", tmp_path)
    assert info.value.filename == str(broken)
    assert info.value.lineno == 3


def test_bytecode_cache_is_separate_and_validated(tmp_path, isolated_imports, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    source = write(tmp_path / "cached.py", "import tracec\n\n@tracec.trace\ndef f(x):\n    return x\n")
    plain_pyc = Path(importlib.util.cache_from_source(str(source)))

    load("cached", tmp_path)  # plain import writes the normal pyc
    normal_bytes = plain_pyc.read_bytes()
    del sys.modules["cached"]

    importhook.install(tmp_path)
    assert load("cached", tmp_path).f(5) == 5
    version = project.tracec_version()
    tracec_pyc = plain_pyc.with_name(f"cached.{sys.implementation.cache_tag}.tracec-{version}.pyc")
    assert tracec_pyc.is_file()
    assert plain_pyc.read_bytes() == normal_bytes  # never overwritten

    # A second import must come from the cache: instrumenting again would fail here.
    def fail(*args, **kwargs):
        raise AssertionError("re-instrumented although the cache is valid")

    monkeypatch.setattr(importhook, "compile_project_source", fail)
    del sys.modules["cached"]
    assert load("cached", tmp_path).f(6) == 6

    # Editing the source invalidates the cache ...
    source.write_text(source.read_text() + "\nEXTRA = 1\n")
    del sys.modules["cached"]
    with pytest.raises(AssertionError, match="re-instrumented"):
        load("cached", tmp_path)
    source.write_text(source.read_text().replace("\nEXTRA = 1\n", ""))
    monkeypatch.undo()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert load("cached", tmp_path).f(7) == 7
    sys.modules.pop("cached")

    # ... and so does another tracec build (an editable install whose transform changed).
    monkeypatch.setattr(importhook, "compile_project_source", fail)
    assert load("cached", tmp_path).f(8) == 8
    sys.modules.pop("cached")
    monkeypatch.setattr(importhook, "tracec_fingerprint", lambda: b"another build..!")
    with pytest.raises(AssertionError, match="re-instrumented"):
        load("cached", tmp_path)

    # --all has its own cache file.
    monkeypatch.undo()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    importhook.install(tmp_path, all_functions=True)
    sys.modules.pop("cached", None)
    load("cached", tmp_path)
    assert tracec_pyc.with_name(f"cached.{sys.implementation.cache_tag}.tracec-{version}-all.pyc").is_file()


def test_packages_and_relative_imports(tmp_path, isolated_imports):
    write(tmp_path / "pkg" / "__init__.py", "import tracec\nfrom .core import total\n")
    write(tmp_path / "pkg" / "core.py", """\
        import tracec
        from . import helpers


        @tracec.trace
        def total(values):
            return helpers.double(sum(values))
    """)
    write(tmp_path / "pkg" / "helpers.py", "def double(x):\n    return 2 * x\n")
    importhook.install(tmp_path)
    pkg = load("pkg", tmp_path)
    assert isinstance(sys.modules["pkg.core"].__loader__, importhook.TracecLoader)
    with rt.record() as run:
        assert pkg.total([1, 2, 3]) == 12
    assert {node.function for node in run.nodes} == {"pkg.core.total"}


def test_install_and_uninstall(tmp_path, isolated_imports):
    importhook.install(tmp_path)
    importhook.install(tmp_path)
    assert isinstance(sys.meta_path[0], importhook.TracecFinder)
    assert sum(isinstance(f, importhook.TracecFinder) for f in sys.meta_path) == 1
    importhook.uninstall()
    assert not any(isinstance(f, importhook.TracecFinder) for f in sys.meta_path)
    write(tmp_path / "after.py", "import tracec\n\n@tracec.trace\ndef f():\n    return 1\n")
    assert type(load("after", tmp_path).__loader__) is importlib.machinery.SourceFileLoader

"""Code Python compiles but LibCST cannot parse or print back unchanged is still instrumented, its lines
kept and its behaviour unchanged: one construct per test, the output's lines written out."""

from __future__ import annotations

import sys
import textwrap

import pytest
from support import instrumented_body, load_module

import tracec
from tracec.commands.check_rules import annotation_problems
from tracec.transforms import instrument_source

HANDLER = """\
def inverse(x):
    try:
        return 1 / x
    except ZeroDivisionError \\
            :
        return 0
"""


def run_both(tmp_path, name, source, call):
    """(plain result, instrumented result, the recorded run): the module loaded as written and
    instrumented, the same call on each."""
    plain = call(load_module(tmp_path, name + "_plain", source, instrument=False))
    module = load_module(tmp_path, name, source, instrument=True)
    with tracec.record() as run:
        instrumented = call(module)
    assert run.internal_errors == 0
    return plain, instrumented, run


def test_handler_type_before_a_continued_colon_is_parenthesised():
    # LibCST prints `except ZeroDivisionError:` here, losing a line; the parentheses keep it
    assert instrumented_body(HANDLER, all_functions=True) == """\
def inverse(x):
    try:
        _tracec_e(0, (x,)); return _tracec_r(0, 1 / x)
    except (ZeroDivisionError \\
            ):
        _tracec_h(1); return _tracec_r(2, 0)
"""


def test_handler_with_continued_colon_behaves_and_records(tmp_path):
    plain, instrumented, run = run_both(tmp_path, "handler", HANDLER, lambda m: (m.inverse(0), m.inverse(4)))
    assert instrumented == plain == (0, 0.25)
    assert [n.line for n in run.nodes if n.name == "except"] == [4]


def test_tuple_handler_in_parentheses_keeps_them():
    source = "def f(x):\n    try:\n        return int(x)\n    except(ValueError, TypeError) \\\n  \\\n :\n        return -1\n"
    body = instrumented_body(source, all_functions=True)
    assert body.splitlines()[3:6] == ["    except((ValueError, TypeError) \\", "  \\", " ):"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is Python 3.11+")
def test_star_handler_with_continued_colon(tmp_path):
    source = ("def f(x):\n    seen = []\n    try:\n        raise ExceptionGroup('g', [ValueError(x)])\n"
              "    except* ValueError \\\n            :\n        seen.append(x)\n    return seen\n")
    assert instrumented_body(source, all_functions=True).splitlines()[4:6] == [
        "    except* (ValueError \\", "            ):"]
    plain, instrumented, _ = run_both(tmp_path, "star", source, lambda m: m.f(3))
    assert instrumented == plain == [3]


def test_handler_after_a_line_that_is_only_a_backslash(tmp_path):
    # found by grammar fuzzing: the tokenize module misreads such a line (Python's parser does not)
    source = ("def inverse(x):\n    try:\n        return 1 / x\n\\\n\n"
              "    except(ZeroDivisionError)\\\n:\n        return 0\n")
    assert instrumented_body(source, all_functions=True).splitlines()[5:7] == [
        "    except((ZeroDivisionError)\\", "):"]
    plain, instrumented, _ = run_both(tmp_path, "backslash_line", source, lambda m: (m.inverse(0), m.inverse(2)))
    assert instrumented == plain == (0, 0.5)


def test_handler_with_name_is_left_as_written():
    # `except T as e \` + `:` LibCST keeps, and `(T as e)` would be no type
    source = "def f(x):\n    try:\n        return int(x)\n    except ValueError as e \\\n      :\n        return str(e)\n"
    assert instrumented_body(source, all_functions=True).splitlines()[3:5] == [
        "    except ValueError as e \\", "      :"]


def test_parenthesised_annotated_target_is_kept_as_written(tmp_path):
    source = textwrap.dedent("""\
        def total():
            (count): int
            (step): int = (
                2)
            return step * 3
        """)
    assert instrumented_body(source, all_functions=True) == textwrap.dedent("""\
        def total():
            _tracec_e(0, ()); (count): int
            (step): int = (
                2)
            return _tracec_r(0, step * 3)
        """)
    plain, instrumented, run = run_both(tmp_path, "annotated", source, lambda m: m.total())
    assert instrumented == plain == 6
    assert [n.line for n in run.nodes if n.kind == "return"] == [5]


def test_parenthesised_annotated_target_keeps_its_name_error(tmp_path):
    # `(name): int` does not make `name` local: reading it is a NameError, not an UnboundLocalError
    source = "def f():\n    (no_such_global): int\n    return no_such_global\n"

    def call(module):
        try:
            module.f()
        except Exception as exc:
            return type(exc).__name__, exc.__traceback__.tb_next.tb_lineno
    plain, instrumented, _ = run_both(tmp_path, "name_error", source, call)
    assert instrumented == plain == ("NameError", 3)


def test_parenthesised_annotated_target_at_module_and_class_level(tmp_path):
    source = "(flag): bool = True\nclass Box:\n    (size): int = 3\n    def area(self):\n        return self.size ** 2\n"
    code = instrument_source(source, path="box.py", module="box", all_functions=True).code
    assert code.splitlines()[0].endswith("(flag): bool = True") and code.splitlines()[2] == "    (size): int = 3"
    plain, instrumented, _ = run_both(tmp_path, "box", source, lambda m: (m.flag, m.Box().area(), m.Box.__annotations__))
    assert instrumented == plain == (True, 9, {})


def test_statement_the_pass_needs_is_never_masked():
    # masking the `return` would hide it from the pass's bookkeeping: the file stays uninstrumented
    source = "def f():\n    (x): int = 2; return x\n"
    result = instrument_source(source, path="r.py", module="r", all_functions=True)
    assert result.code is None and str(result.internal).startswith("r.py:2: internal error: LibCST cannot parse this")


def test_check_reads_a_file_with_a_parenthesised_target():
    source = "import tracec\n\n@tracec.trace\ndef f(x=tracec.param({1})):\n    (y): int\n    return 1\n"
    assert [(p.line, p.code) for p in annotation_problems(source, "m.py")] == [(4, "TC101")]

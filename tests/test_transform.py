"""Before/after tests of the instrumenting pass: one rule per test, source strings in and out."""

import textwrap

import pytest
from support import assert_transform, instrumented_body

from tracec.transforms import instrument_source


def check(before: str, after: str, **options) -> None:
    assert_transform(lambda source: instrumented_body(source, **options), before, after)


def traced(body: str) -> str:
    """A traced two-argument function around `body` (its lines indented by 4)."""
    return "import tracec\n@tracec.trace\ndef f(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")


ENTRY = "_tracec_e(0, (a, b)); "   # the entry hook takes the first line it can share


def test_assignment_records_its_value():
    check(traced("x = a + b\n"), traced(ENTRY + "x = _tracec_v(0, a + b)\n"))


def test_annotated_assignment_keeps_its_annotation():
    check(traced("y: int = a * 2\n"), traced(ENTRY + "y: int = _tracec_v(0, a * 2)\n"))


def test_augmented_assignment_records_the_name_after_it():
    check(traced("a += 1\n"), traced(ENTRY + "a += 1; _tracec_v(0, a)\n"))


def test_attribute_assignment_records_the_assigned_value():
    check(traced("a.attr = b\n"), traced(ENTRY + "a.attr = _tracec_v(0, b)\n"))


def test_subscript_assignment_records_the_assigned_value():
    check(traced("b[0] = a\n"), traced(ENTRY + "b[0] = _tracec_v(0, a)\n"))


def test_expression_statement_records_its_value():
    check(traced("b.append(a)\n"), traced(ENTRY + "_tracec_v(0, b.append(a))\n"))


def test_return_records_the_returned_value():
    check(traced("return a\n"), traced(ENTRY + "return _tracec_r(0, a)\n"))


def test_entry_hook_shares_the_docstring_line():
    check(traced('"""Doc."""\nreturn a\n'), traced('"""Doc."""; ' + ENTRY.rstrip("; ") + "\nreturn _tracec_r(0, a)\n"))


def test_if_elif_else_conditions_record_which_way_they_went():
    check("""
        def f(xs):
            if xs:
                n = 1
            elif len(xs) > 2:
                n = 2
            else:
                n = 3
        """, """
        def f(xs):
            if (_tracec_e(0, (xs,)) and None or (_tracec_c(0, True) if xs else _tracec_c(0, False))):
                n = _tracec_v(1, 1)
            elif (_tracec_c(2, True) if len(xs) > 2 else _tracec_c(2, False)):
                n = _tracec_v(3, 2)
            else:
                n = _tracec_v(4, 3)
        """, all_functions=True)


def test_while_condition_is_recorded_each_time_and_takes_no_entry_hook():
    # the entry cannot go into a condition that runs on every iteration: the runtime enters lazily
    check("""
        def f(xs):
            while xs: xs.pop()
        """, """
        def f(xs):
            while (_tracec_c(0, True) if xs else _tracec_c(0, False)): _tracec_v(1, xs.pop())
        """, all_functions=True)


def test_for_loop_records_its_iterable():
    check("""
        def f(xs):
            for i, x in enumerate(xs):
                print(i)
        """, """
        def f(xs):
            for i, x in (_tracec_e(0, (xs,)) and None or _tracec_c(0, enumerate(xs))):
                _tracec_v(1, print(i))
        """, all_functions=True)


def test_with_records_every_item_after_the_first_which_carries_the_entry():
    check("""
        def f(xs):
            with open("f") as fh, open("g") as gh:
                pass
        """, """
        def f(xs):
            with (_tracec_e(0, (xs,)) and None or open("f")) as fh, _tracec_c(0, open("g")) as gh:
                pass
        """, all_functions=True)


def test_try_handlers_get_a_prologue_and_the_entry_goes_inside_try():
    check("""
        def f(x):
            try:
                y = 1 / x
            except ZeroDivisionError as e:
                y = 0
            except Exception:
                raise
            finally:
                z = 2
            return y
        """, """
        def f(x):
            try:
                _tracec_e(0, (x,)); y = _tracec_v(0, 1 / x)
            except ZeroDivisionError as e:
                _tracec_h(1); y = _tracec_v(2, 0)
            except Exception:
                _tracec_h(3); raise
            finally:
                z = _tracec_v(5, 2)
            return _tracec_r(6, y)
        """, all_functions=True)


def test_match_generators_and_async():
    check("""
        def f(p):
            match p:
                case (a, b):
                    return a
            return None
        def g(n):
            x = yield n
            yield
            yield from range(n)
            return 1, 2
        async def h(q):
            r = await q
            async for v in q:
                yield v
            return
        """, """
        def f(p):
            match (_tracec_e(0, (p,)) and None or _tracec_c(0, p)):
                case (a, b):
                    return _tracec_r(1, a)
            return _tracec_r(2, None)
        def g(n):
            _tracec_e(1, (n,)); x = _tracec_v(3, (yield _tracec_y(4, n)))
            yield _tracec_y(5, None)
            yield from _tracec_y(6, range(n))
            return _tracec_r(7, (1, 2))
        async def h(q):
            _tracec_e(2, (q,)); r = _tracec_v(8, await q)
            async for v in _tracec_c(9, q):
                yield _tracec_y(10, v)
            _tracec_r(11, None); return
        """, all_functions=True)


def test_annotations_aliases_params_nested_functions_and_lambdas():
    check("""
        from __future__ import annotations
        import tracec as tc
        from tracec import trainable as tr, param
        P = tc.param(0.5, doc="temperature")
        class A:
            K = param("k", name="custom")
            @tc.trace
            def m(self, x):
                def inner(y):
                    return y + x
                return inner(x), (lambda z: z)(1), [w * 2 for w in range(x) if w]
            @staticmethod
            @tr(doc="be nice")
            def s(x): return x, 1
        def plain(x):
            return x
        @tc.trace
        def f(a):
            if (n := len(a)) > 1:
                return (n,
                        a)
            return -1
        """, """
        from __future__ import annotations
        import tracec as tc
        from tracec import trainable as tr, param
        P = _tracec_p(0, tc.param(0.5, doc="temperature"))
        class A:
            K = _tracec_p(1, param("k", name="custom"))
            @tc.trace
            def m(self, x):
                def inner(y):
                    _tracec_e(1, (y,)); return _tracec_r(0, y + x)
                return _tracec_r(1, (inner(x), (lambda z: z)(1), [w * 2 for w in range(x) if w]))
            @staticmethod
            @tr(doc="be nice")
            def s(x): _tracec_e(2, (x,)); return _tracec_r(2, (x, 1))
        def plain(x):
            return x
        @tc.trace
        def f(a):
            if (_tracec_e(3, (a,)) and None or (_tracec_c(3, True) if (n := len(a)) > 1 else _tracec_c(3, False))):
                return _tracec_r(4, (n,
                        a))
            return _tracec_r(5, -1)
        """)


def test_unannotated_module_is_left_alone_and_pragma_traces_everything():
    source = "import tracec\n\ndef f(x):\n    return x\n"
    assert instrument_source(source, path="m.py", module="m").code == source
    assert "_tracec_r(0, x)" in instrument_source("# tracec: trace-module\n" + source, path="m.py",
                                                     module="m").code


@pytest.mark.parametrize("source, expected_first_lines", [
    ("#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\ndef f(x):\n    return x\n",
     ["#!/usr/bin/env python", "# -*- coding: utf-8 -*-", "HEADER"]),
    ("# a comment\ndef f(x):\n    return x\n", ["HEADER  # a comment"]),
    ('"""Doc."""\nimport os\ndef f(x):\n    return x\n', ['"""Doc."""; HEADER', "import os"]),
    ("import os\ndef f(x):\n    return x\n", ["HEADER; import os"]),
    ("def f(x):\n    return x\nimport os\n", ["def f(x):", "    _tracec_e(0, (x,)); return _tracec_r(0, x)",
                                             "HEADER; import os"]),
])
def test_header_goes_on_an_existing_line(source, expected_first_lines):
    result = instrument_source(source, path="m.py", module="m", all_functions=True)
    assert result.header_placed
    lines = result.code.replace(result.header, "HEADER").splitlines()
    assert lines[: len(expected_first_lines)] == expected_first_lines
    assert len(lines) == len(source.splitlines())


def test_header_can_ride_on_the_first_expression_the_module_evaluates():
    source = 'def f(x):\n    return x\nif __name__ == "__main__":\n    print(f(3))\n'
    result = instrument_source(source, path="m.py", module="m", all_functions=True)
    assert result.header_placed
    assert result.code.splitlines()[2].startswith("if (_tracec_m := __import__('tracec.runtime'")
    assert result.code.splitlines()[2].endswith(' and (True if __name__ == "__main__" else False):')
    namespace = {"__name__": "m"}
    exec(compile(result.code, "m.py", "exec"), namespace)
    assert namespace["f"](2) == 2


def test_header_of_a_module_of_plain_definitions_becomes_its_new_last_line():
    # executing `def` statements runs nothing, so the header may come after them: no line moves
    result = instrument_source("def f(x):\n    return x\n", path="m.py", module="m", all_functions=True)
    assert result.header_placed
    assert result.code.splitlines() == ["def f(x):", "    _tracec_e(0, (x,)); return _tracec_r(0, x)", result.header]
    namespace: dict = {}
    exec(compile(result.code, "m.py", "exec"), namespace)
    assert namespace["f"](3) == 3


def test_header_that_has_no_line_is_reported_not_forced():
    # f's annotation calls g when the `def` runs, and there is no blank line, default or decorator to use
    source = "def g():\n    return int\ndef f(x: g()):\n    return x\n"
    result = instrument_source(source, path="m.py", module="m", all_functions=True)
    assert not result.header_placed
    assert result.header.startswith("import tracec.runtime as _tracec_rt; _tracec_m = ")
    namespace: dict = {}
    exec(result.header, namespace)
    exec(compile(result.code, "m.py", "exec"), namespace)
    assert namespace["f"](3) == 3


def test_syntax_error_is_returned_with_position():
    result = instrument_source("import tracec\n\ndef f(:\n    pass\n", path="pkg/bad.py", module="bad")
    assert result.code is None
    assert (result.error.path, result.error.line) == ("pkg/bad.py", 3)
    assert str(result.error).startswith("pkg/bad.py:3:")


def test_multiline_statements_keep_every_line():
    before = """
        import tracec
        @tracec.trace
        def f(a):
            x = [a,
                 a + 1,  # comment
                 a + 2]
            return (x
                    + [3])
        """
    after = instrumented_body(before)
    assert after.splitlines()[4:7] == ["    _tracec_e(0, (a,)); x = _tracec_v(0, [a,",
                                       "         a + 1,  # comment", "         a + 2])"]


def test_a_doc_split_over_lines_as_joined_strings_is_read_whole():
    # the doc is what the prompt's #Constraints shows and where bounds (`max 2`) are read from
    source = 'import tracec\nGAIN = tracec.param(0.5, doc="gain, "\n                          "min 0, max 2")\n'
    result = instrument_source(source, path="m.py", module="m")
    _, _, params = result.tables
    assert [(name, doc) for name, _, doc, _ in params] == [("GAIN", "gain, min 0, max 2")]


def test_statement_texts_after_a_form_feed_line_are_the_statements_own():
    # str.splitlines cuts at a form feed, Python does not: the graph's code texts came from the wrong lines
    source = "import os\n\x0c\ndef f(x):\n    y = x + 1\n    return y\n"
    result = instrument_source(source, path="m.py", module="m", all_functions=True)
    assert "'def f(x):'" in result.header and "'y = x + 1'" in result.header and "'return y'" in result.header


def test_yield_from_with_a_line_break_after_from_keeps_it():
    # found by mypy: the whitespace after `from` is then a ParenthesizedWhitespace, and the pass crashed
    # on it (the file was left uninstrumented)
    check("""
        def g(xs):
            x = (yield from
                 xs)
            return x
        """, """
        def g(xs):
            _tracec_e(0, (xs,)); x = _tracec_v(0, (yield from
                 _tracec_y(1, xs)))
            return _tracec_r(2, x)
        """, all_functions=True)

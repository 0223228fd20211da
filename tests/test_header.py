"""Where the runtime header goes (transforms/header.py): one placement rule per test, before/after source.

In the expected text HEADER stands for the header statement and HDR for its assignment-expression form.
Every case also runs: the module must work, which proves the header ran before any hook was called."""

from __future__ import annotations

import sys
import textwrap

import pytest

import tracec
from tracec.importhook import compile_instrumented
from tracec.transforms import instrument_source
from tracec.transforms.header import header_on_new_line


def placed(source: str) -> str:
    source = textwrap.dedent(source).lstrip("\n")
    result = instrument_source(source, path="m.py", module="m", all_functions=True)
    assert result.internal is None and result.error is None and result.header_placed
    statement = result.header
    expression = "(_tracec_m := __import__('tracec.runtime', fromlist=['module']).module(" + \
        statement.split("_tracec_rt.module(", 1)[1] + ")"
    code = result.code.replace(expression, "HDR").replace(statement, "HEADER")
    namespace = {"__name__": "m", "__file__": __file__}
    exec(compile(result.code, "m.py", "exec"), namespace)   # runs: the hooks were bound in time
    assert callable(namespace.get("_tracec_v"))
    return code


def check(before: str, after: str) -> None:
    before, after = (textwrap.dedent(text).lstrip("\n") for text in (before, after))
    assert placed(before) == after
    assert after.count("\n") == before.count("\n")   # the new-last-line case is tested on its own


def test_after_the_docstring_on_its_line():
    check('''
        """Doc."""
        def f():
            return 1
        ''', '''
        """Doc."""; HEADER
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        ''')


def test_after_future_imports_on_the_last_of_their_lines():
    check('''
        from __future__ import annotations
        from __future__ import division
        def f():
            return 1
        ''', '''
        from __future__ import annotations
        from __future__ import division; HEADER
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        ''')


def test_in_front_of_the_first_simple_statement():
    check('''
        import os
        def f():
            return os.sep
        ''', '''
        HEADER; import os
        def f():
            _tracec_e(0, ()); return _tracec_r(0, os.sep)
        ''')


def test_on_a_comment_line_keeping_the_comment():
    check('''
        # helpers
        def f():
            return 1
        f()
        ''', '''
        HEADER  # helpers
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        f()
        ''')


def test_never_on_the_shebang_or_encoding_line():
    before = "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\ndef f():\n    return 1\nf()\n"
    assert placed(before).splitlines()[:3] == ["#!/usr/bin/env python", "# -*- coding: utf-8 -*-", "def f():"]


def test_on_a_blank_line_between_definitions():
    check('''
        def f():
            return 1

        class A:
            x = f()
        ''', '''
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        HEADER
        class A:
            x = f()
        ''')


def test_a_first_class_takes_it_as_its_base_expression():
    # `class A:` and `class A(object):` make the same class (same __bases__ and __mro__)
    check('''
        class A:
            def f(self):
                return 1
        A().f()
        ''', '''
        class A(HDR and (object)):
            def f(self):
                _tracec_e(0, (self,)); return _tracec_r(0, 1)
        A().f()
        ''')


def test_a_first_class_with_bases_takes_it_on_its_first_base():
    check('''
        class A(dict, metaclass=type):
            def f(self):
                return 1
        ''', '''
        class A(HDR and (dict), metaclass=type):
            def f(self):
                _tracec_e(0, (self,)); return _tracec_r(0, 1)
        ''')


def test_a_first_class_with_only_keywords_takes_it_on_the_first_keyword():
    check('''
        class A(metaclass=type):
            def f(self):
                return 1
        ''', '''
        class A(metaclass=HDR and (type)):
            def f(self):
                _tracec_e(0, (self,)); return _tracec_r(0, 1)
        ''')


def test_a_decorated_definition_takes_it_on_its_first_decorator():
    check('''
        @staticmethod
        def f():
            return 1
        ''', '''
        @HDR and (staticmethod)
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        ''')


def test_a_definition_whose_default_calls_code_takes_it_on_its_first_default():
    check('''
        def g():
            return 1
        def f(x, y=g()):
            return y
        ''', '''
        def g():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        def f(x, y=HDR and (g())):
            _tracec_e(1, (x, y)); return _tracec_r(1, y)
        ''')


@pytest.mark.parametrize("before, after", [
    ("if True:\n    x = 1\n", "if HDR and (True if True else False):\n    x = 1\n"),
    ("for i in [1]:\n    x = i\n", "for i in HDR and ([1]):\n    x = i\n"),
    ("with open(__file__):\n    x = 1\n", "with HDR and (open(__file__)):\n    x = 1\n"),
    ("match 1:\n    case _:\n        x = 1\n", "match HDR and (1):\n    case _:\n        x = 1\n"),
    # the test of a `while` runs again on every iteration: the hooks are bound on the first only
    ("while 0:\n    x = 1\n", "while ('_tracec_m' in globals() or HDR) and (0):\n    x = 1\n"),
])
def test_a_first_compound_statement_takes_it_in_the_expression_it_evaluates_first(before, after):
    function = "def f():\n    return 1\n"
    expected = "def f():\n    _tracec_e(0, ()); return _tracec_r(0, 1)\n"
    assert placed(function + before) == expected + after


def test_a_first_try_takes_it_in_its_body():
    check('''
        def f():
            return 1
        try:
            x = f()
        except ImportError:
            pass
        ''', '''
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        try:
            HEADER; x = f()
        except ImportError:
            pass
        ''')


def test_a_module_of_plain_definitions_takes_it_on_a_trailing_comment():
    check('''
        def f():
            return 1
        # end
        ''', '''
        def f():
            _tracec_e(0, ()); return _tracec_r(0, 1)
        HEADER  # end
        ''')


def test_a_module_of_plain_definitions_without_a_spare_line_gets_a_new_last_line():
    # nothing runs before the module has been executed, and a new last line moves no line
    assert placed("def f():\n    return 1\n") == "def f():\n    _tracec_e(0, ()); return _tracec_r(0, 1)\nHEADER\n"


# -- when nothing can carry it: a generic class first (3.12+) ------------------------------------

GENERIC_FIRST = "#!/usr/bin/env python\nclass Box[T]:\n    def get(self):\n        return 1\nprint(Box().get())\n"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="generic classes are Python 3.12+")
def test_unplaced_header_is_a_new_line_after_the_shebang_in_the_build():
    result = instrument_source(GENERIC_FIRST, path="m.py", module="m", all_functions=True)
    assert not result.header_placed
    code = header_on_new_line(result.code, result.header)
    assert code.splitlines()[:3] == ["#!/usr/bin/env python", result.header, "class Box[T]:"]
    namespace = {"__name__": "m"}
    exec(compile(code, "m.py", "exec"), namespace)
    assert namespace["Box"]().get() == 1


@pytest.mark.skipif(sys.version_info < (3, 12), reason="generic classes are Python 3.12+")
def test_unplaced_header_is_spliced_into_the_tree_by_the_import_hook_keeping_every_line():
    result = instrument_source(GENERIC_FIRST, path="m.py", module="m", all_functions=True)
    code = compile_instrumented(result, "m.py")
    namespace = {"__name__": "m"}
    with tracec.record() as run:
        exec(code, namespace)
    assert [(n.name, n.line) for n in run.nodes if n.kind == "return"] == [("return", 4)]

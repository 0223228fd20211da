"""Before/after tests of the patch writer: source strings in, source strings out, everything else untouched."""

from __future__ import annotations

import textwrap
from pathlib import Path

import black
import pytest
from support import assert_transform
from test_cli_apply import standard_tools_accept

from tracec.patches.patch_file import read_patch, render_diff, write_patch
from tracec.patches.splice import Change, PatchError, black_mode, rewrite_source

MODE = black.Mode()


def rewrite(before: str, *changes: Change, mode=MODE, path: str = "m.py") -> str:
    return rewrite_source(textwrap.dedent(before), path, changes, mode)


def check(before: str, after: str, *changes: Change, mode=MODE) -> None:
    assert_transform(lambda source: rewrite_source(source, "m.py", changes, mode), before, after)


def value(line: int, new, key: str = "m:X") -> Change:
    return Change(key, "value", line, new)


def code(line: int, new: str, key: str = "m:f") -> Change:
    return Change(key, "code", line, textwrap.dedent(new))


# -- values -------------------------------------------------------------------------------------------

def test_value_replaces_only_the_literal_keeping_doc_comments_and_odd_spacing():
    check("""
        import tracec
        X   =   tracec.param( 2 ,doc = "threshold" )   # tuned by hand
        Y = tracec.param(2)
        """, """
        import tracec
        X   =   tracec.param( 3 ,doc = "threshold" )   # tuned by hand
        Y = tracec.param(2)
        """, value(3, 3))


@pytest.mark.parametrize("imports, call", [
    ("import tracec as tc", "tc.param"),
    ("from tracec import param", "param"),
    ("from tracec import param as knob", "knob"),
])
def test_value_found_under_any_import_alias(imports, call):
    check(f"""
        {imports}
        X = {call}('old')
        """, f"""
        {imports}
        X = {call}("new")
        """, value(3, "new"))


def test_a_same_named_call_that_is_not_tracec_is_not_a_target():
    with pytest.raises(PatchError, match=r"^m\.py:3: no tracec\.param\( call on this line for m:X"):
        rewrite("""
            from other import param
            X = param(1)
            """, value(3, 2))


def test_value_keeps_type_exactly():
    check("""
        import tracec
        A = tracec.param(1)
        B = tracec.param(1.5)
        C = tracec.param(True)
        D = tracec.param({"k": (1, None)})
        """, """
        import tracec
        A = tracec.param(1.0)
        B = tracec.param(2)
        C = tracec.param(False)
        D = tracec.param({"k": [1, "x"]})
        """, value(3, 1.0, "m:A"), value(4, 2, "m:B"), value(5, False, "m:C"), value(6, {"k": [1, "x"]}, "m:D"))


def test_value_follows_the_projects_string_normalization():
    check("""
        import tracec
        X = tracec.param("a")
        """, """
        import tracec
        X = tracec.param('b')
        """, value(3, "b"), mode=black.Mode(string_normalization=False))


def test_long_value_is_black_formatted_and_indented_with_its_line():
    check("""
        import tracec
        def f():
            labels = tracec.param(["a"], doc="labels")
            return labels
        """, """
        import tracec
        def f():
            labels = tracec.param([
                "billing question",
                "technical problem",
                "account access",
                "something else entirely",
            ], doc="labels")
            return labels
        """, value(4, ["billing question", "technical problem", "account access", "something else entirely"]))


def test_multiline_prompt_stays_triple_quoted_and_exact():
    new = 'Answer briefly.\nNever say "no".\n  Indented \\ line'
    after = rewrite('''
        import tracec
        class Agent:
            PROMPT = tracec.param("""You are helpful.
        Be kind.""")
        ''', value(4, new, "m:Agent.PROMPT"))
    assert after == textwrap.dedent('''
        import tracec
        class Agent:
            PROMPT = tracec.param("""Answer briefly.
        Never say "no".
          Indented \\\\ line""")
        ''')
    namespace = {}
    exec(after.replace("import tracec", "from tracec import api as tracec"), namespace)
    assert namespace["Agent"].PROMPT == new


def test_value_given_by_keyword_and_parenthesised_value():
    check("""
        import tracec
        X = tracec.param(doc="d", value=1)
        Y = tracec.param((  1  ))
        """, """
        import tracec
        X = tracec.param(doc="d", value=2)
        Y = tracec.param((  2  ))
        """, value(3, 2), value(4, 2, "m:Y"))


@pytest.mark.parametrize("source, new, message", [
    ("X = tracec.param(DEFAULT)", 1, r"m\.py:2: the value of m:X is not written as a literal; write it as one"),
    ("X = tracec.param(1); Y = tracec.param(2)", 3, r"m\.py:2: more than one tracec\.param\( call"),
    ("X = tracec.param(1)", {1, 2}, r"m\.py:2: tracec\.param: the new value must be a literal"),
    ("X = tracec.param(1.0)", float("nan"), r"m\.py:2: tracec\.param: the new value must be a literal .*, got nan"),
    ("X = 1", 2, r"m\.py:2: no tracec\.param\( call on this line for m:X; the file changed"),
])
def test_value_refusals_are_one_line_and_say_what_to_do(source, new, message):
    with pytest.raises(PatchError, match="^" + message) as info:
        rewrite(f"import tracec\n{source}\n", value(2, new))
    assert "\n" not in str(info.value)


# -- code ---------------------------------------------------------------------------------------------

def test_def_replaced_keeping_decorators_comments_and_everything_around_it():
    check('''
        import tracec
        x=[1,2]   # not black-formatted, and stays so


        # What the classifier does.
        @tracec.trainable(doc="label a ticket")
        # between decorator and def
        def classify(text):
            """Old."""
            return "bug" if "crash" in text else "other"  # old tail
        # a footer comment stays


        def helper( a ):
            return a
        ''', '''
        import tracec
        x=[1,2]   # not black-formatted, and stays so


        # What the classifier does.
        @tracec.trainable(doc="label a ticket")
        # between decorator and def
        def classify(text):
            """New."""
            if "refund" in text:
                return "billing"
            return "bug" if "crash" in text else "other"
        # a footer comment stays


        def helper( a ):
            return a
        ''', code(9, '''
        @tracec.trainable(doc="the reply's decorators are ignored")
        def classify(text):
          """New."""
          if 'refund' in text: return 'billing'
          return 'bug' if 'crash' in text else 'other'
        ''', "m:classify"))


def test_method_is_formatted_at_its_depth_and_strings_keep_their_value():
    new_def = '''
    async def act(self, x):
        """Act.

        Second paragraph."""
        text = """keep
      exactly"""
        return await self.call(x, text, a_rather_long_keyword_argument=1, another_keyword_argument=22)
    '''
    after = rewrite('''
        import tracec
        class Agent:
            class Inner:
                @tracec.trainable
                async def act(self, x):
                    return x
        ''', Change("m:Agent.Inner.act", "code", 6, new_def))   # as replied: still indented
    assert after == textwrap.dedent('''
        import tracec
        class Agent:
            class Inner:
                @tracec.trainable
                async def act(self, x):
                    """Act.

                    Second paragraph."""
                    text = """keep
          exactly"""
                    return await self.call(
                        x, text, a_rather_long_keyword_argument=1, another_keyword_argument=22
                    )
        ''')


def test_code_and_value_changes_in_one_file_whatever_the_line_shift():
    check("""
        import tracec
        @tracec.trainable
        def f(a):
            return a
        X = tracec.param(1)
        """, """
        import tracec
        @tracec.trainable
        def f(a):
            b = a * 2
            return b
        X = tracec.param(2)
        """, code(4, "def f(a):\n    b = a*2\n    return b\n"), value(6, 2))


def test_crlf_file_keeps_crlf_in_new_code():
    before = "import tracec\r\n@tracec.trainable\r\ndef f():\r\n    return 1\r\nX = tracec.param(1)\r\n"
    after = rewrite_source(before, "m.py", [code(3, "def f():\n    y = 2\n    return y\n"), value(5, 2)], MODE)
    assert after == ("import tracec\r\n@tracec.trainable\r\ndef f():\r\n    y = 2\r\n    return y\r\n"
                     "X = tracec.param(2)\r\n")


@pytest.mark.parametrize("line, key, new, message", [
    (3, "m:f", "def f(:\n    pass", r"m\.py:3: the new code for m:f does not parse"),
    (3, "m:f", "def g():\n    return 1", r"m\.py:3: the new code renames f to g; a trainable function keeps"),
    (3, "m:f", "import os\ndef f():\n    return 1", r"m\.py:3: the new code for m:f must be exactly one def"),
    (3, "m:f", "def f():\n    return 1\ndef f():\n    return 2", r"m\.py:3: the new code for m:f must be exactly"),
    (3, "m:f", "def f():\n    return", r"m\.py:3: the new code for m:f is a"),
    (9, "m:f", "def f():\n    return 1", r"m\.py:9: no def of m:f on this line; the file changed"),
    (3, "m:g", "def g():\n    return 1", r"m\.py:3: no def of m:g on this line; the file changed"),
])
def test_code_refusals(line, key, new, message):
    change = Change(key, "code", line, b"bytes" if " is a" in message else new)
    with pytest.raises(PatchError, match="^" + message):
        rewrite("import tracec\n@tracec.trainable\ndef f():\n    return 0\n", change)


def test_code_found_by_its_first_decorator_line_too():
    check("""
        import tracec
        @tracec.trainable(
            doc="d",
        )
        @other
        def f():
            return 0
        """, """
        import tracec
        @tracec.trainable(
            doc="d",
        )
        @other
        def f():
            return 1
        """, code(3, "def f(): return 1"))


def test_new_code_with_a_nested_helper_def():
    check("""
        import tracec
        @tracec.trainable
        def f(x):
            return x
        """, """
        import tracec
        @tracec.trainable
        def f(x):
            def helper(y):
                return y + 1

            return helper(x)
        """, code(3, "def f(x):\n    def helper(y):\n        return y + 1\n    return helper(x)"))


def test_a_param_inside_a_replaced_def_is_an_overlap():
    with pytest.raises(PatchError, match=r"^m\.py:3: m:f\.X lies inside m:f"):
        rewrite("import tracec\ndef f():\n    X = tracec.param(1)\n    return X\n",
                code(2, "def f():\n    return 2\n"), value(3, 5, "m:f.X"))


def test_no_changes_returns_the_source_untouched():
    source = "x  =  1\n"
    assert rewrite_source(source, "m.py", [], MODE) is source


# -- black settings -------------------------------------------------------------------------------------

def test_black_mode_reads_tool_black(tmp_path: Path):
    assert black_mode(tmp_path) == black.Mode()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.black]\nline-length = 40\ntarget-version = ["py310"]\nskip-string-normalization = true\n'
        "skip-magic-trailing-comma = true\n")
    mode = black_mode(tmp_path)
    assert (mode.line_length, mode.string_normalization, mode.magic_trailing_comma) == (40, False, False)
    assert mode.target_versions == {black.TargetVersion.PY310}
    after = rewrite("import tracec\ndef f(): return 0\n",
                    code(2, "def f():\n    return call_something('with', 'several', 'args')\n"), mode=mode)
    assert after == ("import tracec\ndef f():\n    return call_something(\n"
                     "        'with', 'several', 'args'\n    )\n")


def test_black_mode_bad_target_version_is_one_line(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.black]\ntarget-version = ["py2"]\n')
    with pytest.raises(PatchError, match=r"pyproject\.toml: \[tool\.black\] target-version 'PY2' is unknown"):
        black_mode(tmp_path)


# -- diffs and patch files ------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, tail", [
    ("a\nb", "a\nc", "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"),
    ("a\nb", "a\nb\n", "-b\n\\ No newline at end of file\n+b\n"),
    ("a\nb\n", "a\nb", "-b\n+b\n\\ No newline at end of file\n"),
    ("a\nb\n", "a\nc\n", "-b\n+c\n"),
])
def test_render_diff_marks_missing_final_newlines(old, new, tail, tmp_path: Path):
    diff = render_diff(old, new, "src/m.py")
    assert diff.startswith("diff --git a/src/m.py b/src/m.py\n--- a/src/m.py\n+++ b/src/m.py\n@@ ")
    assert diff.endswith(" a\n" + tail)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text(old)
    (tmp_path / "m.diff").write_text(diff)
    standard_tools_accept(tmp_path, tmp_path / "m.diff")


def test_render_diff_of_equal_texts_is_empty():
    assert render_diff("a\n", "a\n", "m.py") == ""


def test_write_patch_numbers_names_and_header(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "triage.py").write_text("X = 1\n")
    first = write_patch(tmp_path, "pkg/triage.py", "X = 1\n", "X = 2\n", keys=["pkg.triage:X"],
                        summary="X: 1 -> 2\nscore 0.5 -> 0.75")
    second = write_patch(tmp_path, "pkg/triage.py", "X = 2\n", "X = 3\n",
                         keys=["pkg.triage:Agent.act", "pkg.triage:X"], summary="act")
    assert first.path.name == "0001-triage-X.patch" and second.path.name == "0002-triage-act.patch"
    assert read_patch(first.path) == first
    assert first.keys == ("pkg.triage:X",) and first.summary == "X: 1 -> 2 score 0.5 -> 0.75"
    text = first.path.read_text()
    assert text.startswith("tracec-patch: 1\ntarget: pkg/triage.py\n")
    assert "\n\ndiff --git a/pkg/triage.py b/pkg/triage.py\n" in text
    standard_tools_accept(tmp_path, first.path)
    with pytest.raises(PatchError, match="^pkg/triage.py: the change leaves the file as it was"):
        write_patch(tmp_path, "pkg/triage.py", "X = 1\n", "X = 1\n", keys=["pkg.triage:X"], summary="")
    assert sorted(p.name for p in (tmp_path / ".tracec" / "patches").iterdir()) == [
        "0001-triage-X.patch", "0002-triage-act.patch"]


def test_read_patch_refuses_foreign_files(tmp_path: Path):
    plain = tmp_path / "plain.patch"
    plain.write_text("diff --git a/x b/x\n--- a/x\n+++ b/x\n")
    with pytest.raises(PatchError, match="plain.patch:1: not a patch written by tracec optimize"):
        read_patch(plain)

"""The safety net of `tracec instrument` and the import hook: a file tracec cannot instrument is built
from its original source, named on one line, and makes the command exit 123 while the rest of the tree
is still built; the build never writes through a link, never blocks on a FIFO, and names what it
cannot read.

A tracec bug is simulated by running the real command with one rule of the pass switched off: the
parentheses a walrus needs as the test of the pass's own conditional (the bug that broke real packages)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tracec import importhook
from tracec.transforms import instrument_source

WALRUS = "import re\n\ndef first_word(text):\n    if m := re.match(r'\\w+', text):\n        return m.group()\n    return ''\n"
PLAIN = "def double(x):\n    return 2 * x\n"

# the real CLI, with the pass's parenthesising rule replaced by "never parenthesise"
WITHOUT_PARENS = ("import sys, tracec.transforms.instrument as i; i.parenthesize = lambda expr, place: expr; "
                  "from tracec.cli import main; sys.exit(main(sys.argv[1:]))")


def tracec(*args: str, cwd: Path, inject_bug: bool = False, **options) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", WITHOUT_PARENS if inject_bug else "from tracec.cli import main; "
               "import sys; sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, **options)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "words.py").write_text(WALRUS)
    (tmp_path / "maths.py").write_text(PLAIN)
    return tmp_path


def test_output_that_would_not_compile_is_replaced_by_the_original_and_exits_123(project):
    done = tracec("instrument", "--all", "-j", "1", ".", cwd=project, inject_bug=True)
    assert done.returncode == 123, done.stderr
    problems = [line for line in done.stderr.splitlines() if "internal error" in line]
    assert problems == [problems[0]] and problems[0].startswith("words.py:4: internal error: instrumented code "
                                                                "does not compile")
    assert problems[0].endswith("; file left uninstrumented")
    assert "1 left uninstrumented" in done.stderr.splitlines()[-1]
    build = project / ".tracec" / "build"
    assert (build / "words.py").read_text() == WALRUS          # the original, so the tree still runs
    assert "_tracec_m" in (build / "maths.py").read_text()     # the rest is still built
    ran = subprocess.run([sys.executable, "-c", "import words, maths; print(words.first_word('hi there'), "
                          "maths.double(2))"], cwd=build, capture_output=True, text=True)
    assert ran.stdout == "hi 4\n", ran.stderr
    again = tracec("instrument", "--all", "-j", "1", ".", cwd=project, inject_bug=True)
    assert again.returncode == 123 and "words.py:4: internal error" in again.stderr   # never cached away


def test_without_the_bug_the_same_tree_builds_cleanly(project):
    done = tracec("instrument", "--all", "-j", "1", ".", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "_tracec_m" in (project / ".tracec" / "build" / "words.py").read_text()


def test_the_import_hook_warns_once_and_runs_the_original(project, monkeypatch):
    import tracec.transforms.instrument as pass_module

    monkeypatch.setattr(pass_module, "parenthesize", lambda expr, place: expr)
    monkeypatch.syspath_prepend(str(project))
    importhook.install(project, all_functions=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import words
    finally:
        importhook.uninstall()
        sys.modules.pop("words", None)
    assert words.first_word("hi there") == "hi" and "_tracec_m" not in vars(words)
    messages = [str(w.message) for w in caught if "words.py" in str(w.message)]
    assert len(messages) == 1 and "internal error" in messages[0] and "left uninstrumented" in messages[0]


def test_a_crash_of_the_pass_is_reported_not_raised(monkeypatch):
    import tracec.transforms.instrument as pass_module

    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pass_module.FunctionRewriter, "function", crash)
    result = instrument_source(PLAIN, path="maths.py", module="maths", all_functions=True)
    assert result.code is None and str(result.internal) == \
        "maths.py:1: internal error: RuntimeError: boom; file left uninstrumented"



def test_text_libcst_itself_loses_is_blamed_on_libcst(monkeypatch):
    # LibCST (1.x) drops the continuation lines before this `:` when it prints its tree back; with the
    # workaround for it switched off (tracec.transforms.libcst_limits) the output moves `pass` up three
    # lines, so the file stays uninstrumented and the message says why
    import tracec.transforms.libcst_limits as limits

    monkeypatch.setattr(limits, "parenthesize_handler_types", lambda source: source)
    source = "def f():\n    try: pass\n\n    except     ValueError\\\n    \\\n    \\\n    : pass\n"
    result = instrument_source(source, path="odd.py", module="odd", all_functions=True)
    if result.internal is None:
        pytest.skip("this LibCST prints the text back unchanged")
    assert result.code is None and str(result.internal) == ("odd.py:4: internal error: LibCST does not "
                                                           "reproduce this line unchanged (a LibCST limit); "
                                                           "file left uninstrumented")
    monkeypatch.undo()
    assert instrument_source(source, path="odd.py", module="odd", all_functions=True).internal is None


@pytest.mark.parametrize("source", [
    "def f():\n    return " + "[" * 150 + "]" * 150 + "\n",                       # 150 nested lists
    "D = {" + ", ".join(f"{i}: {i}" for i in range(3000)) + "}\ndef f():\n    return D\n",   # a big literal
    "def f():\n    return " + " + ".join(["1"] * 5000) + "\n",                 # compiles on 3.13+
    "\x0c\ndef f():\n    return " + " + ".join(["1"] * 5000) + "\n",         # masked below a form feed
    "def f(x=3):\n    if x == 0:\n        return 0\n"                         # a 600-branch elif chain:
    + "".join(f"    elif x == {i}:\n        return {i * i}\n" for i in range(1, 600)),  # nested Ifs to LibCST
], ids=["nested", "literal", "sum", "sum-after-form-feed", "elif-chain"])
def test_deeply_nested_code_is_instrumented(source):
    try:
        compile(source, "deep.py", "exec")
    except RecursionError:
        pytest.skip(f"Python {sys.version_info[:2]} itself cannot compile it")
    result = instrument_source(source, path="deep.py", module="deep", all_functions=True)
    assert result.internal is None and result.error is None
    namespace: dict = {}
    exec(compile(result.code, "deep.py", "exec"), namespace)
    plain: dict = {}
    exec(compile(source, "deep.py", "exec"), plain)
    assert namespace["f"]() == plain["f"]()


def test_a_link_in_the_build_tree_is_never_written_through(project):
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text(PLAIN)
    build = project / ".tracec" / "build"
    build.mkdir(parents=True)
    os.symlink("../../src", build / "src")          # .tracec/build/src -> the user's sources
    done = tracec("instrument", "--all", "src", cwd=project)
    assert done.returncode == 1
    assert (project / "src" / "app.py").read_text() == PLAIN
    assert "src/app.py: not written: .tracec/build/src is a symbolic link" in done.stderr


def test_a_build_directory_that_is_a_link_is_refused(project):
    (project / ".tracec").mkdir()
    (project / "elsewhere").mkdir()
    os.symlink("../elsewhere", project / ".tracec" / "build")
    done = tracec("instrument", "--all", ".", cwd=project)
    assert done.returncode == 2 and "is a symbolic link" in done.stderr
    assert not any((project / "elsewhere").iterdir())


def test_a_fifo_in_the_tree_is_passed_over_not_read(project):
    os.mkfifo(project / "pipe.py")
    done = tracec("instrument", "--all", ".", cwd=project)   # reading it would block until the timeout
    assert done.returncode == 0, done.stderr
    assert not (project / ".tracec" / "build" / "pipe.py").exists()
    named = tracec("instrument", "pipe.py", cwd=project)
    assert named.returncode == 2 and "pipe.py: not a regular file" in named.stderr


def test_an_unreadable_directory_is_named(project, monkeypatch, capsys):
    from tracec.cli import main

    secret = project / "secret"
    secret.mkdir()
    (secret / "hidden.py").write_text(PLAIN)
    secret.chmod(0)
    if os.access(secret, os.R_OK):   # root reads it anyway: make listing it fail as it would for a user
        real_scandir = os.scandir

        def scandir(path="."):
            if os.path.realpath(path) == str(secret):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.chdir(project)
    try:
        status = main(["instrument", "-j", "1", "."])
    finally:
        secret.chmod(0o755)
    assert status == 1
    assert "secret: cannot read directory: Permission denied; fix its permissions or leave it out" in \
        capsys.readouterr().err


def test_an_expression_too_deep_for_libcst_is_masked_and_put_back_as_written():
    from tracec.transforms.deep import MASK_HEIGHT, mask_deep_expressions, unmask

    tall = " + ".join(["n"] * (MASK_HEIGHT + 5))
    source = f"def f(n):\n    x = [n,\n         {tall}]\n    return x\n"
    masked, texts = mask_deep_expressions(source, ast.parse(source))
    assert masked == "def f(n):\n    x = _tracec_deep_0_(\n)\n    return x\n"   # same lines
    assert texts == [f"[n,\n         {tall}]"]
    assert unmask("y = _v(1, _tracec_deep_0_(\n))", texts) == f"y = _v(1, ([n,\n         {tall}]))"
    with pytest.raises(ValueError):
        unmask("y = _v(1, _tracec_deep_0_())", texts)   # its line break went missing: never guessed

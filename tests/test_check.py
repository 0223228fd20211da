"""`tracec check`: each rule reports a real problem as path:line:col: TC### and is quiet once it is fixed."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import black
import pytest
from support import TRACEC, git_project

from tracec.cli import main
from tracec.patches.patch_file import write_patch
from tracec.patches.splice import Change, PatchError, rewrite_source
from tracec.transforms import instrument_source


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = git_project(tmp_path / "proj")
    monkeypatch.chdir(root)
    return root


def check(capsys, *paths: str) -> tuple[int, list[str], str]:
    status = main(["check", *paths])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def write(root: Path, rel: str, source: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


# (rule, source with the problem, the same source fixed, where the problem is reported)
CASES = [
    ("TC101", 'import tracec\nPROMPT = tracec.param(make_prompt())\n',
     'import tracec\nPROMPT = tracec.param("Answer briefly.")\n', "2:23"),
    ("TC101", 'from tracec import param as P\nLIMIT = P(f"{N} words")\n',
     'from tracec import param as P\nLIMIT = P("20 words")\n', "2:11"),
    ("TC101", 'import tracec as tc\nTAGS = tc.param({"a", "b"})\n',
     'import tracec as tc\nTAGS = tc.param(["a", "b"])\n', "2:17"),
    ("TC101", 'import tracec\nOPTIONS = tracec.param(**defaults)\n',
     'import tracec\nOPTIONS = tracec.param({"k": 1})\n', "2:11"),
    ("TC102", 'import tracec\nA = tracec.param(1); B = tracec.param(2)\n',
     'import tracec\nA = tracec.param(1)\nB = tracec.param(2)\n', "2:26"),
    ("TC201", 'import tracec\nparse = tracec.trainable(lambda s: int(s))\n',
     'import tracec\n@tracec.trainable\ndef parse(s):\n    return int(s)\n', "2:9"),
    ("TC202", 'import tracec\ntrain = tracec.trainable\n@train\ndef parse(s):\n    return int(s)\n',
     'import tracec\n@tracec.trainable\ndef parse(s):\n    return int(s)\n', "2:9"),
    ("TC202", 'from tracec import *\n@trainable\ndef parse(s):\n    return int(s)\n',
     'from tracec import trainable\n@trainable\ndef parse(s):\n    return int(s)\n', "1:1"),
    ("TC204", 'import tracec\n@tracec.trainable\nclass Parser:\n    def parse(self, s):\n        return int(s)\n',
     'import tracec\nclass Parser:\n    @tracec.trainable\n    def parse(self, s):\n        return int(s)\n',
     "2:1"),
    ("TC001", 'import tracec\nX = tracec.param(1\n', 'import tracec\nX = tracec.param(1)\n', "2:"),
]


@pytest.mark.parametrize("rule, broken, fixed, where", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_reports_the_problem_and_passes_after_the_fix(project: Path, capsys, rule, broken, fixed, where):
    path = write(project, "src/app.py", broken)
    status, lines, err = check(capsys)
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith(f"src/app.py:{where}") and f": {rule} " in lines[0], lines
    assert err == "Found 1 problem in 1 file.\n"
    path.write_text(fixed)
    assert check(capsys) == (0, [], "All checks passed.\n")


def test_param_findings_are_what_the_patch_writer_or_the_runtime_refuses(project: Path, capsys):
    """TC101/TC102 are not style: the patch writer cannot write a new value to those sites, or (a set)
    tracec.param itself refuses the value when the module is imported."""
    import tracec

    for rule, broken, fixed, _ in CASES:
        if rule not in ("TC101", "TC102"):
            continue
        line = 3 if rule == "TC102" else 2
        if "{\"a\", \"b\"}" in broken:
            with pytest.raises(TypeError, match="got set"):
                tracec.param({"a", "b"})
        else:
            with pytest.raises(PatchError):
                rewrite_source(broken, "app.py", [Change("app:X", "value", 2, "new")], black.Mode())
        rewrite_source(fixed, "app.py", [Change("app:X", "value", line, "new")], black.Mode())


def test_trainable_findings_are_what_the_transform_cannot_see(project: Path):
    """TC201/TC202/TC204: the broken spellings instrument no function; the fixed ones do."""
    for rule, broken, fixed, _ in CASES:
        if rule in ("TC201", "TC202", "TC204"):
            assert instrument_source(broken, path="app.py", module="app").functions == 0
            assert instrument_source(fixed, path="app.py", module="app").functions == 1


def test_a_clean_annotated_module_and_unrelated_files_pass(project: Path, capsys):
    write(project, "src/app.py", """\
        import tracec
        from tracec import param, trainable as T

        PROMPT = tracec.param(\"\"\"Answer
        in one word.\"\"\", doc="system prompt")
        LIMITS = param({"words": [1, 2.5, None, True]}, name="limits")

        class Bot:
            TONE = tracec.param("calm")

            @staticmethod
            @T(doc="parse")
            def parse(reply: str, param=None) -> int:
                return int(reply.strip(), base=param or 10)

        @tracec.trace
        def solve(q, trainable=1):
            return Bot.parse(q)
        """)
    write(project, "src/other.py", "def settrace_caller(tracecount):\n    return tracecount\n")
    write(project, "src/py2.py", "print 'no annotations here'\n")   # broken, but not tracec's business
    assert check(capsys) == (0, [], "All checks passed.\n")


def test_instrumented_output_in_a_source_folder(project: Path, capsys):
    app = write(project, "src/app.py", "import tracec\n\n@tracec.trace\ndef f(x):\n    return x\n")
    assert main(["instrument", "src", "-o", "build"]) == 0
    capsys.readouterr()
    status, lines, _ = check(capsys)
    assert status == 1 and len(lines) == 1 and lines[0].startswith("build/src/app.py:1:")   # the header line
    assert lines[0].endswith(": TC301 instrumented build output committed into a source folder; delete it and "
                             "build into .tracec/build (or pass --build-dir)")
    assert check(capsys, "--build-dir", "build")[0] == 0            # that folder is the declared build
    shutil.rmtree(project / "build")
    assert main(["instrument", "src"]) == 0 and check(capsys)[0] == 0   # the default build dir is expected
    assert (project / ".tracec" / "build" / "src" / "app.py").read_text() != app.read_text()
    assert app.read_text().startswith("import tracec\n")               # and the source was never touched


def test_stale_pending_patch_is_named_with_its_target(project: Path, capsys):
    source = "import tracec\nX = tracec.param(1)\n"
    app = write(project, "src/app.py", source)
    write(project, "src/other.py", "import tracec\nY = tracec.param(1)\n")
    new = rewrite_source(source, "src/app.py", [Change("app:X", "value", 2, 2)], black.Mode())
    write_patch(project, "src/app.py", source, new, keys=["app:X"], summary="")
    assert check(capsys)[0] == 0                      # it still applies
    app.write_text(source + "# edited\n")
    status, lines, _ = check(capsys)
    assert status == 1 and lines == [
        ".tracec/patches/0001-app-X.patch:1:1: TC401 pending patch no longer applies: src/app.py: changed since "
        "0001-app-X.patch was made (sha256 differs); rerun tracec optimize for a fresh patch; rerun tracec "
        "optimize or delete the patch"]
    assert check(capsys, "src/other.py")[0] == 0      # checking other files: not their problem
    assert check(capsys, "src/app.py")[0] == 1
    (project / ".tracec" / "patches" / "0001-app-X.patch").unlink()
    assert check(capsys)[0] == 0


def test_a_fresh_repository_that_never_ran_tracec_passes(tmp_path: Path):
    """The pre-commit hook on a user's first commit: git, no .gitignore, no .tracec/ yet."""
    root = tmp_path / "fresh"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, "app.py", "import tracec\nX = tracec.param(1)\n")
    done = subprocess.run([TRACEC, "check"], cwd=root, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "All checks passed.\n")
    assert not (root / ".tracec").exists()


def test_tracec_folder_must_be_git_ignored_once_it_holds_files(project: Path, capsys):
    (project / ".gitignore").write_text("__pycache__/\n")
    (project / ".tracec" / "cache").mkdir(parents=True)       # folders only: git tracks nothing there
    assert check(capsys) == (0, [], "All checks passed.\n")
    (project / ".tracec" / "cache" / "entry.json").write_text("{}")
    status, lines, _ = check(capsys)
    assert status == 1 and lines == ['.gitignore:1:1: TC501 .tracec/ is not git-ignored, so git would track '
                                     '.tracec/cache/entry.json (it holds caches, runs and patches); add ".tracec/" '
                                     'to .gitignore']
    (project / ".gitignore").write_text("__pycache__/\n.tracec/\n")
    assert check(capsys) == (0, [], "All checks passed.\n")
    subprocess.run(["git", "add", "-f", ".tracec/cache/entry.json"], cwd=project, check=True)   # committed anyway
    status, lines, _ = check(capsys)
    assert status == 1 and lines == [".gitignore:1:1: TC501 git tracks .tracec/cache/entry.json in .tracec/ (caches, "
                                     'runs and patches); run `git rm -r --cached .tracec` and add ".tracec/" to '
                                     ".gitignore"]
    subprocess.run(["git", "rm", "-r", "-q", "--cached", ".tracec"], cwd=project, check=True)
    assert check(capsys)[0] == 0
    (project / ".gitignore").unlink()
    shutil.rmtree(project / ".git")   # not a git repository: nothing to say
    assert check(capsys)[0] == 0


def test_installed_command_paths_exit_statuses_and_format(project: Path):
    write(project, "src/app.py", "import tracec\nX = tracec.param(load())\n")
    write(project, "src/ok.py", "import tracec\nY = tracec.param(1)\n")

    def run(*argv, cwd=project):
        return subprocess.run([TRACEC, "check", *argv], cwd=cwd, capture_output=True, text=True)

    done = run(cwd=project / "src")                  # paths relative to the current folder, like ruff
    assert done.returncode == 1 and done.stdout.startswith("app.py:2:18: TC101 ")
    assert done.stderr == "Found 1 problem in 1 file.\n"
    assert run("src/ok.py").returncode == 0
    missing = run("src/nope.py")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "tracec check: error: src/nope.py: no such file or directory\n"
    outside = run(os.path.dirname(project))
    assert outside.returncode == 2 and len(outside.stderr.splitlines()) == 1 and "outside the project root" \
        in outside.stderr

"""`tracec instrument`, exercised through the installed `tracec` command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import TRACEC

PROMPTS = """\
import tracec

GREETING = tracec.param("Hello", doc="how to greet")


@tracec.trace
def greet(name):
    text = GREETING + ", " + name
    return text
"""

APP = """\
import os
import sys

import tracec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
from shop.prompts import greet  # noqa: E402
from shop.util import shout  # noqa: E402

SUFFIX = tracec.param("!", doc="end mark")


@tracec.trace
def main():
    line = shout(greet("ada")) + SUFFIX
    print(line)


main()
"""


def tracec(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TRACEC, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def count(summary: str, what: str) -> int:
    return int(re.search(rf"(\d+) {what}", summary).group(1))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", "[project]\nname = 'shop'\n")
    write(root / "src" / "shop" / "__init__.py", "")
    write(root / "src" / "shop" / "prompts.py", PROMPTS)
    write(root / "src" / "shop" / "util.py", '"""Helpers."""\n\n\ndef shout(text):\n    return text.upper()\n')
    write(root / "app.py", APP)
    write(root / "notes.txt", "not python\n")
    # Places that are never part of the build.
    for venv in (".venv", "venv"):
        write(root / venv / "pyvenv.cfg", "home = /usr/bin\n")
        write(root / venv / "lib" / "dep.py", PROMPTS)
    write(root / ".hidden" / "secret.py", PROMPTS)
    write(root / "src" / "shop" / "__pycache__" / "junk.py", PROMPTS)
    write(root / "vendor" / "site-packages" / "third.py", PROMPTS)
    return root


BUILT = {"app.py", "src/shop/__init__.py", "src/shop/prompts.py", "src/shop/util.py"}


def test_mirrors_the_tree_and_copies_what_needs_no_instrumentation(project):
    done = tracec("instrument", ".", cwd=project)
    assert done.returncode == 0, done.stderr
    build = project / ".tracec" / "build"
    assert files_under(build) == BUILT
    for rel in ("src/shop/__init__.py", "src/shop/util.py"):
        assert (build / rel).read_bytes() == (project / rel).read_bytes()
    for rel in ("app.py", "src/shop/prompts.py"):
        original, built = (project / rel).read_text(), (build / rel).read_text()
        assert built != original
        assert len(built.splitlines()) == len(original.splitlines())  # line preserving
    assert count(done.stderr, "instrumented") == 2


def test_build_tree_runs_and_records_dotted_module_names(project, tmp_path):
    assert tracec("instrument", ".", cwd=project).returncode == 0
    plain = subprocess.run([sys.executable, "app.py"], cwd=project, capture_output=True, text=True)
    graph = tmp_path / "graph.json"
    env = {**os.environ, "TRACEC_RECORD": "1", "TRACEC_GRAPH": str(graph)}
    built = subprocess.run([sys.executable, ".tracec/build/app.py"], cwd=project,
                           capture_output=True, text=True, env=env)
    assert (built.returncode, built.stdout, built.stderr) == (0, plain.stdout, plain.stderr)
    assert plain.stdout == "HELLO, ADA!\n"
    data = json.loads(graph.read_text())
    assert sorted(p["key"] for p in data["params"]) == ["app:SUFFIX", "shop.prompts:GREETING"]
    assert {n["file"] for n in data["nodes"]} == {"app.py", "src/shop/prompts.py"}


def test_all_instruments_unannotated_functions(project):
    util = project / "src" / "shop" / "util.py"
    built = project / ".tracec" / "build" / "src" / "shop" / "util.py"
    assert tracec("instrument", "src/shop/util.py", cwd=project).returncode == 0
    assert built.read_bytes() == util.read_bytes()
    done = tracec("instrument", "--all", "src/shop/util.py", cwd=project)
    assert done.returncode == 0, done.stderr
    assert built.read_text() != util.read_text()
    assert len(built.read_text().splitlines()) == len(util.read_text().splitlines())


def test_all_on_a_file_of_only_functions_keeps_every_line(project):
    write(project / "defs.py", "def double(x):\n    return 2 * x\n")  # no module-level code at all
    done = tracec("instrument", "--all", "defs.py", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "note:" not in done.stderr
    built = (project / ".tracec" / "build" / "defs.py").read_text().splitlines()
    assert built[0] == "def double(x):" and built[2].startswith("import tracec.runtime")   # a new last line
    ran = subprocess.run([sys.executable, "-c", "import defs; print(defs.double(21))"],
                         cwd=project / ".tracec" / "build", capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (0, "42\n"), ran.stderr


def test_all_on_a_file_with_no_line_for_the_header_still_builds_a_runnable_copy(project):
    # `kind()` runs when `def double` runs, and nothing before it can carry the header
    write(project / "defs.py", "def kind():\n    return int\ndef double(x: kind()):\n    return 2 * x\n")
    done = tracec("instrument", "--all", "defs.py", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "defs.py: note:" in done.stderr  # the copy gained a line; the user is told
    ran = subprocess.run([sys.executable, "-c", "import defs; print(defs.double(21))"],
                         cwd=project / ".tracec" / "build", capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (0, "42\n"), ran.stderr


def test_diff_prints_an_applicable_patch_and_writes_nothing(project, tmp_path):
    done = tracec("instrument", "--diff", ".", cwd=project)
    assert done.returncode == 0, done.stderr
    assert not (project / ".tracec" / "build").exists()
    assert "--- a/src/shop/prompts.py\n+++ b/src/shop/prompts.py\n" in done.stdout
    assert "a/src/shop/util.py" not in done.stdout  # nothing to instrument there

    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".tracec"))
    subprocess.run(["git", "apply", "-"], cwd=copy, input=done.stdout, text=True, check=True)
    assert tracec("instrument", ".", cwd=project).returncode == 0
    for rel in BUILT:
        assert (copy / rel).read_text() == (project / ".tracec" / "build" / rel).read_text()


def test_check_reports_missing_and_stale_outputs_and_writes_nothing(project):
    missing = tracec("instrument", "--check", ".", cwd=project)
    assert missing.returncode == 1
    assert "missing: .tracec/build/src/shop/prompts.py" in missing.stdout.splitlines()
    assert not (project / ".tracec").exists()

    assert tracec("instrument", ".", cwd=project).returncode == 0
    fresh = tracec("instrument", "--check", ".", cwd=project)
    assert (fresh.returncode, fresh.stdout) == (0, "")

    (project / "src" / "shop" / "util.py").write_text("def shout(text):\n    return text.title()\n")
    stale = tracec("instrument", "--check", ".", cwd=project)
    assert stale.returncode == 1
    assert stale.stdout.splitlines() == ["out of date: .tracec/build/src/shop/util.py"]
    assert "upper" in (project / ".tracec" / "build" / "src" / "shop" / "util.py").read_text()


def test_unchanged_files_are_not_parsed_again(project):
    first = tracec("instrument", ".", cwd=project)
    assert count(first.stderr, "parsed") == len(BUILT)
    second = tracec("instrument", ".", cwd=project)
    assert second.returncode == 0
    assert (count(second.stderr, "parsed"), count(second.stderr, "cached")) == (0, len(BUILT))

    prompts = project / "src" / "shop" / "prompts.py"
    prompts.write_text(prompts.read_text().replace('"Hello"', '"Hi"'))
    third = tracec("instrument", ".", cwd=project)
    assert count(third.stderr, "parsed") == 1
    assert '"Hi"' in (project / ".tracec" / "build" / "src" / "shop" / "prompts.py").read_text()

    # The cache never hides a deleted or edited output, and --all is a different mode.
    (project / ".tracec" / "build" / "app.py").unlink()
    (project / ".tracec" / "build" / "src" / "shop" / "util.py").write_text("edited\n")
    fourth = tracec("instrument", ".", cwd=project)
    assert files_under(project / ".tracec" / "build") == BUILT
    assert (project / ".tracec" / "build" / "src" / "shop" / "util.py").read_bytes() == \
        (project / "src" / "shop" / "util.py").read_bytes()
    assert count(fourth.stderr, "parsed") == 1  # only app.py needed instrumenting again
    assert count(tracec("instrument", "--all", ".", cwd=project).stderr, "parsed") == len(BUILT)


def test_syntax_errors_are_one_line_each_and_the_rest_is_built(project):
    write(project / "src" / "shop" / "broken.py", "import tracec\n\n\ndef f(:\n    pass\n")
    write(project / "src" / "shop" / "also_broken.py", "x = (\n")
    for _ in range(2):  # the second run reports them from the cache
        done = tracec("instrument", ".", cwd=project)
        assert done.returncode == 1
        errors = [line for line in done.stderr.splitlines() if not line.startswith("tracec")]
        assert len(errors) == 2, done.stderr
        assert re.fullmatch(r"src/shop/also_broken\.py:1:\d+: \S.*", errors[0])
        assert re.fullmatch(r"src/shop/broken\.py:4:\d+: \S.*", errors[1])
        assert files_under(project / ".tracec" / "build") == BUILT
        assert "Traceback" not in done.stderr


def test_output_dir_and_paths_relative_to_the_project_root(project, tmp_path):
    shop = project / "src" / "shop"
    done = tracec("instrument", "prompts.py", "-o", "../../out", cwd=shop)
    assert done.returncode == 0, done.stderr
    assert files_under(project / "out") == {"src/shop/prompts.py"}
    assert not (project / ".tracec" / "build").exists()
    # The default build dir is at the root even when run from a subdirectory.
    assert tracec("instrument", ".", cwd=shop).returncode == 0
    assert files_under(project / ".tracec" / "build") == {
        "src/shop/__init__.py", "src/shop/prompts.py", "src/shop/util.py"}


@pytest.mark.parametrize("args", [
    ["instrument", "no/such/file.py"],
    ["instrument", "-j", "0", "."],
    ["instrument", "--frobnicate", "."],
    ["instrument"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(project, args):
    done = tracec(*args, cwd=project)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.strip()


def test_paths_outside_the_project_root_are_refused(project, tmp_path):
    outside = write(tmp_path / "elsewhere.py", PROMPTS)
    done = tracec("instrument", str(outside), cwd=project)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "outside the project root" in done.stderr


def test_parallel_build_matches_serial_build(project):
    for index in range(40):
        write(project / "src" / "shop" / f"gen{index}.py",
              PROMPTS.replace("greet", f"greet{index}") + f"\nCONST = {index}\n")
    outputs = {}
    for jobs in ("1", "2"):
        shutil.rmtree(project / ".tracec", ignore_errors=True)  # no cache: parse everything
        done = tracec("instrument", ".", "-j", jobs, cwd=project)
        assert done.returncode == 0, done.stderr
        assert count(done.stderr, "parsed") == 44
        build = project / ".tracec" / "build"
        outputs[jobs] = {rel: (build / rel).read_bytes() for rel in files_under(build)}
    assert len(outputs["1"]) == 44
    assert outputs["1"] == outputs["2"]


def test_environment_failure_is_one_line_and_exit_123(project):
    (project / ".tracec").write_text("a file where the work directory should be\n")
    done = tracec("instrument", ".", cwd=project)
    assert done.returncode == 123
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_help_and_version():
    helped = subprocess.run([TRACEC, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for command in ("instrument", "run", "show"):
        assert command in helped.stdout
    version = subprocess.run([TRACEC, "--version"], capture_output=True, text=True)
    assert re.fullmatch(r"tracec \d+\.\d+\S*\n", version.stdout)


def test_progress_bar_on_a_terminal_for_big_trees_only(project):
    import pty

    for index in range(60):
        write(project / "many" / f"m{index}.py", PROMPTS)
    master, terminal = pty.openpty()
    proc = subprocess.Popen([TRACEC, "instrument", "."], cwd=project, stdout=subprocess.PIPE,
                            stderr=terminal)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0, seen
    assert b"instrumenting" in seen and b"62 instrumented" in seen, seen
    piped = tracec("instrument", ".", cwd=project)
    assert piped.returncode == 0 and "instrumenting" not in piped.stderr

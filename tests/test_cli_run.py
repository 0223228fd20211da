"""`tracec run`: the program behaves exactly as under `python`, and its graph is written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import TRACEC

PRICING = """\
import tracec

RATE = tracec.param(0.25, doc="tax rate")


@tracec.trace
def total(amount):
    tax = amount * RATE
    if (big := amount > 100) and tax > 1:
        tax -= 1
    return amount + tax


@tracec.trace
def checked_total(amount):
    if amount < 0:
        raise ValueError(f"negative amount: {amount}")
    return total(amount)
"""

HELPERS = """\
def parse(text):
    return 100 / float(text)
"""

MAIN = """\
import os
import sys

import tracec
from helpers import parse
from pricing import checked_total


@tracec.trace
def bill(args):
    amounts = [float(a) for a in args]
    return [checked_total(a) for a in amounts]


print("argv", sys.argv[1:], os.path.basename(sys.argv[0]))
print("path0", sys.path[0] == os.path.dirname(os.path.realpath(__file__)))
print("name", __name__, __file__ == os.path.abspath(__file__))
print("stdin", sys.stdin.read().strip())
print(bill(sys.argv[1:]))
if os.environ.get("PARSE"):
    print(parse(os.environ["PARSE"]))
if "EXIT" in os.environ:
    code = os.environ["EXIT"]
    sys.exit(int(code) if code.lstrip("-").isdigit() else (None if code == "None" else code))
"""


def run(*command: str, cwd: Path, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, input=stdin,
                          env={**os.environ, **(env or {})}, timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", "[project]\nname = 'billing'\n")
    write(root / "pricing.py", PRICING)
    write(root / "helpers.py", HELPERS)
    write(root / "main.py", MAIN)
    return root


def graph_of(root: Path, name: str = ".tracec/graph.json") -> dict:
    return json.loads((root / name).read_text())


def both(root: Path, *args: str, env: dict | None = None, stdin: str = "", tracec_options=()):
    """(python result, tracec run result) for the same program."""
    plain = run(sys.executable, *args, cwd=root, env=env, stdin=stdin)
    traced = run(TRACEC, "run", *tracec_options, *args, cwd=root, env=env, stdin=stdin)
    return plain, traced


def outcome(result: subprocess.CompletedProcess) -> tuple:
    return result.returncode, result.stdout, result.stderr


def test_script_runs_like_python_and_writes_the_graph(project):
    plain, traced = both(project, "main.py", "10", "200", stdin="hello\n")
    assert outcome(traced) == outcome(plain)
    assert "[12.5, 249.0]" in plain.stdout and "argv ['10', '200'] main.py" in plain.stdout
    graph = graph_of(project)
    assert graph["version"] == 1 and graph["outputs"]
    assert [p["key"] for p in graph["params"]] == ["pricing:RATE"]
    assert {n["file"] for n in graph["nodes"]} == {"main.py", "pricing.py"}
    functions = {n["function"] for n in graph["nodes"]}
    assert {"main.bill", "pricing.total", "pricing.checked_total"} <= functions
    assert any(n["code"] == "tax -= 1" and n["line"] == 10 for n in graph["nodes"])


def test_module_runs_like_python_dash_m(project):
    plain, traced = both(project, "-m", "main", "4", stdin="x")
    assert outcome(traced) == outcome(plain)
    assert "main.bill" in {n["function"] for n in graph_of(project)["nodes"]}


def test_package_main_runs_like_python_dash_m(project):
    write(project / "app" / "__init__.py", "")
    write(project / "app" / "__main__.py", MAIN.replace("from helpers", "from helpers"))
    plain, traced = both(project, "-m", "app", "7")
    assert outcome(traced) == outcome(plain)
    assert "app.__main__.bill" in {n["function"] for n in graph_of(project)["nodes"]}


@pytest.mark.parametrize("code", ["3", "0", "None", "a message for stderr", "-1"])
def test_exit_status_passes_through(project, code):
    plain, traced = both(project, "main.py", "1", env={"EXIT": code})
    assert outcome(traced) == outcome(plain)
    assert graph_of(project)["nodes"]


def _without_carets(text: str) -> str:
    # 3.11+ underlines the failing expression; on lines tracec rewrote those columns are unknown.
    return "\n".join(line for line in text.splitlines() if not re.fullmatch(r"\s*[~^]+\s*", line))


def test_uncaught_exception_in_traced_code(project):
    plain, traced = both(project, "main.py", "5", "-3")
    assert plain.returncode == traced.returncode == 1
    assert traced.stdout == plain.stdout
    assert _without_carets(traced.stderr) == _without_carets(plain.stderr)
    assert "ValueError: negative amount: -3.0" in traced.stderr
    assert "tracec" not in traced.stderr.replace("import tracec", "")
    errors = [n for n in graph_of(project)["nodes"] if n["kind"] == "error"]
    assert errors and errors[0]["error"]["type"] == "ValueError"
    assert errors[0]["file"] == "pricing.py" and errors[0]["line"] == 17
    # The recorded traceback starts at the program, like the printed one.
    assert all(re.search(r"(main|pricing)\.py:\d+ in ", entry) for entry in errors[0]["error"]["traceback"])


def test_uncaught_exception_in_plain_code_is_identical(project):
    plain, traced = both(project, "main.py", "5", env={"PARSE": "0"})
    assert plain.returncode == 1 and "ZeroDivisionError" in plain.stderr
    assert outcome(traced) == outcome(plain)  # carets and all


def test_syntax_error_in_the_script(project):
    write(project / "broken.py", "import tracec\n\nx = (1,\ny = 2\n")
    plain, traced = both(project, "broken.py")
    assert plain.returncode == 1 and "SyntaxError" in plain.stderr
    assert outcome(traced) == outcome(plain)


def test_graph_option_verbose_line_and_quiet_default(project, tmp_path):
    quiet = run(TRACEC, "run", "main.py", "1", cwd=project)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    target = tmp_path / "out" / "g.json"
    loud = run(TRACEC, "run", "-v", "--graph", str(target), "main.py", "1", cwd=project)
    assert loud.returncode == 0
    nodes = len(json.loads(target.read_text())["nodes"])
    assert loud.stderr.strip().endswith(f"({nodes} nodes)") and "g.json" in loud.stderr


def test_the_graph_lands_at_the_project_root_when_run_from_a_subdirectory(project):
    sub = project / "scripts"
    write(sub / "go.py", "import os, sys\nsys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))\n"
          "os.chdir('/')\nfrom pricing import total\nprint(total(1))\n")
    done = run(TRACEC, "run", "go.py", cwd=sub)
    assert (done.returncode, done.stdout) == (0, "1.25\n")
    assert {n["file"] for n in graph_of(project)["nodes"]} == {"pricing.py"}


def test_all_traces_unannotated_project_functions(project):
    run(TRACEC, "run", "main.py", "1", cwd=project, env={"PARSE": "4"})
    assert "helpers.parse" not in {n["function"] for n in graph_of(project)["nodes"]}
    done = run(TRACEC, "run", "--all", "main.py", "1", cwd=project, env={"PARSE": "4"})
    assert done.returncode == 0 and "25.0" in done.stdout
    assert "helpers.parse" in {n["function"] for n in graph_of(project)["nodes"]}


@pytest.mark.parametrize("args", [[], ["--graph"], ["--bogus", "main.py"], ["-m"]])
def test_usage_errors_exit_2(project, args):
    done = run(TRACEC, "run", *args, cwd=project)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_missing_script_is_reported_like_python(project):
    plain, traced = both(project, "nope.py")
    assert traced.returncode == plain.returncode == 2
    assert "can't open file" in traced.stderr and "nope.py" in traced.stderr


def test_show_renders_the_graph_of_a_run(project, tmp_path):
    assert run(TRACEC, "run", "main.py", "1", cwd=project).returncode == 0
    shown = run(TRACEC, "show", ".tracec/graph.json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == ".tracec/graph.html"
    page = (project / ".tracec" / "graph.html").read_text()
    assert "pricing.total" in page
    target = tmp_path / "view.html"
    assert run(TRACEC, "show", ".tracec/graph.json", "-o", str(target), cwd=project).stdout.strip() \
        == str(target)
    assert target.is_file()


def test_show_rejects_missing_and_foreign_files(project):
    assert run(TRACEC, "show", "nope.json", cwd=project).returncode == 2
    write(project / "other.json", '{"something": "else"}')
    foreign = run(TRACEC, "show", "other.json", cwd=project)
    assert foreign.returncode == 1
    assert len(foreign.stderr.strip().splitlines()) == 1 and "other.json" in foreign.stderr

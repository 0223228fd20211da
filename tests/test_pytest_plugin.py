"""The pytest plugin through a real `python -m pytest` in a throwaway project (tracec installed, so the
entry point loads it): what a user sees with `--tracec`, and that without it nothing changes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tracec.runtime import Graph

APP = '''\
import tracec

GREETING = tracec.param("Hi", doc="the greeting word")


@tracec.trainable(doc="formats the greeting for a name")
def greet(name: str) -> str:
    return GREETING + " " + name


@tracec.trace
def initial(name):
    letter = name[0]
    return letter
'''

TESTS = '''\
import pytest
import tracec
import app


def test_ada():
    assert app.greet("Ada") == "Hello, Ada!", "greet must say Hello with a comma"


def test_bob_passes():
    assert app.greet("Bob").endswith("Bob")


def test_empty_name_raises_inside_traced_code():
    assert app.initial("") == ""


def test_explicit_feedback():
    out = app.greet("Cy")
    tracec.feedback("too informal for a letter", score=0.25)
    assert out


def test_feedback_without_a_traced_call():
    tracec.feedback("nothing traced ran here")


@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")


def test_fixture_error(broken):
    pass
'''


def make_project(tmp_path: Path, tests: str = TESTS) -> Path:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / "app.py").write_text(APP)
    (root / "tests" / "test_app.py").write_text(tests)
    return root


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "TRACEC_RECORD")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, timeout=120)


def by_test(report: dict) -> dict[str, dict]:
    return {t["nodeid"].rsplit("::", 1)[1]: t for t in report["tests"]}


def test_a_failing_assert_becomes_feedback_reaching_the_trainable_code(tmp_path):
    root = make_project(tmp_path)
    result = pytest_run(root, "--tracec", "--tracec-report", "out/report.json")
    assert result.returncode == 1, result.stdout    # the failures are still failures
    assert re.search(r"tracec: recorded 6 test\(s\), \d+ node\(s\); report: out/report.json", result.stdout)
    tests = by_test(json.loads((root / "out" / "report.json").read_text()))
    ada = tests["test_ada"]
    assert ada["outcome"] == "failed" and ada["score"] == 0.0
    assert "greet must say Hello with a comma" in ada["text"] and "'Hi Ada'" in ada["text"]
    assert "tests/test_app.py:7" in ada["text"]      # where the assert is, with its source line
    reached = Graph.from_json(ada["graph"]).backward()
    assert set(reached) == {"app:greet", "app:GREETING"}
    assert all(fb.text == ada["text"] and fb.score == 0.0 for pf in reached.values() for fb in pf.feedback)
    bob = tests["test_bob_passes"]
    assert bob["outcome"] == "passed" and bob["score"] == 1.0
    assert [fb.score for fb in Graph.from_json(bob["graph"]).backward()["app:greet"].feedback] == [1.0]


def test_an_exception_in_traced_code_and_a_fixture_error_are_failures(tmp_path):
    root = make_project(tmp_path)
    pytest_run(root, "--tracec", "--tracec-report", "report.json")
    tests = by_test(json.loads((root / "report.json").read_text()))
    raised = tests["test_empty_name_raises_inside_traced_code"]
    assert raised["outcome"] == "failed" and "IndexError" in raised["text"]
    graph = Graph.from_json(raised["graph"])
    errors = [n for n in graph.nodes if n.kind == "error"]
    assert errors and errors[0].line == 13 and errors[0].error["type"] == "IndexError"   # `letter = name[0]`
    assert any(fb.node == errors[-1].id for fb in graph.feedbacks)
    fixture = tests["test_fixture_error"]
    assert fixture["outcome"] == "failed" and fixture["text"].startswith("setup failed")
    assert "fixture exploded" in fixture["text"]


def test_explicit_feedback_is_attached_and_kept_when_nothing_traced_ran(tmp_path):
    root = make_project(tmp_path)
    pytest_run(root, "--tracec", "--tracec-report", "report.json")
    tests = by_test(json.loads((root / "report.json").read_text()))
    explicit = tests["test_explicit_feedback"]
    graph = Graph.from_json(explicit["graph"])
    assert [(fb.text, fb.score) for fb in graph.backward()["app:greet"].feedback] == [
        ("too informal for a letter", 0.25), ("test passed", 1.0)]
    assert "tracec.feedback: too informal for a letter (score 0.25)" in explicit["text"]
    lonely = tests["test_feedback_without_a_traced_call"]
    assert lonely["graph"]["nodes"] == [] and lonely["graph"]["feedback"] == []
    assert "tracec.feedback: nothing traced ran here" in lonely["text"]


def test_without_the_option_the_plugin_changes_nothing(tmp_path):
    probe = TESTS + '''

def test_session_is_untouched():
    import sys
    from tracec.runtime import active
    assert active() is None and tracec.feedback("ignored") == []
    assert not any(type(f).__name__ == "TracecFinder" for f in sys.meta_path)
    assert "libcst" not in sys.modules and "tracec.importhook" not in sys.modules
    assert not hasattr(app, "_tracec_m")     # app was imported plain, not instrumented
'''
    root = make_project(tmp_path, probe)
    plain = pytest_run(root, "-rA")
    without_plugin = pytest_run(root, "-rA", "-p", "no:tracec")

    def summary(out: str) -> list[str]:   # the per-test result lines and the totals, without timings
        return [re.sub(r" in [\d.]+s", "", line) for line in out.splitlines()
                if line.startswith(("PASSED", "FAILED", "ERROR", "=")) and "test session starts" not in line]

    assert "PASSED tests/test_app.py::test_session_is_untouched" in plain.stdout, plain.stdout
    assert "PASSED tests/test_app.py::test_explicit_feedback" in plain.stdout   # feedback() is a no-op
    assert summary(plain.stdout) == summary(without_plugin.stdout)
    assert plain.returncode == without_plugin.returncode == 1
    assert "tracec:" not in plain.stdout
    assert not (root / ".tracec").exists() and not list(root.rglob("*.tracec-*.pyc"))


def test_report_option_alone_turns_recording_on_and_help_lists_the_options(tmp_path):
    root = make_project(tmp_path)
    result = pytest_run(root, "--tracec-report", "r.json", "-k", "bob")
    assert result.returncode == 0, result.stdout
    report = json.loads((root / "r.json").read_text())
    assert [t["nodeid"] for t in report["tests"]] == ["tests/test_app.py::test_bob_passes"]
    assert {t["key"] for t in report["targets"]} == {"app:GREETING", "app:greet"}
    helptext = pytest_run(root, "--help").stdout
    assert "--tracec " in helptext and "--tracec-report=FILE" in helptext

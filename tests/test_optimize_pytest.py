"""`tracec optimize --pytest` end to end: a throwaway project whose tests are the examples, the installed
command, a scripted OpenAI-compatible server, and candidates that hang or kill their process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from support import TRACEC

APP = '''\
import tracec

GREETING = tracec.param("Hi", doc="the greeting word")


@tracec.trainable(doc="formats the greeting for a name")
def greet(name: str) -> str:
    return GREETING + " " + name
'''

TESTS = '''\
import app


def test_greets_with_hello():
    assert app.greet("Ada") == "Hello, Ada!", "a greeting is 'Hello, NAME!'"


def test_greeting_ends_with_the_name_or_bang():
    assert app.greet("Bob").rstrip("!").endswith("Bob")


def test_unrelated_and_always_failing():
    assert 1 == 2
'''

SELECT = "greet"   # -k: the first two tests; the third would keep the score below 1.0 forever

FIX = json.dumps({"reasoning": "say Hello with a comma and a bang", "suggestion": {
    "greet": "def greet(name: str) -> str:\n    return 'Hello, ' + name + '!'"}})


def code_reply(body: str) -> str:
    return json.dumps({"reasoning": "try this", "suggestion": {"greet": f"def greet(name: str) -> str:\n{body}"}})


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n\n'
                                         '[tool.tracec]\nbatch_size = 2\nsearch = "greedy"\n')
    (root / "app.py").write_text(APP)
    (root / "tests" / "test_app.py").write_text(TESTS)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def optimize(root: Path, server, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "TRACEC_RECORD")}
    env.update(TRACEC_MODEL="", PYTHONDONTWRITEBYTECODE="1")
    command = [TRACEC, "optimize", *args]
    if server is not None:
        command += ["--model", "openai/scripted", "--api-base", server.url]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, timeout=timeout)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.py") if ".tracec" not in p.parts}


def test_tests_become_the_score_and_a_fix_is_patched_then_the_run_stops(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    server = scripted_llm([FIX])          # one reply: a second step would hit "no scripted reply left"
    started = time.monotonic()
    result = optimize(root, server, "--pytest", "tests", "-k", SELECT, "--steps", "3")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "0.500 -> 1.000" in result.stdout and "greet" in result.stdout
    assert len(server.requests) == 1 and "step 2" not in result.stderr      # all tests pass: stopped early
    prompt = json.dumps(server.requests[0]["messages"])
    assert "a greeting is 'Hello, NAME!'" in prompt and "Hi Ada" in prompt   # the failing assert's message
    assert "test_unrelated_and_always_failing" not in prompt
    assert snapshot(root) == before and not (root / ".tracec" / "pytest").exists()
    patch = next((root / ".tracec" / "patches").glob("*.patch"))
    assert '+    return "Hello, " + name + "!"' in patch.read_text()
    check = subprocess.run(["git", "apply", "--check", str(patch)], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    config = json.loads(next((root / ".tracec" / "runs").glob("*/config.json")).read_text())
    assert config["task"] == f"--pytest tests -k {SELECT}"
    print(f"e2e wall time {elapsed:.1f} s")


def test_candidates_that_hang_or_kill_their_process_are_rejected(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    replies = [
        code_reply("    while True:\n        pass"),
        code_reply("    import os\n    os._exit(3)"),
        code_reply("    import ctypes\n    return ctypes.string_at(0)"),
        code_reply("    raise SystemExit(4)"),
        FIX,
    ]
    server = scripted_llm(replies)
    result = optimize(root, server, "--pytest", "tests", "-k", SELECT, "--steps", "6", "--trial-timeout", "8",
                      "--no-cache")
    assert result.returncode == 0, result.stderr
    log = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert len(log) == 5 and len(server.requests) == 5, result.stderr
    assert "candidate rejected: the tests took longer than 8 s" in log[0]
    assert "candidate rejected: the test process exited with status 3" in log[1]
    assert "candidate rejected: the test process was killed by SIGSEGV" in log[2]
    assert "0.000 (rolled back)" in log[3]                      # SystemExit fails both tests
    assert "1.000 (kept)" in log[4]
    # the model was told why: the next prompt carries the one-line reason
    assert "took longer than 8 s" in json.dumps(server.requests[1]["messages"])
    assert "0.500 -> 1.000" in result.stdout
    assert snapshot(root) == before


def test_a_candidate_that_writes_its_own_file_is_rejected_and_the_tree_stays_identical(tmp_path, scripted_llm):
    """The tests run in a scratch copy holding the candidate's patched files: a candidate that writes its own
    file is rejected, the user's tree stays untouched, and the next candidate is tried in a clean copy."""
    root = make_project(tmp_path)
    before = snapshot(root)
    vandal = code_reply("    open(__file__, 'a').write('# vandalised\\n')\n    return 'Hello, ' + name + '!'")
    result = optimize(root, scripted_llm([vandal, FIX]), "--pytest", "tests", "-k", SELECT, "--steps", "2",
                      "--no-cache")
    assert result.returncode == 0, result.stderr
    log = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert "candidate rejected: the candidate modified the project file app.py" in log[0], log
    assert "1.000 (kept)" in log[1], log
    assert snapshot(root) == before
    assert not (root / ".tracec" / "scratch").exists()


def test_usage_errors_exit_2_with_one_line(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    (root / "task.py").write_text("train = [1]\n")
    cases = [((), "TASK.py"), (("task.py", "--pytest", "tests"), "not both"),
             (("task.py", "-k", "x"), "-k"), (("--pytest", "tests", "-k", "nothing_matches"), "no tests selected")]
    for args, message in cases:
        result = optimize(root, None, *args, "--model", "openai/scripted", "--api-base", "http://127.0.0.1:9")
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)



def test_with_two_workers_the_tests_run_in_two_processes_at_once_and_reach_the_same_result(tmp_path, scripted_llm):
    """Two slow tests log their process and the time they ran; with --workers 2 two pytest processes ran
    them at the same moment, with --workers 1 never, and the run's result is the same either way."""
    log = tmp_path / "ran.log"
    slow = f'''

import os as _os, time as _time


def _note():
    start = _time.time()
    _time.sleep(1.0)
    with open({str(log)!r}, "a") as fh:
        fh.write(f"{{_os.getpid()}} {{start}} {{_time.time()}}\\n")


def test_slow_one():
    _note()


def test_slow_two():
    _note()
'''

    def overlapping() -> bool:
        runs = [line.split() for line in log.read_text().splitlines()]
        return any(a[0] != b[0] and float(a[1]) < float(b[2]) and float(b[1]) < float(a[2])
                   for a in runs for b in runs)

    results = {}
    for workers in ("2", "1"):
        root = make_project(tmp_path / f"w{workers}")
        with (root / "tests" / "test_app.py").open("a") as tests:
            tests.write(slow)
        log.write_text("")
        result = optimize(root, scripted_llm([FIX]), "--pytest", "tests", "-k", "greet or slow", "--steps", "1",
                          "--workers", workers)
        assert result.returncode == 0, result.stderr
        results[workers] = (overlapping(), re.findall(r"\d\.\d{3} -> \d\.\d{3}", result.stdout))
    assert results["2"][0] and not results["1"][0]
    assert results["2"][1] == results["1"][1] == ["0.750 -> 1.000"]

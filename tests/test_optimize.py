"""`tracec optimize` end to end: a throwaway project, a task file, and a scripted OpenAI-compatible server
reached through litellm's real client path. What a user sees: the summary, the patches, untouched sources."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import Failure
from support import TRACEC, starting_with

APP = '''\
"""A greeting workflow with a trainable constant and a trainable function."""

import tracec

GREETING = tracec.param("Hi", doc="the greeting word")


@tracec.trainable(doc="formats the greeting for a name")
def greet(name: str) -> str:
    # keep this comment
    return GREETING + " " + name


@tracec.trace
def answer(name):
    text = greet(name)
    return text
'''

TASK = '''\
import app

train = [{"name": "Ada"}, {"name": "Bob"}, {"name": "Cy"}]


def run(example):
    return app.answer(example["name"])


def feedback(example, output):
    score = 0.5 * output.startswith("Hello") + 0.5 * output.endswith("!")
    return score, f"expected 'Hello, {example['name']}!' but got {output!r}"
'''

VALUE_REPLY = json.dumps({"reasoning": "the greeting word must be Hello", "suggestion": {"GREETING": "Hello"}})
CODE_REPLY = json.dumps({"reasoning": "add a comma and an exclamation mark", "suggestion": {
    "greet": "def greet(name: str) -> str:\n    return GREETING + ', ' + name + '!'"}})


def make_project(tmp_path: Path, app: str = APP, task: str = TASK) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    # greedy: one proposal per step, in the order the scripted replies are listed (test_search: pareto)
    (root / "pyproject.toml").write_text("[tool.tracec]\nbatch_size = 2\nsearch = \"greedy\"\n")
    (root / "app.py").write_text(app)
    (root / "task.py").write_text(task)
    return root


def optimize(root: Path, server, *args: str, timeout: float = 120,
             sigint=signal.SIG_DFL) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRACEC_MODEL": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([TRACEC, "optimize", "task.py", "--model", "openai/scripted",
                           "--api-base", server.url, *args], cwd=root, capture_output=True, text=True,
                          env=env, timeout=timeout, preexec_fn=starting_with(signal.SIGINT, sigint))


def assert_applies(root: Path, patch: Path) -> None:
    """Both standard tools accept the patch as it is on disk."""
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    git = subprocess.run(["git", "apply", "--check", str(patch)], cwd=root, capture_output=True, text=True)
    assert git.returncode == 0, git.stderr
    gnu = subprocess.run(["patch", "-p1", "--dry-run", "-i", str(patch)], cwd=root, capture_output=True, text=True)
    assert gnu.returncode == 0, gnu.stdout + gnu.stderr


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.glob("*.py")}


def calls(root: Path) -> list[dict]:
    runs = sorted((root / ".tracec" / "runs").iterdir())
    return [json.loads(p.read_text()) for p in sorted((runs[-1] / "calls").glob("*.json"))]


def test_improvements_become_one_patch_and_sources_stay_untouched(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    server = scripted_llm([VALUE_REPLY, CODE_REPLY])
    result = optimize(root, server, "--steps", "2")
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == before                      # only `tracec apply` touches sources
    patches = sorted((root / ".tracec" / "patches").glob("*.patch"))
    assert len(patches) == 1, result.stdout
    text = patches[0].read_text()
    assert "-GREETING = tracec.param(\"Hi\"" in text and "+GREETING = tracec.param(\"Hello\"" in text
    assert '+    return GREETING + ", " + name + "!"' in text    # black-formatted new code
    assert "0.000 -> 1.000" in result.stdout and "GREETING" in result.stdout and "greet" in result.stdout
    # the prompt used the user's names and showed the code that ran
    prompt = json.dumps(server.requests[0]["messages"])
    assert "GREETING" in prompt and "text = greet(name)" in prompt
    # the patch applies with git and with tracec apply, and the workflow then does what the feedback asked
    assert_applies(root, patches[0])
    applied = subprocess.run([TRACEC, "apply"], cwd=root, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    out = subprocess.run([sys.executable, "-c", "import app; print(app.answer('Ada'))"], cwd=root,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "Hello, Ada!"
    assert "# keep this comment" not in (root / "app.py").read_text()   # the def was replaced as a whole


def test_worse_candidate_is_rolled_back_and_no_patch_written(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    worse = json.dumps({"reasoning": "r", "suggestion": {"GREETING": "Bye"}})
    server = scripted_llm([worse])
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "no improvement" in result.stdout
    assert not list((root / ".tracec").glob("patches/*.patch"))
    assert snapshot(root) == before
    assert "rolled back" in result.stderr


def test_exception_in_run_is_feedback_not_a_crash(tmp_path, scripted_llm):
    app = APP.replace('    return GREETING + " " + name', '    return GREETING + " " + name[5]')
    root = make_project(tmp_path, app=app)
    server = scripted_llm([CODE_REPLY])
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    prompt = json.dumps(server.requests[0]["messages"])
    assert "IndexError" in prompt                           # the error reached the optimizer
    patches = list((root / ".tracec").glob("patches/*.patch"))
    assert len(patches) == 1
    assert_applies(root, patches[0])


def test_interrupt_mid_run_keeps_what_improved_and_resume_continues(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm([VALUE_REPLY])         # a second call finds no reply: the server answers 500
    first = optimize(root, server, "--steps", "2")
    assert first.returncode == 1                 # stopped by the model error, improvement still written
    assert "model error" in first.stdout
    run_id = sorted((root / ".tracec" / "runs").iterdir())[-1].name
    assert f"--resume {run_id}" in first.stdout.replace("\n", " ")   # the summary says how to continue
    assert len(list((root / ".tracec").glob("patches/*.patch"))) == 1
    state = json.loads((root / ".tracec" / "runs" / run_id / "state.json").read_text())
    assert state["step"] == 1 and state["best"] == 0.5
    tried = [(c["values"], c["status"], c["val_scores"]) for c in state["candidates"][1:]]
    assert tried == [({"app:GREETING": "'Hello'"}, "member", [0.5, 0.5, 0.5])]   # one score per example
    server2 = scripted_llm([CODE_REPLY])
    resumed = optimize(root, server2, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert "0.000 -> 1.000" in resumed.stdout
    assert len(server2.requests) == 1
    # the resumed run starts from the kept value: the prompt shows Hello, not Hi
    assert "'Hello'" in json.dumps(server2.requests[0]["messages"])


def test_bad_task_file_is_a_one_line_error(tmp_path, scripted_llm):
    root = make_project(tmp_path, task="import app\ntrain = []\n")
    server = scripted_llm([])
    result = optimize(root, server)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "task.py" in result.stderr and "train" in result.stderr


def test_cached_reply_is_reused_without_calling_the_server(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    first = optimize(root, scripted_llm([VALUE_REPLY]), "--steps", "1")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(root / ".tracec" / "patches")
    server = scripted_llm([])
    again = optimize(root, server, "--steps", "1")
    assert again.returncode == 0, again.stderr
    assert server.requests == [] and "from the cache" in again.stdout
    nocache = optimize(root, scripted_llm([VALUE_REPLY]), "--steps", "1", "--no-cache")
    assert nocache.returncode == 0
    # the same improvement again reuses the patch already waiting instead of writing a duplicate
    assert [p.name for p in (root / ".tracec" / "patches").glob("*.patch")] == ["0001-app-GREETING.patch"]
    assert "0001-app-GREETING.patch" in nocache.stdout


def test_budget_stops_before_the_call(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm([VALUE_REPLY])
    result = optimize(root, server, "--steps", "1", "--budget-usd", "0", "--model", "openai/gpt-4o")
    assert "budget" in result.stdout
    assert server.requests == []


def _reply(suggestion, reasoning="r") -> str:
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


# (kind, reply): none of these may change a file or crash the optimizer; each is rejected with a reason
ADVERSARIAL = [
    ("prose only", "I think you should use a warmer greeting."),
    ("broken JSON", '{"reasoning": "x", "suggestion": {"GREETING": "Hello"'),
    ("top-level array", '[1, 2, 3]'),
    ("no suggestion key", json.dumps({"reasoning": "only thoughts"})),
    ("suggestion not a dict", json.dumps({"reasoning": "r", "suggestion": ["GREETING", "Hello"]})),
    ("empty suggestion", _reply({})),
    ("TERMINATE in reasoning", _reply({}, reasoning="All good. TERMINATE")),
    ("unknown name", _reply({"SALUTATION": "Hello"})),
    ("path-like name", _reply({"../../etc/passwd": "root"})),
    ("int for a str param", _reply({"GREETING": 42})),
    ("list for a str param", _reply({"GREETING": ["Hello"]})),
    ("bool for a str param", _reply({"GREETING": True})),
    ("null value", _reply({"GREETING": None})),
    ("huge string", _reply({"GREETING": "A" * 100_000})),
    ("code with a syntax error", _reply({"greet": "def greet(name: str) -> str\n    return"})),
    ("code that renames the function", _reply({"greet": "def hello(name: str) -> str:\n    return name"})),
    ("code that changes the signature", _reply({"greet": "def greet(name, extra):\n    return name"})),
    ("code that is not a def", _reply({"greet": "print('hi')"})),
    ("code as a number", _reply({"greet": 5})),
    ("no change", _reply({"GREETING": "Hi"})),
    ("code that raises", _reply({"greet": "def greet(name: str) -> str:\n    raise RuntimeError('boom')"})),
]


def test_adversarial_replies_leave_every_file_identical(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    server = scripted_llm([reply for _, reply in ADVERSARIAL])
    # 20 unusable replies use three attempts per step; the usable one that raises ends step 7
    result = optimize(root, server, "--steps", "7", "--no-cache")   # identical prompts would hit the cache
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == len(ADVERSARIAL)
    assert snapshot(root) == before
    assert not list((root / ".tracec").glob("patches/*.patch"))
    assert "no improvement" in result.stdout
    records = calls(root)
    assert len(records) == len(ADVERSARIAL)
    for (kind, _), record in zip(ADVERSARIAL[:-1], records):
        assert record["accepted"] == [], kind
        assert record["problems"], f"{kind}: no reason given to the model"
        assert all("\n" not in p and len(p) < 400 for p in record["problems"]), kind
    # the retry tells the model why its previous reply was unusable
    assert "SALUTATION" in json.dumps(server.requests[ADVERSARIAL.index(ADVERSARIAL[8])]["messages"])
    assert "rolled back" in result.stderr   # the candidate that raises scored worse


def test_task_params_limit_what_the_optimizer_may_change(tmp_path, scripted_llm):
    root = make_project(tmp_path, task=TASK + '\nparams = ["GREETING"]\n')
    server = scripted_llm([CODE_REPLY, VALUE_REPLY])
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    first, retry = (r["messages"][-1]["content"] for r in server.requests)
    assert "(code) greet" not in first                      # greet is not offered as a variable
    assert "unknown name 'greet'" in retry                  # and a reply that changes it is refused
    assert server.requests[0]["temperature"] == 0 and server.requests[1]["temperature"] > 0
    patch = next((root / ".tracec" / "patches").glob("*.patch"))
    assert "GREETING" in patch.read_text() and "def greet" not in patch.read_text()
    assert_applies(root, patch)


def test_task_params_naming_nothing_is_a_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path, task=TASK + '\nparams = ["GREETNG"]\n')
    result = optimize(root, scripted_llm([]))
    assert result.returncode == 2
    assert "'GREETNG'" in result.stderr and "GREETING" in result.stderr


def test_ctrl_c_stops_cleanly_and_writes_what_improved(tmp_path, scripted_llm):
    import threading
    import time

    root = make_project(tmp_path)
    waiting = threading.Event()

    asked = []

    def reply(request):
        asked.append(request)
        if len(asked) == 1:                                  # step 1 improves GREETING
            return VALUE_REPLY
        waiting.set()
        time.sleep(20)                                       # step 2 hangs until the user presses Ctrl-C
        return CODE_REPLY

    server = scripted_llm(reply)
    env = {**os.environ, "TRACEC_MODEL": ""}
    process = subprocess.Popen([TRACEC, "optimize", "task.py", "--model", "openai/scripted",
                                "--api-base", server.url, "--steps", "3"], cwd=root, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=starting_with(signal.SIGINT, signal.SIG_DFL))   # as in a terminal
    assert waiting.wait(60), "step 2 never asked the model"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in out and "Traceback" not in err
    patch = next((root / ".tracec" / "patches").glob("*.patch"))
    assert '+GREETING = tracec.param("Hello"' in patch.read_text() and "def greet" not in patch.read_text()
    assert_applies(root, patch)
    assert (root / "app.py").read_text() == APP


def test_a_param_inside_a_function_is_optimized_and_patched(tmp_path, scripted_llm):
    app = APP.replace('''def answer(name):
    text = greet(name)''', '''def answer(name):
    punctuation = tracec.param("", doc="appended to the answer")
    text = greet(name) + punctuation''')
    root = make_project(tmp_path, app=app, task=TASK + '\nparams = ["answer.punctuation"]\n')
    server = scripted_llm([json.dumps({"reasoning": "end with !", "suggestion": {"answer.punctuation": "!"}})])
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 0.500" in result.stdout
    patch = next((root / ".tracec" / "patches").glob("*.patch"))
    assert '+    punctuation = tracec.param("!", doc="appended to the answer")' in patch.read_text()
    assert_applies(root, patch)


# A process started in the background of a script (`tracec optimize ... &`, some CI runners) starts with
# SIGINT ignored; the worker host must still stop the candidate there.
@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["from a terminal", "in the background"])
def test_a_candidate_that_never_returns_is_stopped_and_rejected(tmp_path, scripted_llm, sigint):
    endless = _reply({"greet": "def greet(name: str) -> str:\n    while True:\n        pass"})
    root = make_project(tmp_path)
    server = scripted_llm([endless, VALUE_REPLY])
    result = optimize(root, server, "--steps", "2", "--trial-timeout", "1", timeout=300, sigint=sigint)
    assert result.returncode == 0, result.stderr
    assert "longer than 1 s" in result.stderr and "candidate rejected" in result.stderr
    patch = next((root / ".tracec" / "patches").glob("*.patch")).read_text()
    assert "GREETING" in patch and "def greet" not in patch     # step 2 still improved the value
    assert "0.000 -> 0.500" in result.stdout


def test_sampling_flags_reach_the_minibatch_and_the_request(tmp_path, scripted_llm):
    root = make_project(tmp_path)                      # pyproject says batch_size = 2
    server = scripted_llm([VALUE_REPLY])
    result = optimize(root, server, "--steps", "1", "--batch-size", "1", "--seed", "3", "--max-tokens", "50",
                      "--workers", "2")
    assert result.returncode == 0, result.stderr
    request = server.requests[0]
    assert request["max_tokens"] == 50 and request["seed"] == 3
    prompt = request["messages"][-1]["content"]
    assert "[example 1]" in prompt and "[example 2]" not in prompt   # the flag beat [tool.tracec]
    assert "0.000 -> 0.500" in result.stdout            # val scored in 2 threads, same result


def test_bad_settings_in_pyproject_are_a_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    (root / "pyproject.toml").write_text("[tool.tracec]\nsteps = 0\n")
    result = optimize(root, scripted_llm([]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pyproject.toml" in result.stderr and "steps" in result.stderr


def test_a_reply_with_a_lone_surrogate_is_refused_and_the_run_goes_on(tmp_path, scripted_llm):
    """JSON "\\ud800" is half a UTF-16 pair: no UTF-8 file (patch, run state, LLM cache) can hold it. Sent
    escaped inside the reply's JSON, or raw in the server's message, it is refused with a reason the model
    sees on the retry (it used to be tried, kept because it scored better, and crash the next step with
    exit 123, losing the run's improvements)."""
    root = make_project(tmp_path)
    escaped = _reply({"GREETING": "Hello SURROGATE"}).replace("SURROGATE", "\\ud800")
    raw = _reply({"GREETING": "Hello \ud800"}).replace("\\ud800", "\ud800")
    assert "\ud800" in raw and "\\ud800" in escaped
    server = scripted_llm([escaped, raw, VALUE_REPLY, CODE_REPLY])
    result = optimize(root, server, "--steps", "2")       # with the LLM cache, which must store every reply
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 1.000" in result.stdout
    for retry in server.requests[1:3]:
        assert "lone UTF-16 surrogate" in retry["messages"][-1]["content"]
    records = calls(root)
    assert [bool(r["problems"]) for r in records] == [True, True, False, False]
    assert all(len(r["problems"]) == 1 and "\n" not in r["problems"][0] for r in records[:2])
    state = json.loads(next((root / ".tracec" / "runs").iterdir()).joinpath("state.json").read_text())
    assert state["best_values"]["app:GREETING"] == "'Hello'"
    patch = next((root / ".tracec" / "patches").glob("*.patch"))
    assert '+GREETING = tracec.param("Hello"' in patch.read_text(encoding="utf-8")
    assert_applies(root, patch)


def test_server_error_text_is_printed_literally_not_as_markup(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    asked = []

    def reply(request):
        asked.append(request)
        return VALUE_REPLY if len(asked) == 1 else Failure(400, "bad request: [/bold] is not [red]allowed")

    result = optimize(root, scripted_llm(reply), "--steps", "2")
    assert result.returncode == 1, result.stderr         # a model error, not an internal one (123)
    assert "MarkupError" not in result.stderr
    assert "bad request: [/bold] is not [red]allowed" in result.stdout.replace("\n", " ")
    patch = next((root / ".tracec" / "patches").glob("*.patch"))   # what improved before is written
    assert '+GREETING = tracec.param("Hello"' in patch.read_text()


def test_resume_with_an_empty_run_id_is_a_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm([VALUE_REPLY])
    result = optimize(root, server, "--resume", "")       # e.g. `--resume "$RUN"` with RUN unset
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--resume needs a RUN_ID" in result.stderr, result.stderr
    assert server.requests == [] and not (root / ".tracec" / "runs").exists()

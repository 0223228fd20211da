"""Candidates run in worker processes: what is validated is exactly what the patch contains.

Each test is one way a candidate (an LLM's proposal, untrusted) tried to break validation when it ran in
the optimizer's own process. Through the CLI with a scripted server; the invariant checked throughout:
apply the written patch, run the task plainly, and get exactly the score the optimizer claimed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import TRACEC, starting_with

APP = '''\
import tracec

GREETING = tracec.param("Hi", doc="the greeting word")
MODE = None


@tracec.trainable(doc="formats the greeting for a name")
def greet(name: str, end: str = ".") -> str:
    return GREETING + " " + name + end


class Style:
    PUNCT = tracec.param(".", doc="class-level punctuation")


@tracec.trace
def answer(name):
    suffix = tracec.param("", doc="appended to the answer")
    return greet(name) + suffix + Style.PUNCT.strip(".")
'''

TASK = '''\
import app

train = ["Ada", "Bob", "Cy", "Di"]


def run(name):
    return app.answer(name)


def feedback(name, output):
    score = 0.5 * output.startswith("Hello") + 0.5 * output.endswith("!")
    return score, f"expected 'Hello {name}!' but got {output!r}"
'''

# run the task plainly, as a user would after applying the patch: the mean score over the train examples
PLAIN = '''\
import sys
sys.path.insert(0, ".")
import task
print(sum(task.feedback(x, task.run(x))[0] for x in task.train) / len(task.train))
'''


def reply(suggestion: dict) -> str:
    return json.dumps({"reasoning": "scripted", "suggestion": suggestion})


def code(body: str) -> str:
    return reply({"greet": "def greet(name: str, end: str = \".\") -> str:\n" + body})


def make_project(tmp_path: Path, app: str = APP, task: str = TASK) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    # greedy: one proposal per step, in the order the scripted replies are listed (test_search: pareto)
    (root / "pyproject.toml").write_text("[tool.tracec]\nbatch_size = 4\nsearch = \"greedy\"\n")
    (root / "app.py").write_text(app)
    (root / "task.py").write_text(task)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def optimize(root: Path, server, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRACEC_MODEL": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([TRACEC, "optimize", "task.py", "--model", "openai/scripted", "--api-base", server.url,
                           "--no-cache", *args], cwd=root, capture_output=True, text=True, env=env, timeout=timeout,
                          preexec_fn=starting_with(signal.SIGINT, signal.SIG_DFL))


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".tracec" not in p.parts and ".git" not in p.parts and "__pycache__" not in p.parts}


def claimed(root: Path) -> float:
    (state,) = (root / ".tracec" / "runs").glob("*/state.json")
    return json.loads(state.read_text())["best"]


def plain_score(root: Path) -> float:
    result = subprocess.run([sys.executable, "-c", PLAIN], cwd=root, capture_output=True, text=True, check=True)
    return float(result.stdout)


def apply_and_score(root: Path) -> float:
    result = subprocess.run([TRACEC, "apply"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return plain_score(root)


@pytest.mark.parametrize("suggestion", [
    {"GREETING": "Hello"},                                                         # a module-level param
    {"Style.PUNCT": "!"},                                                          # a class attribute
    {"answer.suffix": "!"},                                                        # a param inside a function
    {"greet": "def greet(name: str, end: str = \"!\") -> str:\n    return GREETING + \" \" + name + end"},
], ids=["module param", "class attribute", "param in a function", "a changed default value"])
def test_applying_the_patch_reaches_exactly_the_claimed_score(tmp_path, scripted_llm, suggestion):
    root = make_project(tmp_path)
    before = plain_score(root)
    result = optimize(root, scripted_llm([reply(suggestion)]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert claimed(root) > before, result.stderr
    assert apply_and_score(root) == claimed(root)


def test_a_global_a_rolled_back_candidate_assigned_does_not_reach_the_next(tmp_path, scripted_llm):
    sets_mode = code("    global MODE\n    MODE = 'loud'\n    return 'no'\n")
    uses_mode = code("    return ('Hello ' + name + '!') if MODE == 'loud' else ('Hi ' + name)\n")
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([sets_mode, uses_mode]), "--steps", "2")
    assert result.returncode == 0, result.stderr
    assert "no improvement" in result.stdout            # in a fresh process MODE is None: 0.0 both times
    assert not list((root / ".tracec").glob("patches/*.patch"))


def test_a_candidate_cannot_rescore_itself_by_replacing_feedback(tmp_path, scripted_llm):
    cheat = code("    import sys\n"
                 "    sys.modules['__tracec_task__'].feedback = lambda example, output: (1.0, 'perfect')\n"
                 "    sys.modules['tracec.optimize.task'].judge = lambda *args: (1.0, 'perfect')\n"
                 "    return 'Hi ' + name\n")
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([cheat]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 (rolled back)" in result.stderr and "no improvement" in result.stdout


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)",
                                       "import ctypes; ctypes.string_at(0)", "raise KeyboardInterrupt"],
                         ids=["sys.exit", "os._exit", "segfault", "KeyboardInterrupt"])
def test_a_candidate_that_ends_its_process_is_rejected_and_the_run_goes_on(tmp_path, scripted_llm, exit_call):
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([code(f"    {exit_call}\n"), reply({"GREETING": "Hello"})]), "--steps", "2")
    assert result.returncode == 0, result.stderr
    step1 = next(line for line in result.stderr.splitlines() if line.startswith("step 1/2"))
    assert "candidate rejected" in step1 and len(step1) < 400, step1
    assert "0.000 -> 0.500" in result.stdout                       # step 2 still improved, and it is written
    assert apply_and_score(root) == claimed(root) == 0.5


def test_a_candidate_writing_to_its_own_file_is_rejected_and_the_tree_stays_identical(tmp_path, scripted_llm):
    vandal = code("    open(__file__, 'a').write('# vandalised\\n')\n    return 'Hello ' + name + '!'\n")
    root = make_project(tmp_path)
    before = snapshot(root)
    result = optimize(root, scripted_llm([vandal]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "modified the project file app.py" in result.stderr
    assert snapshot(root) == before and not list((root / ".tracec").glob("patches/*.patch"))


def test_a_nested_helper_def_in_a_candidate_is_tried(tmp_path, scripted_llm):
    helper = code("    def shout(text):\n        return text + '!'\n\n    return shout('Hello ' + name)\n")
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([helper]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 1.000" in result.stdout
    assert apply_and_score(root) == claimed(root) == 1.0


def test_an_async_run_is_awaited(tmp_path, scripted_llm):
    task = TASK.replace("def run(name):\n    return app.answer(name)",
                        "async def run(name):\n    import asyncio\n    await asyncio.sleep(0)\n    return app.answer(name)")
    root = make_project(tmp_path, task=task)
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 0.500" in result.stdout


def test_the_scratch_copies_are_removed_after_the_run(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "1", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert not (root / ".tracec" / "scratch").exists()


def test_the_summary_reports_each_budget_spent_and_left(tmp_path, scripted_llm):
    root = make_project(tmp_path)   # 4 examples, minibatches of 4: the baseline costs 4, a step 4 + 4
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "3", "--max-metric-calls", "9")
    assert result.returncode == 0, result.stderr
    assert "stopped early: budget: max_metric_calls 9: 8 spent, validating the candidate needs 4" in result.stdout
    assert "spent: steps 0 of 3 (3 left), metric calls 8 of 9 (1 left), LLM calls 1" in result.stdout


ESCAPE = code("    import pathlib\n"
              "    mine = pathlib.Path(__file__).resolve()   # .tracec/scratch/<pid>/slot-N/app.py in the copy\n"
              "    (mine.parents[4] / 'app.py').write_text('# vandalised through an absolute path\\n')\n"
              "    return 'Hello ' + name + '!'\n")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt install bubblewrap)")
def test_under_sandbox_a_candidate_cannot_write_the_users_tree_by_an_absolute_path(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    before = snapshot(root)
    result = optimize(root, scripted_llm([ESCAPE, reply({"GREETING": "Hello"})]), "--steps", "2", "--sandbox")
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == before                          # the write failed: a read-only file system
    step1 = next(line for line in result.stderr.splitlines() if line.startswith("step 1/2"))
    assert step1.endswith("0.000 (rolled back)"), step1      # run() raised OSError: read-only file system
    assert "0.000 -> 0.500" in result.stdout                 # the run went on, and the sandboxed step 2 counts
    assert apply_and_score(root) == claimed(root) == 0.5


def test_sandbox_without_bubblewrap_is_a_one_line_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    env = {**os.environ, "TRACEC_MODEL": "", "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run([TRACEC, "optimize", "task.py", "--sandbox", "--model", "openai/x", "--api-base",
                             scripted_llm([]).url], cwd=root, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("apt install bubblewrap`) or run without --sandbox")
    assert len(result.stderr.strip().splitlines()) == 1



def test_with_the_spawn_start_method_each_child_is_a_fresh_interpreter_and_isolation_holds(tmp_path, scripted_llm,
                                                                                            monkeypatch):
    monkeypatch.setenv("TRACEC_WORKER_START", "spawn")   # e.g. macOS with libraries that must not be forked
    exits = code("    import os; os._exit(0)\n")
    sets_mode = code("    global MODE\n    MODE = 'loud'\n    return 'no'\n")
    # a fork of the warm host has the host's modules loaded; a spawned interpreter does not
    spawned = code("    import sys\n"
                   "    forked = 'tracec.optimize.worker_host' in sys.modules or MODE == 'loud'\n"
                   "    return 'no' if forked else 'Hello ' + name + '!'\n")
    root = make_project(tmp_path)
    before = snapshot(root)
    result = optimize(root, scripted_llm([exits, sets_mode, spawned]), "--steps", "3")
    assert result.returncode == 0, result.stderr
    step1 = next(line for line in result.stderr.splitlines() if line.startswith("step 1/3"))
    assert "candidate rejected" in step1 and "exited with status 0" in step1, step1
    assert "0.000 -> 1.000" in result.stdout, result.stdout + result.stderr
    assert snapshot(root) == before
    assert apply_and_score(root) == claimed(root) == 1.0



def test_a_candidate_that_kills_the_worker_host_is_rejected_and_a_new_host_takes_over(tmp_path, scripted_llm):
    killer = code("    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 'Hello ' + name + '!'\n")
    root = make_project(tmp_path)
    result = optimize(root, scripted_llm([killer, reply({"GREETING": "Hello"})]), "--steps", "2", "--workers", "1")
    assert result.returncode == 0, result.stderr
    step1 = next(line for line in result.stderr.splitlines() if line.startswith("step 1/2"))
    assert "candidate rejected" in step1 and "the worker host ended" in step1, step1
    assert "0.000 -> 0.500" in result.stdout, result.stdout + result.stderr    # step 2 ran on a new host
    assert apply_and_score(root) == claimed(root) == 0.5
    assert not (root / ".tracec" / "scratch").exists()

def test_an_unknown_start_method_is_a_one_line_usage_error(tmp_path, scripted_llm, monkeypatch):
    monkeypatch.setenv("TRACEC_WORKER_START", "forkserver")
    result = optimize(make_project(tmp_path), scripted_llm([]), "--steps", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == "tracec optimize: error: TRACEC_WORKER_START='forkserver': use 'fork' or 'spawn'"


NESTED = '''\
import tracec

GREETING = tracec.param("Hi", doc="the greeting word")


@tracec.trace
def answer(name):
    @tracec.trainable(doc="formats the greeting")
    def fmt(n):
        return GREETING + " " + n

    return fmt(name) + "|" + Box().label


class Box:
    @property
    @tracec.trainable(doc="the box's label")
    def label(self):
        return "x"
'''


def test_a_nested_trainable_and_one_behind_property_are_optimized_and_patched(tmp_path, scripted_llm):
    task = TASK.replace('0.5 * output.startswith("Hello") + 0.5 * output.endswith("!")',
                        '0.5 * ("!|" in output) + 0.5 * output.endswith("y")')
    root = make_project(tmp_path, app=NESTED, task=task)
    replies = [reply({"answer.<locals>.fmt": "def fmt(n):\n    return GREETING + ' ' + n + '!'"}),
               reply({"Box.label": "def label(self):\n    return 'y'"})]
    result = optimize(root, scripted_llm(replies), "--steps", "2")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 1.000" in result.stdout
    assert apply_and_score(root) == claimed(root) == 1.0


def test_files_git_ignores_are_linked_not_copied_and_the_task_still_reads_them(tmp_path, scripted_llm):
    task = TASK.replace('train = ["Ada", "Bob", "Cy", "Di"]',
                        'import pathlib\ntrain = (pathlib.Path(__file__).parent / "data" / "names.txt").read_text().split()')
    root = make_project(tmp_path, task=task)
    (root / "data").mkdir()
    (root / "data" / "names.txt").write_text("Ada Bob Cy Di\n")
    (root / ".gitignore").write_text("data/\n")
    from tracec.optimize.scratch import ScratchCopy

    copy = ScratchCopy.create(root, tmp_path / "copy")
    assert (tmp_path / "copy" / "data").is_symlink() and "data/names.txt" not in copy.manifest
    assert "app.py" in copy.manifest and (tmp_path / "copy" / ".gitignore").is_file()
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 0.500" in result.stdout and "metric calls 12" in result.stdout   # 4 names read, 3 times



def test_the_files_of_a_git_submodule_are_in_the_copy_and_the_task_imports_them(tmp_path, scripted_llm):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "protocol.file.allow=always"]
    library = tmp_path / "library"
    library.mkdir()
    (library / "names.py").write_text('NAMES = ["Ada", "Bob", "Cy", "Di"]\n')
    subprocess.run([*git, "init", "-q"], cwd=library, check=True)
    subprocess.run([*git, "add", "."], cwd=library, check=True)
    subprocess.run([*git, "commit", "-qm", "names"], cwd=library, check=True)
    task = TASK.replace('train = ["Ada", "Bob", "Cy", "Di"]', 'from vendored.names import NAMES\ntrain = NAMES')
    root = make_project(tmp_path, task=task)
    subprocess.run([*git, "submodule", "add", "-q", str(library), "vendored"], cwd=root, check=True,
                   capture_output=True)
    from tracec.optimize.scratch import ScratchCopy

    copy = ScratchCopy.create(root, tmp_path / "copy")
    assert "vendored/names.py" in copy.manifest and not (tmp_path / "copy" / "vendored").is_symlink()
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 0.500" in result.stdout

def test_a_virtualenv_inside_the_project_stays_importable_in_the_workers(tmp_path, scripted_llm, monkeypatch):
    """`python -m venv venv` in the checkout: the copy leaves the virtualenv out, and its site-packages
    on sys.path must still be found where they are (they were looked for inside the copy)."""
    root = make_project(tmp_path, task="import greetlib\n" + TASK.replace("return app.answer(name)",
                                                                       "return greetlib.wrap(app.answer(name))"))
    site = root / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")   # what makes a folder a virtualenv
    (site / "greetlib.py").write_text("def wrap(text):\n    return text\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = optimize(root, scripted_llm([reply({"GREETING": "Hello"})]), "--steps", "1")
    assert result.returncode == 0, result.stderr
    assert "0.000 -> 0.500" in result.stdout

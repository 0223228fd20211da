"""The default search (`--search pareto`) through the CLI, with scripted proposers: a local OpenAI-compatible
server answering each proposal by its seed (the K calls of a step run in parallel, so arrival order is
not theirs), and a real task run in the workers. Each test checks what a user sees in the run state, the
summary and the patch, and that applying the patch reproduces the score it claims."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from support import TRACEC, starting_with

APP = '''\
import tracec

GREETING = tracec.param("Hi", doc="the greeting word")
PUNCT = tracec.param(".", doc="the punctuation at the end")


@tracec.trace
def greet(name):
    return GREETING + ", " + name + PUNCT
'''

# two kinds of examples: one judges only the greeting, the other only the punctuation, so a change to
# one parameter wins one kind and a merge of both wins all
TASK = '''\
import app

train = [("Ada", "greeting"), ("Bob", "punct"), ("Cy", "greeting"), ("Di", "punct")]


def run(example):
    return app.greet(example[0])


def feedback(example, output):
    if example[1] == "greeting":
        score = 1.0 if output.startswith("Hello,") else 0.5 if output.startswith("He") else 0.0
        return score, f"the greeting must be Hello; got {output!r}"
    return (1.0 if output.endswith("!") else 0.0), f"it must end with '!'; got {output!r}"
'''

PLAIN = '''\
import sys
sys.path.insert(0, ".")
import task
print(sum(task.feedback(x, task.run(x))[0] for x in task.train) / len(task.train))
'''


def suggestion(**values) -> str:
    return json.dumps({"reasoning": "scripted", "suggestion": values})


def by_proposal(*replies: str):
    """The server's answer to proposal n of any step: replies[n]. Proposal n > 0 is sampled with seed
    seed + 101 n + 1 (its first attempt), proposal 0 with the run's seed (0)."""
    def answer(request: dict) -> str:
        n = 0 if request.get("temperature", 0) == 0 else (request["seed"] - 1) // 101
        return replies[n]
    return answer


def make_project(tmp_path: Path, settings: str = "", workers: int = 2) -> Path:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.tracec]\nbatch_size = 4\nworkers = {workers}\n{settings}")
    (root / "app.py").write_text(APP)
    (root / "task.py").write_text(TASK)
    return root


def optimize(root: Path, server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRACEC_MODEL": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([TRACEC, "optimize", "task.py", "--model", "openai/scripted", "--api-base", server.url,
                           "--no-cache", *args], cwd=root, capture_output=True, text=True, env=env, timeout=180,
                          preexec_fn=starting_with(signal.SIGINT, signal.SIG_DFL))


def state_of(root: Path) -> dict:
    (state,) = (root / ".tracec" / "runs").glob("*/state.json")
    return json.loads(state.read_text())


def apply_and_score(root: Path) -> float:
    applied = subprocess.run([TRACEC, "apply"], cwd=root, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    result = subprocess.run([os.sys.executable, "-c", PLAIN], cwd=root, capture_output=True, text=True, check=True)
    return float(result.stdout)


def test_two_children_winning_different_examples_are_merged_into_the_best(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm(by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!")))
    result = optimize(root, server, "--steps", "3", "--proposals", "2")
    assert result.returncode == 0, result.stderr
    state = state_of(root)
    pool = [(c["origin"], c["parents"], c["status"], c["val_scores"]) for c in state["candidates"]]
    assert pool == [("baseline", [], "member", [0.0, 0.0, 0.0, 0.0]),
                    ("proposal", [0], "member", [1.0, 0.0, 1.0, 0.0]),     # GREETING = "Hello"
                    ("proposal", [0], "member", [0.0, 1.0, 0.0, 1.0]),     # PUNCT = "!"
                    ("merge", [1, 2], "member", [1.0, 1.0, 1.0, 1.0])]
    assert len(server.requests) == 2                   # the merge costs no LLM call
    assert "nothing to improve" in state["log"][2]     # step 3: the merge scores 1.0 on its minibatch
    # baseline 4, record 4, two children on the minibatch 8 and on val 8, the merge 4 (val, reused), record 4
    assert state["metric_calls"] == 32
    assert "metric calls 32, LLM calls 2" in result.stdout
    assert state["best"] == 1.0 and apply_and_score(root) == 1.0   # the patch reaches what it claims


def test_only_a_child_that_beats_its_parent_on_the_minibatch_is_validated(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm(by_proposal(suggestion(GREETING="Hey"), suggestion(GREETING="Yo"),
                                      suggestion(GREETING="Hello")))
    result = optimize(root, server, "--steps", "1", "--proposals", "3")
    assert result.returncode == 0, result.stderr
    state = state_of(root)
    children = {c["values"]["app:GREETING"]: c for c in state["candidates"][1:]}
    assert children["'Yo'"]["status"] == "rejected" and children["'Yo'"]["val_scores"] == []
    assert "not above its parent's 0" in children["'Yo'"]["reason"]
    assert children["'Hey'"]["val_scores"] == [0.5, 0.0, 0.5, 0.0]
    assert children["'Hello'"]["val_scores"] == [1.0, 0.0, 1.0, 0.0]
    assert state["metric_calls"] == 4 + 4 + 3 * 4 + 2 * 4            # "Yo" never paid for validation
    assert state["best"] == 0.5 and apply_and_score(root) == 0.5       # the best of the three is written


def test_max_metric_calls_is_respected_exactly_in_the_middle_of_a_step(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm(by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!")))
    result = optimize(root, server, "--steps", "3", "--proposals", "2", "--max-metric-calls", "20")
    assert result.returncode == 0, result.stderr
    state = state_of(root)
    # baseline 4 + record 4 + both children on the minibatch 8 + child 1 on val 4 = 20
    assert state["metric_calls"] == 20
    assert "max_metric_calls 20: 20 spent, validating the candidate needs 4" in result.stdout
    # child 2 beat its parent on the minibatch but was never validated: not a pool member
    assert [c["status"] for c in state["candidates"]] == ["member", "member", "new"]
    assert state["best"] == 0.5 and apply_and_score(root) == 0.5       # what was validated is written


def test_max_llm_calls_limits_the_proposals_of_a_step(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = scripted_llm(by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!")))
    result = optimize(root, server, "--steps", "3", "--proposals", "2", "--max-llm-calls", "1")
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 1 and state_of(root)["llm_calls"] == 1
    assert "max_llm_calls 1: 1 spent" in result.stdout


def test_a_resumed_search_reaches_the_same_pool_and_replaces_its_own_patch(tmp_path, scripted_llm):
    replies = by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!"))
    whole = make_project(tmp_path / "whole")
    assert optimize(whole, scripted_llm(replies), "--steps", "3").returncode == 0
    halves = make_project(tmp_path / "halves")
    first = optimize(halves, scripted_llm(replies), "--steps", "1")
    assert first.returncode == 0, first.stderr
    assert len(list((halves / ".tracec" / "patches").glob("*.patch"))) == 1   # 0.5 after one step
    run_id = next((halves / ".tracec" / "runs").iterdir()).name
    second = optimize(halves, scripted_llm(replies), "--resume", run_id, "--steps", "3")
    assert second.returncode == 0, second.stderr

    def decisions(root):
        return [(c["values"], c["parents"], c["status"], c["val_scores"]) for c in state_of(root)["candidates"]]

    assert decisions(halves) == decisions(whole)
    assert state_of(halves)["metric_calls"] == state_of(whole)["metric_calls"]
    (patch,) = (halves / ".tracec" / "patches").glob("*.patch")        # the earlier one was replaced
    assert "0.000 -> 1.000" in patch.read_text()
    assert apply_and_score(halves) == 1.0


def test_greedy_search_validates_every_proposal_on_top_of_the_best(tmp_path, scripted_llm):
    root = make_project(tmp_path, 'search = "greedy"\n')
    server = scripted_llm([suggestion(GREETING="Yo"), suggestion(GREETING="Hello")])
    result = optimize(root, server, "--steps", "2")
    assert result.returncode == 0, result.stderr
    state = state_of(root)
    assert [c["status"] for c in state["candidates"]] == ["member", "rejected", "member"]
    assert state["candidates"][1]["val_scores"] == [0.0] * 4           # greedy pays validation for "Yo" too
    assert state["metric_calls"] == 4 + 2 * (4 + 4)
    assert apply_and_score(root) == 0.5


# "Lucky" scores 1.0 on every third run and 0.0 otherwise (a counter in a file outside the project, so
# the sequence is reproducible), "Hello" a steady 0.5: one run of "Lucky" can look best, three cannot
NOISY_TASK = '''\
import os

import app

train = [("Ada", "greeting"), ("Bob", "greeting"), ("Cy", "greeting"), ("Di", "greeting")]


def run(example):
    return app.greet(example[0])


def feedback(example, output):
    if output.startswith("Lucky"):
        path = os.environ["NOISE_FILE"]
        count = int(open(path).read() or 0) if os.path.exists(path) else 0
        with open(path, "w") as handle:
            handle.write(str(count + 1))
        return (1.0 if count % 3 == 0 else 0.0), "lucky or not"
    return (0.5 if output.startswith("Hello") else 0.0), "say Hello"
'''


def noisy_run(tmp_path: Path, scripted_llm, repeats: int) -> dict:
    root = make_project(tmp_path / f"repeats-{repeats}", workers=1)   # one fork at a time: one counter
    (root / "task.py").write_text(NOISY_TASK)
    server = scripted_llm(by_proposal(suggestion(GREETING="Hello"), suggestion(GREETING="Lucky")))
    os.environ["NOISE_FILE"] = str(tmp_path / f"noise-{repeats}")
    try:
        result = optimize(root, server, "--steps", "1", "--batch-size", "1", "--repeats", str(repeats))
    finally:
        del os.environ["NOISE_FILE"]
    assert result.returncode == 0, result.stderr
    return state_of(root)


def test_with_repeats_a_child_lucky_on_one_run_is_not_paid_a_validation(tmp_path, scripted_llm):
    once = noisy_run(tmp_path, scripted_llm, 1)
    lucky_once = once["candidates"][2]
    assert lucky_once["values"] == {"app:GREETING": "'Lucky'"}
    assert lucky_once["minibatch"] == [0.0, 1.0] and lucky_once["val_scores"]   # one run: it looked better
    thrice = noisy_run(tmp_path, scripted_llm, 3)
    lucky = thrice["candidates"][2]
    assert lucky["status"] == "rejected" and lucky["val_scores"] == []          # three runs: mean 1/3, noisy
    assert "not above its parent's 0" in lucky["reason"]
    hello = thrice["candidates"][1]
    assert hello["val_scores"] == [0.5] * 4 and thrice["best"] == 0.5
    # baseline 4 x 3, the minibatch recorded 1 + 2 more runs, each child 3 on it, "Hello" 4 x 3 on val and
    # as the new best 4 x 3 again
    assert thrice["metric_calls"] == 12 + 3 + 3 + 12 + 12 + 3


def test_children_scored_at_once_on_spare_workers_reach_the_same_pool(tmp_path, scripted_llm):
    """4 workers, minibatches of 2: the two children of a step are scored on their minibatch at once."""
    def pool(workers: int) -> list:
        root = make_project(tmp_path / f"workers-{workers}", workers=workers)
        server = scripted_llm(by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!")))
        result = optimize(root, server, "--steps", "3", "--batch-size", "2")
        assert result.returncode == 0, result.stderr
        return [(c["values"], c["status"], c["minibatch"], c["val_scores"]) for c in state_of(root)["candidates"]]

    at_once = pool(4)
    assert at_once == pool(1)
    assert len(at_once) >= 3 and at_once[1][1] == at_once[2][1] == "member"

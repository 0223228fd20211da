"""Several objectives: `feedback` returns named scores, the task file weighs them in `objectives`, and the
reserved objective `tokens` is measured by tracec (the tokens of the tracec.chat calls one example made).
Through the CLI, with one scripted server answering both the workflow's calls and the optimizer's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from llm_server import count_words
from support import TRACEC

APP = '''\
import tracec

STYLE = tracec.param("Answer in full sentences and explain every step of the sum.", doc="the system prompt")


@tracec.trace
def answer(question):
    return tracec.chat(STYLE, question)
'''

TASK = '''\
import app

train = ["what is 2+2", "what is 3+1", "what is 1+3"]
objectives = {"correct": 1.0, "tokens": -0.01}


def run(question):
    return app.answer(question)


def feedback(question, output):
    return {"correct": float("4" in output)}, f"the answer to {question!r} is 4; got {output!r}"
'''

LONG = "Adding the two numbers step by step the sum is 4 in the end"


def workflow_reply(request: dict) -> str:
    """The workflow's model: a terse answer when its system prompt asks for brevity."""
    system = request["messages"][0]["content"]
    return "4" if "brief" in system.lower() else LONG


def server_for(scripted_llm, proposal: str):
    def reply(request):
        if "suggestion" in json.dumps(request["messages"]):   # the optimizer's proposal prompt
            return proposal
        return workflow_reply(request)
    return scripted_llm(reply)


def make_project(tmp_path: Path, task: str = TASK) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "app.py").write_text(APP)
    (root / "task.py").write_text(task)
    return root


def optimize(root: Path, server, *args: str) -> subprocess.CompletedProcess:
    (root / "pyproject.toml").write_text(f'[tool.tracec]\nsearch = "greedy"\nbatch_size = 3\ncache = false\n'
                                         f'model = "openai/scripted"\napi_base = "{server.url}"\n')
    env = {**os.environ, "TRACEC_MODEL": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([TRACEC, "optimize", "task.py", "--no-cache", *args], cwd=root, capture_output=True,
                          text=True, env=env, timeout=180)


def expected(style: str, questions: list[str]) -> float:
    """The weighted sum by hand: every answer is correct (1.0); the scripted server counts a call's tokens
    as the words of its messages plus the words of its reply."""
    total = 0.0
    for question in questions:
        reply = workflow_reply({"messages": [{"content": style}]})
        total += 1.0 - 0.01 * (count_words(style) + count_words(question) + count_words(reply))
    return total / len(questions)


def test_the_tokens_objective_is_measured_and_a_cheaper_prompt_wins(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    brief = "Be brief."
    server = server_for(scripted_llm, json.dumps({"reasoning": "shorter", "suggestion": {"STYLE": brief}}))
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    questions = ["what is 2+2", "what is 3+1", "what is 1+3"]
    before, after = expected(APP.split('"')[1], questions), expected(brief, questions)
    assert f"{before:.3f} -> {after:.3f}" in result.stdout, result.stdout + result.stderr
    (state,) = (root / ".tracec" / "runs").glob("*/state.json")
    assert abs(json.loads(state.read_text())["best"] - after) < 1e-9
    patch = next((root / ".tracec" / "patches").glob("*.patch")).read_text()
    assert '+STYLE = tracec.param("Be brief."' in patch


def test_the_model_sees_each_objective_and_its_weight(tmp_path, scripted_llm):
    root = make_project(tmp_path)
    server = server_for(scripted_llm, json.dumps({"reasoning": "same", "suggestion": {}}))
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    prompt = next(r["messages"][-1]["content"] for r in server.requests
                  if "suggestion" in json.dumps(r["messages"]))
    tokens = count_words(APP.split('"')[1]) + count_words("what is 2+2") + count_words(LONG)
    assert f"[objectives: correct 1 (weight 1), tokens {tokens} (weight -0.01)]" in prompt


def test_feedback_missing_a_named_objective_is_a_one_line_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path, TASK.replace('objectives = {"correct": 1.0,', 'objectives = {"concise": 0.5, '
                                                                                '"correct": 1.0,'))
    result = optimize(root, server_for(scripted_llm, "{}"), "--steps", "1")
    assert result.returncode == 2
    # found when the baseline is scored, after the run's header line: the error is the one last line
    assert "task.py: feedback() must return ({name: score} for exactly the objectives concise, correct" \
        in result.stderr.strip().splitlines()[-1]


def test_objectives_that_are_not_weights_are_a_one_line_usage_error(tmp_path, scripted_llm):
    root = make_project(tmp_path, TASK.replace('"tokens": -0.01', '"tokens": "cheap"'))
    result = optimize(root, server_for(scripted_llm, "{}"), "--steps", "1")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "task.py: `objectives` must map each named score feedback returns to its weight" in result.stderr


def test_plain_scores_are_unchanged_without_objectives(tmp_path, scripted_llm):
    task = TASK.replace('objectives = {"correct": 1.0, "tokens": -0.01}\n', "").replace(
        'return {"correct": float("4" in output)},', 'return float(output == "4"),')
    root = make_project(tmp_path, task)
    server = server_for(scripted_llm, json.dumps({"reasoning": "terse", "suggestion": {"STYLE": "Be brief."}}))
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    prompt = next(r["messages"][-1]["content"] for r in server.requests
                  if "suggestion" in json.dumps(r["messages"]))
    assert "[objectives:" not in prompt
    assert "0.000 -> 1.000" in result.stdout, result.stdout + result.stderr

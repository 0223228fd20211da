"""The optimizer loop in this process, with a fake client (scripted replies, every request kept) and a
fake evaluator (scores computed from the candidate values; graphs recorded from the project's real
instrumented code by the task evaluator's workers): no server, each run about a second."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tracec.llm.client import LLMReply
from tracec.llm.common import BudgetExceeded
from tracec.optimize.candidates import TrialError
from tracec.optimize.config import resolve
from tracec.optimize.loop import Optimizer
from tracec.optimize.run_state import RunStore
from tracec.optimize.task_evaluator import TaskEvaluator
from tracec.patches.patch_file import read_patch

APP = '''\
import tracec

GREETING = tracec.param("Hi", doc="how to greet")


@tracec.trace
def greet(name):
    return GREETING + ", " + name
'''
TASK = '''\
import app

train = ["ada", "bob"]
val = ["cy"]


def run(name):
    return app.greet(name)


def feedback(name, output):
    return (1.0, "good") if output.startswith("Hello") else (0.0, "say Hello")
'''
SCORES = {"Hi": 0.0, "Hey": 0.25, "Hello": 0.75, "Hello there": 1.0}   # what each GREETING scores


class FakeClient:
    temperature = 0.0

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []

    def complete(self, messages, schema=None, temperature=None, seed=None) -> LLMReply:
        self.requests.append({"messages": messages, "temperature": temperature, "seed": seed})
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return LLMReply(reply, 100, 20, 0.0, False)


class FakeEvaluator:
    """The task evaluator's targets, patch writer and recordings; scores from SCORES (or a TrialError)."""

    def __init__(self, real: TaskEvaluator, stop_at=None, broken=()):
        self.real, self.stop_at, self.broken, self.scored = real, stop_at, set(broken), []
        for name in ("targets", "originals", "initial", "sources", "train", "val", "label", "resume_args",
                     "subject", "repeats", "parallel"):
            setattr(self, name, getattr(real, name))

    def batch(self, rng, size, values):
        return self.real.batch(rng, size, values)

    def record(self, batch, values):
        return self.real.record(batch, values)

    def scores(self, values, examples) -> list[float]:
        greeting = values.get("app:GREETING", "Hi")
        self.scored.append(greeting)
        if greeting in self.broken:
            raise TrialError("it raised ZeroDivisionError at app.py:7")
        return [SCORES.get(greeting, 0.0)] * len(examples)

    def site_value(self, key):
        return self.real.site_value(key)

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.tracec]\nbatch_size = 2\n")
    (root / "app.py").write_text(APP)
    (root / "task.py").write_text(TASK)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    modules = dict(sys.modules)
    yield root
    for name in set(sys.modules) - set(modules):   # app, the task, whatever the hook imported
        del sys.modules[name]


def optimizer(root: Path, replies, steps=3, max_metric_calls=None, max_llm_calls=None, **evaluator_options):
    """The greedy search (one proposal per step, each validated): what these tests pin down step by step."""
    config = resolve(root, {"model": "fake/model", "steps": steps, "max_metric_calls": max_metric_calls,
                            "max_llm_calls": max_llm_calls, "search": "greedy"}, environ={})
    real = TaskEvaluator(root / "task.py", root, 1, 60.0)
    evaluator = FakeEvaluator(real, **evaluator_options)
    client = FakeClient(replies)
    store = RunStore.create(root, config, evaluator.resume_args)
    return Optimizer(evaluator, root, config, store, client), evaluator, client


def suggest(greeting) -> str:
    return json.dumps({"reasoning": "r", "suggestion": {"GREETING": greeting}})


def progress(index, message, best, spent=""):
    pass


def test_a_better_value_is_kept_and_its_patch_claims_the_score_it_reached(project):
    run, evaluator, client = optimizer(project, [suggest("Hey"), suggest("Hello")], steps=2)
    result = run.run(progress)
    assert (result.baseline, result.best) == (0.0, 0.75)
    assert result.changed == {"app:GREETING": ("Hi", "Hello")}
    (patch,) = result.patches
    assert "score 0.000 -> 0.750" in read_patch(patch.path).summary
    assert '+GREETING = tracec.param("Hello"' in patch.path.read_text()
    assert (project / "app.py").read_text() == APP          # the source itself is never touched
    assert evaluator.scored == ["Hi", "Hey", "Hello"]


def test_a_worse_value_is_rolled_back_and_the_next_prompt_says_so(project):
    run, evaluator, client = optimizer(project, [suggest("Hello"), suggest("Hey"), suggest("Hello there")])
    result = run.run(progress)
    assert result.best == 1.0 and result.changed == {"app:GREETING": ("Hi", "Hello there")}
    third_prompt = client.requests[2]["messages"][-1]["content"]
    assert "Hey" in third_prompt and "rolled back" in third_prompt
    second = run.state.candidates[2]                                   # 0 is the baseline
    assert (second.values, second.mean, second.status) == ({"app:GREETING": "Hey"}, 0.25, "rejected")
    assert second.parents == [1] and second.step == 2                  # built on the kept "Hello"


def test_an_unusable_reply_is_retried_warmer_and_told_why(project):
    run, _, client = optimizer(project, ["not json at all", suggest("Hi"), suggest("Hello")], steps=1)
    result = run.run(progress)
    assert result.best == 0.75 and len(client.requests) == 3
    assert [r["temperature"] for r in client.requests] == [None, 0.7, 0.7]
    assert len({r["seed"] for r in client.requests[1:]}) == 2      # each retry is a different sample
    last_prompt = json.dumps(client.requests[2]["messages"])
    assert "repeats the current values" in last_prompt                # the second reply changed nothing


def test_a_candidate_that_fails_is_rejected_with_its_reason_and_the_run_goes_on(project):
    run, _, client = optimizer(project, [suggest("Hey"), suggest("Hello")], steps=2, broken={"Hey"})
    result = run.run(progress)
    assert result.best == 0.75 and run.state.log[0].startswith("step 1: candidate rejected: it raised")
    assert "could not be tried: it raised ZeroDivisionError" in json.dumps(client.requests[1]["messages"])


def test_the_run_stops_once_nothing_can_score_higher(project):
    run, _, client = optimizer(project, [suggest("Hello there"), suggest("Hey")], steps=5, stop_at=1.0)
    result = run.run(progress)
    assert result.best == 1.0 and len(client.requests) == 1 and run.state.step == 1


@pytest.mark.parametrize("stop, stopped", [(BudgetExceeded("over $0.01"), "budget: over $0.01"),
                                           (KeyboardInterrupt(), "interrupted")])
def test_a_run_stopped_midway_still_writes_what_improved(project, stop, stopped):
    run, _, client = optimizer(project, [suggest("Hello"), stop], steps=3)
    result = run.run(progress)
    assert result.stopped == stopped and result.best == 0.75 and len(result.patches) == 1
    assert run.state.step == 1                                         # the run state says where it stopped


def test_max_metric_calls_stops_before_the_evaluation_that_would_pass_it(project):
    # val has 1 example, minibatches 2: the baseline costs 1, each step 2 (record) + 1 (validate)
    run, evaluator, client = optimizer(project, [suggest("Hey"), suggest("Hello")], steps=5, max_metric_calls=5)
    result = run.run(progress)
    assert result.stopped == "budget: max_metric_calls 5: 4 spent, recording the minibatch needs 2"
    assert run.state.metric_calls == 4 and len(client.requests) == 1 and evaluator.scored == ["Hi", "Hey"]
    assert result.best == 0.25 and len(result.patches) == 1            # what improved is still written


def test_max_metric_calls_counts_the_validation_of_a_candidate_too(project):
    run, evaluator, client = optimizer(project, [suggest("Hey")], steps=5, max_metric_calls=3)
    result = run.run(progress)
    assert result.stopped == "budget: max_metric_calls 3: 3 spent, validating the candidate needs 1"
    assert evaluator.scored == ["Hi"] and run.state.metric_calls == 3   # the candidate was never scored


def test_a_metric_budget_below_one_baseline_is_a_usage_error(project):
    from tracec.errors import UsageError

    run, evaluator, _ = optimizer(project, [], max_metric_calls=1)
    evaluator.val = ["cy", "dee"]
    with pytest.raises(UsageError, match="less than one validation"):
        run.run(progress)
    run.evaluator.close()


def test_max_llm_calls_stops_before_the_call_that_would_pass_it(project):
    run, _, client = optimizer(project, ["not json", suggest("Hello"), suggest("Hello there")], steps=3,
                               max_llm_calls=2)
    result = run.run(progress)
    assert len(client.requests) == 2 and run.state.llm_calls == 2      # the retry was the second call
    assert result.stopped == "budget: max_llm_calls 2: 2 spent" and result.best == 0.75


def test_budgets_spent_are_kept_in_the_run_state_for_resume(project):
    run, _, _ = optimizer(project, [suggest("Hey")], steps=1)
    run.run(progress)
    state = json.loads((run.store.folder / "state.json").read_text())
    assert (state["metric_calls"], state["llm_calls"]) == (1 + 2 + 1, 1)
    assert run.spent() == "metric calls 4, LLM calls 1"

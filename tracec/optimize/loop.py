"""The optimizer loop: record a minibatch, send its feedback backward, ask the LLM for better values, try
them, keep what scores better on `val`, and write patches at the end. One loop for task files and pytest
tests: they differ only in the evaluator (evaluator.py; task_evaluator.py runs a task file in worker
processes, pytest_evaluator.py runs tests in a subprocess). `tracec.commands.optimize` builds it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from tracec import runtime
from tracec.optimize.candidates import TrialError
from tracec.optimize.config import OptimizeConfig
from tracec.optimize.evaluator import UNSEEN, Evaluator
from tracec.optimize.run_state import RunState, RunStore
from tracec.optimize.task_evaluator import definition_source

ATTEMPTS = 3      # LLM calls per step: the first, then retries told why the previous reply was unusable
RETRY_TEMPERATURE = 0.7   # a retry at temperature 0 tends to repeat itself; seeded, so still reproducible
MEMORY = 5        # past steps shown to the optimizer

__all__ = ["Optimizer", "Result", "definition_source"]


@dataclass
class Result:
    baseline: float
    best: float
    changed: dict = field(default_factory=dict)   # key -> (old, new)
    patches: list = field(default_factory=list)   # PatchFile
    stopped: str = ""                             # why the run ended early, if it did


class Optimizer:
    def __init__(self, evaluator: Evaluator, root: Path, config: OptimizeConfig, store: RunStore, client) -> None:
        from tracec.optimize.prompt import display_names

        self.evaluator, self.root, self.config, self.store, self.client = evaluator, root, config, store, client
        self.targets = evaluator.targets
        self.names = display_names(self.targets)   # key -> the name the user and the model see
        self.originals = evaluator.originals
        self.sources = evaluator.sources           # patch writing: the same splice the workers run
        self.initial = evaluator.initial
        self.state: RunState = store.state

    def current(self) -> dict[str, object]:
        return {**self.initial, **self.state.best_values}

    # -- one step ---------------------------------------------------------------------------------
    def step(self, index: int) -> str:
        from tracec.optimize.prompt import Example, Variable, build_messages
        from tracec.optimize.reply import SURROGATES, parse_reply, reply_schema

        rng = random.Random(self.config.seed * 1_000_003 + index)
        batch = self.evaluator.batch(rng, self.config.batch_size, self.state.best_values)
        self.spend_metric_calls(len(batch), "recording the minibatch")
        outcomes = self.evaluator.record(batch, self.state.best_values)
        if all(o.score >= 1.0 for o in outcomes) and self.state.best >= 1.0:
            return "every example scores 1.0: nothing to improve"
        reached: set[str] = set()
        for o in outcomes:
            reached.update(k for k in o.graph.backward() if k in self.targets)
        for key in reached - self.initial.keys():   # a site inside a function: its value once it has run
            value = self.evaluator.site_value(key)
            if value is not UNSEEN:
                self.initial[key] = value
        current = self.current()
        reached &= current.keys()
        if not reached:
            return "the feedback reaches no trainable parameter"
        variables = [Variable(k, self.targets[k].kind, current[k], self.targets[k].doc, self.targets[k].file,
                              self.targets[k].line) for k in sorted(reached)]
        examples = [Example(o.graph, o.example, o.output, o.score, o.text) for o in outcomes]
        problems: list[str] = []
        schema = reply_schema(variables)
        for attempt in range(1, ATTEMPTS + 1):
            messages = build_messages(variables, examples, root=self.root, memory=self.state.memory[-MEMORY:],
                                      problems=problems)
            # a lone surrogate in the task's data cannot be sent or cached as UTF-8: send U+FFFD instead
            messages = [{**m, "content": SURROGATES.sub("\ufffd", m["content"])} if isinstance(m.get("content"), str)
                        else m for m in messages]
            retry = {} if attempt == 1 else {"temperature": max(self.client.temperature, RETRY_TEMPERATURE),
                                             "seed": self.config.seed + attempt}
            self.check_llm_budget()
            reply = self.client.complete(messages, schema=schema, **retry)
            self.state.llm_calls += not reply.cached
            proposal = parse_reply(reply.text, variables)
            changed = {k: v for k, v in proposal.values.items() if v != current.get(k)}
            problems = list(proposal.problems)
            if not changed and not problems:
                same = ", ".join(f"{self.names[k]} = {_preview(v, 60)}" for k, v in proposal.values.items())
                problems = [f"the suggestion repeats the current values ({same}); propose different values"]
            self.store.save_call(index, attempt, messages, reply, sorted(changed), problems)
            if changed:
                break
        else:
            self.state.memory.append(f"step {index}: no usable suggestion ({'; '.join(problems)[:200]})")
            return "no usable suggestion: " + "; ".join(problems)[:300]
        return self._try(index, changed)

    def _try(self, index: int, changed: dict) -> str:
        candidate = {**self.state.best_values, **changed}
        label = ", ".join(f"{self.names[k]}={_preview(v, 60)}" for k, v in changed.items())
        self.spend_metric_calls(len(self.evaluator.val), "validating the candidate")
        try:
            score = self.evaluator.score(candidate)
        except TrialError as exc:
            self.state.memory.append(f"step {index}: {label} could not be tried: {exc}")
            return f"candidate rejected: {exc}"
        kept = score > self.state.best
        self.state.trials.append({"step": index, "changed": sorted(changed), "score": score, "kept": kept})
        self.state.memory.append(f"step {index}: tried {label}: score {score:.3f} "
                                 f"({'kept' if kept else 'worse or equal, rolled back'}; best was "
                                 f"{self.state.best:.3f})")
        if kept:
            self.state.best_values, self.state.best = candidate, score
        return f"tried {label}: {score:.3f} ({'kept' if kept else 'rolled back'})"

    # -- budgets ----------------------------------------------------------------------------------
    def spend_metric_calls(self, count: int, purpose: str) -> None:
        """Count `count` example evaluations, or stop before them if they would pass --max-metric-calls."""
        from tracec.llm.common import BudgetExceeded

        limit = self.config.max_metric_calls
        if limit is not None and self.state.metric_calls + count > limit:
            raise BudgetExceeded(f"max_metric_calls {limit}: {self.state.metric_calls} spent, {purpose} needs {count}")
        self.state.metric_calls += count

    def spent(self) -> str:
        """What the run has used so far, against each limit set: "metric calls 34/40, LLM calls 5"."""
        def against(count: int, limit: int | None) -> str:
            return f"{count}/{limit}" if limit is not None else str(count)

        return (f"metric calls {against(self.state.metric_calls, self.config.max_metric_calls)}, "
                f"LLM calls {against(self.state.llm_calls, self.config.max_llm_calls)}")

    def check_llm_budget(self) -> None:
        from tracec.llm.common import BudgetExceeded

        limit = self.config.max_llm_calls
        if limit is not None and self.state.llm_calls >= limit:
            raise BudgetExceeded(f"max_llm_calls {limit}: {self.state.llm_calls} spent")

    # -- whole run --------------------------------------------------------------------------------
    def finished(self) -> bool:
        """The evaluator's best possible score is reached (e.g. every selected test passes)."""
        return self.evaluator.stop_at is not None and self.state.best >= self.evaluator.stop_at

    def run(self, progress) -> Result:
        state = self.state
        if state.baseline is None:
            limit = self.config.max_metric_calls
            if limit is not None and limit < len(self.evaluator.val):
                from tracec.errors import UsageError

                raise UsageError(f"max_metric_calls {limit} is less than one validation of the baseline "
                                 f"({len(self.evaluator.val)} example evaluations); raise it")
            state.baseline = state.best = self.evaluator.baseline()
            state.metric_calls += len(self.evaluator.val)
            self.store.save()
        result = Result(state.baseline, state.best)
        from tracec.llm.common import BudgetExceeded, LLMError

        try:
            while state.step < self.config.steps and not self.finished():
                index = state.step + 1
                message = self.step(index)
                state.step = index
                state.log.append(f"step {index}: {message}")
                self.store.save()
                progress(index, message, state.best, self.spent())
        except BudgetExceeded as exc:
            result.stopped = f"budget: {exc}"
        except LLMError as exc:
            result.stopped = f"model error: {exc}"
        except KeyboardInterrupt:
            result.stopped = "interrupted"
        finally:
            self.evaluator.close()
            self.store.save()
        result.best = state.best
        result.changed = {k: (self.initial.get(k), v) for k, v in state.best_values.items()
                          if v != self.initial.get(k)}
        if state.best > state.baseline and result.changed:
            result.patches = self.write_patches(result)
        return result

    def write_patches(self, result: Result) -> list:
        from tracec.patches.apply import pending_changes
        from tracec.patches.patch_file import sha256_text, write_patch

        pending = pending_changes(self.root)
        patches = []
        for file, keys in self.sources.by_file(result.changed).items():
            new = self.sources.patched_source(file, keys, {k: result.changed[k][1] for k in keys})
            summary = (f"tracec optimize run {self.store.run_id}: score {result.baseline:.3f} -> "
                       f"{result.best:.3f} on {self.evaluator.label}")
            same = pending.get((file, sha256_text(self.originals[file]), sha256_text(new)))
            patches.append(same or write_patch(self.root, file, self.originals[file], new, keys=keys,
                                               summary=summary))
        return patches


def _preview(value, limit: int = 200) -> str:
    return runtime.preview(value, limit)

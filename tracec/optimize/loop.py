"""The optimizer loop: score the baseline, run the search's steps (search.py: which candidate to build on,
what to pay for) until a step, budget or perfect score ends it, and write the best candidate's patches.
What every search shares lives here: asking the model for proposals from a minibatch's graphs, and the
budgets. One loop for task files and pytest tests: they differ only in the evaluator (evaluator.py;
task_evaluator.py runs a task file in worker processes, pytest_evaluator.py runs tests in a scratch
copy). `tracec.commands.optimize` builds it."""

from __future__ import annotations

import threading
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
        self.repeats = config.repeats or evaluator.repeats
        self._llm_lock = threading.Lock()
        self._called = False   # no proposal call made by this process yet
        from tracec.optimize.search import SEARCHES

        self.search = SEARCHES[config.search](self)

    # -- what every search shares ------------------------------------------------------------------
    def preview(self, value, limit: int = 200) -> str:
        return runtime.preview(value, limit)

    def remember(self, line: str) -> None:
        """One line about a candidate, shown to the model in later steps."""
        self.state.memory.append(line)

    def propose(self, index: int, outcomes: list, values: dict, count: int) -> list[dict] | str:
        """Up to `count` changes (key -> new value) the model proposes for the parameters the recorded
        `outcomes`' feedback reaches, with `values` (changes from the source) in effect; or why there are
        none. The calls run in parallel; each samples differently (its own seed; all but the first warmer),
        so the K children differ. Each call is checked against --max-llm-calls before it is made."""
        from tracec.llm.common import BudgetExceeded
        from tracec.optimize.prompt import Example, Variable
        from tracec.optimize.reply import reply_schema

        reached: set[str] = set()
        for o in outcomes:
            reached.update(k for k in o.graph.backward() if k in self.targets)
        for key in reached - self.initial.keys():   # a site inside a function: its value once it has run
            value = self.evaluator.site_value(key)
            if value is not UNSEEN:
                self.initial[key] = value
        current = {**self.initial, **values}
        reached &= current.keys()
        if not reached:
            return "the feedback reaches no trainable parameter"
        variables = [Variable(k, self.targets[k].kind, current[k], self.targets[k].doc, self.targets[k].file,
                              self.targets[k].line) for k in sorted(reached)]
        examples = [Example(o.graph, o.example, o.output, o.score, o.text) for o in outcomes]
        memory = self.state.memory[-MEMORY:]
        if self.config.max_llm_calls is not None:   # no more first calls than the budget has left
            count = min(count, self.config.max_llm_calls - self.state.llm_calls)
            if count < 1:
                raise BudgetExceeded(f"max_llm_calls {self.config.max_llm_calls}: {self.state.llm_calls} spent")

        def ask(n: int) -> tuple[dict, list[str]]:
            return self._ask(index, n, variables, examples, memory, current, reply_schema(variables))

        # the process's first call runs alone: what it imports lazily (litellm's providers, the HTTP
        # client) is imported once, not by several threads at the same time
        answers = [] if self._called else [ask(0)]
        self._called = True
        rest = range(len(answers), count)
        if len(rest) == 1:
            answers.append(ask(rest[0]))
        elif rest:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=len(rest), thread_name_prefix="tracec-proposal") as threads:
                answers.extend(threads.map(ask, rest))
        changes = [changed for changed, _ in answers if changed]
        if changes:
            return changes
        problems = "; ".join(dict.fromkeys(p for _, ps in answers for p in ps))
        self.remember(f"step {index}: no usable suggestion ({problems[:200]})")
        return "no usable suggestion: " + problems[:300]

    def _ask(self, index: int, n: int, variables, examples, memory, current, schema) -> tuple[dict, list[str]]:
        """Proposal `n` of a step: a call, then retries told why the previous reply was unusable."""
        from tracec.llm.common import BudgetExceeded
        from tracec.optimize.prompt import build_messages
        from tracec.optimize.reply import SURROGATES, parse_reply

        problems: list[str] = []
        for attempt in range(1, ATTEMPTS + 1):
            messages = build_messages(variables, examples, root=self.root, memory=memory, problems=problems)
            # a lone surrogate in the task's data cannot be sent or cached as UTF-8: send U+FFFD instead
            messages = [{**m, "content": SURROGATES.sub("\ufffd", m["content"])} if isinstance(m.get("content"), str)
                        else m for m in messages]
            warm = n > 0 or attempt > 1
            sampling = {} if not warm else {"temperature": max(self.client.temperature, RETRY_TEMPERATURE),
                                            "seed": self.config.seed + 101 * n + attempt}
            try:
                self.reserve_llm_call()
            except BudgetExceeded:   # a retry past the budget: the first calls were reserved in propose()
                return {}, problems + ["the LLM call budget is spent"]
            reply = self.client.complete(messages, schema=schema, **sampling)
            with self._llm_lock:
                self.state.llm_calls -= reply.cached
                self.state.cost_usd += 0.0 if reply.cached else reply.cost_usd
            proposal = parse_reply(reply.text, variables)
            changed = {k: v for k, v in proposal.values.items() if v != current.get(k)}
            problems = list(proposal.problems)
            if not changed and not problems:
                same = ", ".join(f"{self.names[k]} = {self.preview(v, 60)}" for k, v in proposal.values.items())
                problems = [f"the suggestion repeats the current values ({same}); propose different values"]
            self.store.save_call(index, attempt, messages, reply, sorted(changed), problems, proposal=n)
            if changed:
                return changed, []
        return {}, problems

    # -- budgets ----------------------------------------------------------------------------------
    def spend_metric_calls(self, count: int, purpose: str) -> None:
        """Count `count` example evaluations, or stop before them if they would pass --max-metric-calls."""
        from tracec.llm.common import BudgetExceeded

        limit = self.config.max_metric_calls
        if limit is not None and self.state.metric_calls + count > limit:
            raise BudgetExceeded(f"max_metric_calls {limit}: {self.state.metric_calls} spent, {purpose} needs {count}")
        self.state.metric_calls += count

    def mark(self) -> None:
        """A point of the report's curves: the best score so far against what has been spent."""
        state = self.state
        state.history.append([state.step, state.metric_calls, state.llm_calls, round(state.cost_usd, 6), state.best])

    def spent(self) -> str:
        """What the run has used so far, against each limit set: "metric calls 34/40, LLM calls 5"."""
        def against(count: int, limit: int | None) -> str:
            return f"{count}/{limit}" if limit is not None else str(count)

        cost = "" if self.config.budget_usd is None and not self.state.cost_usd else \
            f", ${self.state.cost_usd:.4f}" + ("" if self.config.budget_usd is None else f"/${self.config.budget_usd:g}")
        return (f"metric calls {against(self.state.metric_calls, self.config.max_metric_calls)}, "
                f"LLM calls {against(self.state.llm_calls, self.config.max_llm_calls)}{cost}")

    def reserve_llm_call(self) -> None:
        """Count one model call, or stop before it if it would pass --max-llm-calls (a reply that comes
        from the cache gives its count back). Safe from the parallel proposal threads."""
        from tracec.llm.common import BudgetExceeded

        limit = self.config.max_llm_calls
        with self._llm_lock:
            if limit is not None and self.state.llm_calls >= limit:
                raise BudgetExceeded(f"max_llm_calls {limit}: {self.state.llm_calls} spent")
            self.state.llm_calls += 1

    # -- whole run --------------------------------------------------------------------------------
    def finished(self) -> bool:
        """The evaluator's best possible score is reached (e.g. every selected test passes)."""
        return self.evaluator.stop_at is not None and self.state.best >= self.evaluator.stop_at

    def run(self, progress) -> Result:
        state = self.state
        if state.baseline is None:
            limit = self.config.max_metric_calls
            if limit is not None and limit < len(self.evaluator.val) * self.repeats:
                from tracec.errors import UsageError

                raise UsageError(f"max_metric_calls {limit} is less than one validation of the baseline "
                                 f"({len(self.evaluator.val) * self.repeats} example evaluations); raise it")
            try:
                scores, spread = self.search.scores({}, list(self.evaluator.val), "scoring the baseline")
            except TrialError as exc:
                from tracec.optimize.task import TaskError

                raise TaskError(f"{self.evaluator.subject} cannot be scored with the current code: {exc}") from None
            baseline = self.search.pool.add(values={}, val_scores=scores, spread=spread)
            state.baseline = state.best = baseline.mean
            self.mark()
            self.store.save()
        result = Result(state.baseline, state.best)
        from tracec.llm.common import BudgetExceeded, LLMError

        try:
            while state.step < self.config.steps and not self.finished():
                index = state.step + 1
                message = self.search.step(index)
                state.step = index
                state.log.append(f"step {index}: {message}")
                self.mark()
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
        """One patch per changed file. A change already pending is reused; a pending patch this run wrote
        before it was resumed is replaced, so one base never has two pending patches from one run."""
        from tracec.patches.apply import pending_changes
        from tracec.patches.patch_file import sha256_text, write_patch

        pending = pending_changes(self.root)
        mine = self.store.patch_summary
        patches = []
        for file, keys in self.sources.by_file(result.changed).items():
            new = self.sources.patched_source(file, keys, {k: result.changed[k][1] for k in keys})
            summary = f"{mine} score {result.baseline:.3f} -> {result.best:.3f} on {self.evaluator.label}"
            same = pending.get((file, sha256_text(self.originals[file]), sha256_text(new)))
            if same is None:
                for earlier in pending.values():
                    if earlier.target == file and earlier.summary.startswith(mine):
                        earlier.path.unlink(missing_ok=True)
            patches.append(same or write_patch(self.root, file, self.originals[file], new, keys=keys,
                                               summary=summary))
        return patches


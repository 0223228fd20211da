"""`tracec optimize TASK.py` / `tracec optimize --pytest TESTS`: record a minibatch, send its feedback
backward, ask the LLM for better values, try them, keep what scores better on `val`, and write patches at
the end. One loop for both: they differ only in the evaluator (tracec/task_evaluator.py runs a task file
in this process and describes the interface; tracec/pytest_task.py runs tests in a subprocess).

Exit statuses: 0 finished (improved or not, or stopped by --budget-usd), 1 stopped by a model/server
error (what improved so far is still written), 2 bad task file/tests/settings/usage, 130 interrupted."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from . import runtime
from .candidates import TrialError
from .config import OptimizeConfig, resolve
from .errors import UsageError
from .runstate import RunState, RunStore
from .task import TaskError, load_task
from .task_evaluator import UNSEEN, TaskEvaluator, definition_source

ATTEMPTS = 3      # LLM calls per step: the first, then retries told why the previous reply was unusable
RETRY_TEMPERATURE = 0.7   # a retry at temperature 0 tends to repeat itself; seeded, so still reproducible
MEMORY = 5        # past steps shown to the optimizer

__all__ = ["Optimizer", "Result", "definition_source", "optimize_command"]


@dataclass
class Result:
    baseline: float
    best: float
    changed: dict = field(default_factory=dict)   # key -> (old, new)
    patches: list = field(default_factory=list)   # PatchFile
    stopped: str = ""                             # why the run ended early, if it did


class Optimizer:
    def __init__(self, evaluator, root: Path, config: OptimizeConfig, store: RunStore, client) -> None:
        from .prompt import display_names

        self.evaluator, self.root, self.config, self.store, self.client = evaluator, root, config, store, client
        self.targets = evaluator.targets
        self.names = display_names(self.targets)   # key -> the name the user and the model see
        self.originals = evaluator.originals
        self.live = evaluator.live                 # patch writing: the same splice the trials use
        self.initial = evaluator.initial
        self.state: RunState = store.state

    def current(self) -> dict[str, object]:
        return {**self.initial, **self.state.best_values}

    # -- one step ---------------------------------------------------------------------------------
    def step(self, index: int) -> str:
        from .prompt import Example, Variable, build_messages
        from .reply import SURROGATES, parse_reply, reply_schema

        rng = random.Random(self.config.seed * 1_000_003 + index)
        batch = self.evaluator.batch(rng, self.config.batch_size, self.state.best_values)
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
        examples = [Example(o.graph, _preview(o.example), _preview(o.output) if o.error is None else
                            f"{type(o.error).__name__}: {o.error}", o.score, o.text) for o in outcomes]
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
            reply = self.client.complete(messages, schema=schema, **retry)
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

    # -- whole run --------------------------------------------------------------------------------
    def finished(self) -> bool:
        """The evaluator's best possible score is reached (e.g. every selected test passes)."""
        return self.evaluator.stop_at is not None and self.state.best >= self.evaluator.stop_at

    def run(self, progress) -> Result:
        state = self.state
        if state.baseline is None:
            state.baseline = state.best = self.evaluator.baseline()
            self.store.save()
        result = Result(state.baseline, state.best)
        from .llm import BudgetExceeded, LLMError

        try:
            while state.step < self.config.steps and not self.finished():
                index = state.step + 1
                message = self.step(index)
                state.step = index
                state.log.append(f"step {index}: {message}")
                self.store.save()
                progress(index, message, state.best)
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
        from .apply import pending_changes
        from .patchfile import sha256_text, write_patch

        pending = pending_changes(self.root)
        patches = []
        for file, keys in self.live.by_file(result.changed).items():
            new = self.live.patched_source(file, keys, {k: result.changed[k][1] for k in keys})
            summary = (f"tracec optimize run {self.store.run_id}: score {result.baseline:.3f} -> "
                       f"{result.best:.3f} on {self.evaluator.label}")
            same = pending.get((file, sha256_text(self.originals[file]), sha256_text(new)))
            patches.append(same or write_patch(self.root, file, self.originals[file], new, keys=keys,
                                               summary=summary))
        return patches


def _preview(value, limit: int = 200) -> str:
    return runtime.preview(value, limit)


def optimize_command(args) -> int:
    from .project import find_project_root
    from .report import print_summary, progress_reporter

    problem = ("give a task file (TASK.py) or --pytest TESTS, not both" if args.task and args.pytest else
               "give a task file (TASK.py) or --pytest TESTS" if not args.task and not args.pytest else
               "-k selects tests: use it with --pytest" if args.keyword is not None and not args.pytest else None)
    if problem:
        raise UsageError(problem)
    task_path = Path(args.task or args.pytest[0].split("::", 1)[0])
    start = task_path.resolve() if task_path.is_dir() else task_path.resolve().parent
    root = find_project_root(start if task_path.exists() else None)
    flags = {"model": args.model, "api_base": args.api_base, "steps": args.steps, "batch_size": args.batch_size,
             "seed": args.seed, "budget_usd": args.budget_usd, "max_tokens": args.max_tokens,
             "workers": args.workers, "cache": False if args.no_cache else None,
             "trial_timeout": args.trial_timeout}
    try:
        store = RunStore.open(root, args.resume) if args.resume is not None else None
        config = resolve(root, flags) if store is None else store.config_with(flags)
        if args.pytest:
            from .pytest_task import PytestEvaluator

            evaluator = PytestEvaluator(root, args.pytest, args.keyword, config.trial_timeout)
        else:
            evaluator = TaskEvaluator(load_task(task_path, root), root, config.workers, config.trial_timeout)
        store = store or RunStore.create(root, config, evaluator.resume_args)
    except ValueError as exc:   # a run to resume that cannot be read (ConfigError, TaskError are UsageErrors)
        raise UsageError(str(exc)) from None
    from .llm import LLMClient, LLMError

    try:
        client = LLMClient(config.model, api_base=config.api_base, max_tokens=config.max_tokens, seed=config.seed,
                           cache_dir=root / ".tracec" / "cache" / "llm" if config.cache else None,
                           budget_usd=config.budget_usd)
    except LLMError as exc:   # no such model, no key: nothing can start
        raise UsageError(str(exc)) from None
    from rich.console import Console

    # soft_wrap: log lines stay whole in CI logs and pipes; markup=False: a model name, a server's error
    # text or a file name holding "[/bold]" is printed as it is, not parsed (and refused) as rich markup
    console = Console(stderr=True, soft_wrap=True, markup=False)
    try:
        optimizer = Optimizer(evaluator, root, config, store, client)
        store.check_files(optimizer.originals)
    except ValueError as exc:   # a source file changed since the run began
        raise UsageError(str(exc)) from None
    console.print(f"tracec optimize: run {store.run_id}, model {config.model} ({config.model_source}), "
                  f"{len(optimizer.targets)} trainable parameter(s), {config.steps} step(s)")
    try:
        with progress_reporter(console, config.steps, store.state.step) as progress:
            result = optimizer.run(progress)
    except TaskError:
        evaluator.close()
        raise
    print_summary(result, optimizer, client, root)
    if result.stopped == "interrupted":
        return 130
    return 1 if result.stopped.startswith("model error") else 0

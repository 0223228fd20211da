"""`tracec optimize TASK.py`: record a minibatch, send its feedback backward, ask the LLM for better
values, try them in this process, keep what scores better on `val`, and write patches at the end.

Exit statuses: 0 finished (improved or not, or stopped by --budget-usd), 1 stopped by a model/server
error (what improved so far is still written), 2 bad task file/settings/usage, 130 interrupted."""

from __future__ import annotations

import _thread
import ast
import concurrent.futures
import random
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import runtime
from .candidates import LiveParams, Target, TrialError, find_targets
from .patch import PatchError
from .config import ConfigError, OptimizeConfig, resolve
from .runstate import RunState, RunStore
from .task import Task, TaskError, load_task, run_example

ATTEMPTS = 3      # LLM calls per step: the first, then retries told why the previous reply was unusable
RETRY_TEMPERATURE = 0.7   # a retry at temperature 0 tends to repeat itself; seeded, so still reproducible
MEMORY = 5        # past steps shown to the optimizer


@dataclass
class Result:
    baseline: float
    best: float
    changed: dict = field(default_factory=dict)   # key -> (old, new)
    patches: list = field(default_factory=list)   # PatchFile
    stopped: str = ""                             # why the run ended early, if it did


def definition_source(source: str, line: int) -> str | None:
    """Source of the function defined at `line` (the `def` line), dedented, without decorators."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == line:
            return textwrap.dedent(ast.get_source_segment(source, node, padded=True))
    return None


class Optimizer:
    def __init__(self, task: Task, root: Path, config: OptimizeConfig, store: RunStore, client) -> None:
        from .prompt import display_names

        self.task, self.root, self.config, self.store, self.client = task, root, config, store, client
        hooks = [h for h in runtime.instrumented_modules() if (root / h.table.file).is_file()]
        self.targets: dict[str, Target] = _selected(find_targets(hooks), task)
        self.names = display_names(self.targets)   # key -> the name the user and the model see
        files = {t.file for t in self.targets.values()}
        self.originals = {f: (root / f).read_bytes().decode("utf-8") for f in files}   # keeps CRLF
        self.live = LiveParams(root, self.targets, self.originals)
        self.initial = self._initial_values(hooks)
        self.state: RunState = store.state

    def _initial_values(self, hooks) -> dict[str, object]:
        values: dict[str, object] = {}
        for h in hooks:
            for site_id, site in enumerate(h.table.params):
                if site.global_name:   # a module global or a class attribute: its value is known now
                    values.setdefault(site.key, h.param_value(site_id))
        for key, target in self.targets.items():
            if target.kind == "code":
                code = definition_source(self.originals[target.file], target.line)
                if code is not None:
                    values[key] = code
        return values

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self) -> float:
        examples = self.task.val
        if self.config.workers > 1:
            with concurrent.futures.ThreadPoolExecutor(self.config.workers) as pool:
                outcomes = list(pool.map(lambda ex: run_example(self.task, ex, recorded=False), examples))
        else:
            outcomes = [run_example(self.task, ex, recorded=False) for ex in examples]
        return sum(o.score for o in outcomes) / len(outcomes)

    def current(self) -> dict[str, object]:
        return {**self.initial, **self.state.best_values}

    # -- one step ---------------------------------------------------------------------------------
    def step(self, index: int) -> str:
        from .prompt import Example, Variable, build_messages
        from .reply import parse_reply, reply_schema

        rng = random.Random(self.config.seed * 1_000_003 + index)
        batch = rng.sample(list(self.task.train), min(self.config.batch_size, len(self.task.train)))
        outcomes = [run_example(self.task, ex, recorded=True) for ex in batch]
        if all(o.score >= 1.0 for o in outcomes) and self.state.best >= 1.0:
            return "every example scores 1.0: nothing to improve"
        reached: set[str] = set()
        for o in outcomes:
            reached.update(k for k in o.graph.backward() if k in self.targets)
        for key in reached - self.initial.keys():   # a site inside a function: its value once it has run
            value = _site_value(key)
            if value is not _UNSEEN:
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
            with Deadline(self.config.trial_timeout) as deadline:
                try:
                    self.live.install(candidate)
                    score = self.evaluate()
                    deadline.finish()
                except KeyboardInterrupt:
                    if not deadline.finish():   # the user's Ctrl-C, not the deadline
                        raise
                    raise TrialError(f"scoring it took longer than {self.config.trial_timeout:g} s "
                                     "(an endless loop?); it was stopped") from None
        except TrialError as exc:
            self.live.install(self.state.best_values)
            self.state.memory.append(f"step {index}: {label} could not be tried: {exc}")
            return f"candidate rejected: {exc}"
        kept = score > self.state.best
        self.state.trials.append({"step": index, "changed": sorted(changed), "score": score, "kept": kept})
        self.state.memory.append(f"step {index}: tried {label}: score {score:.3f} "
                                 f"({'kept' if kept else 'worse or equal, rolled back'}; best was "
                                 f"{self.state.best:.3f})")
        if kept:
            self.state.best_values, self.state.best = candidate, score
        else:
            self.live.install(self.state.best_values)
        return f"tried {label}: {score:.3f} ({'kept' if kept else 'rolled back'})"

    # -- whole run --------------------------------------------------------------------------------
    def run(self, progress) -> Result:
        state = self.state
        if state.baseline is None:
            state.baseline = state.best = self.evaluate()
            self.store.save()
        else:
            self.live.install(state.best_values)
        result = Result(state.baseline, state.best)
        from .llm import BudgetExceeded, LLMError

        try:
            while state.step < self.config.steps:
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
            self.live.restore()
            self.store.save()
        result.best = state.best
        result.changed = {k: (self.initial.get(k), v) for k, v in state.best_values.items()
                          if v != self.initial.get(k)}
        if state.best > state.baseline and result.changed:
            result.patches = self.write_patches(result)
        return result

    def write_patches(self, result: Result) -> list:
        from .apply import pending_patches
        from .patchfile import read_patch, sha256_text, write_patch

        pending = {}   # (target, before, after) -> a patch already waiting with exactly this change
        for path in pending_patches(self.root):
            try:
                known = read_patch(path)
            except PatchError:
                continue
            pending[(known.target, known.base_sha256, known.result_sha256)] = known
        patches = []
        for file, keys in self.live.by_file(result.changed).items():
            new = self.live.patched_source(file, keys, {k: result.changed[k][1] for k in keys})
            summary = (f"tracec optimize run {self.store.run_id}: score {result.baseline:.3f} -> "
                       f"{result.best:.3f} on {'val' if self.task.val is not self.task.train else 'train'} "
                       f"({len(self.task.val)} examples)")
            same = pending.get((file, sha256_text(self.originals[file]), sha256_text(new)))
            patches.append(same or write_patch(self.root, file, self.originals[file], new, keys=keys,
                                               summary=summary))
        return patches


def _selected(targets: dict[str, Target], task: Task) -> dict[str, Target]:
    """The task's `params` (user names or full keys) narrow what the optimizer may change."""
    if task.params is None:
        return targets
    from .prompt import display_names

    names = display_names(targets)
    by_name = {**{name: key for key, name in names.items()}, **{key: key for key in targets}}
    unknown = [p for p in task.params if p not in by_name]
    if unknown:
        raise TaskError(f"{task.path}: params names {unknown[0]!r}, which is no tracec.param or @trainable "
                        f"function of the project (known: {', '.join(sorted(names.values()))})")
    return {by_name[p]: targets[by_name[p]] for p in task.params}


_UNSEEN = object()


class Deadline:
    """Interrupts the main thread (as Ctrl-C would) when a candidate runs too long: a proposed function
    with an endless loop must not hang the optimizer. Python code sees the interrupt between bytecodes; a
    candidate stuck inside one C call is only stopped when that call returns."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._done = self._fired = False
        self._timer = threading.Timer(seconds, self._fire)

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self._fired = True
                _thread.interrupt_main()

    def finish(self) -> bool:
        """Stop the clock; True if it had already interrupted the main thread."""
        with self._lock:
            self._done = True
            return self._fired

    def __enter__(self) -> "Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()
        self._timer.cancel()


def _site_value(key: str):
    """What a `tracec.param` site with this key last returned (sites inside functions bind no global)."""
    for hooks in runtime.instrumented_modules():
        for site_id, site in enumerate(hooks.table.params):
            if site.key == key and site_id in hooks.param_values:
                return hooks.param_values[site_id]
    return _UNSEEN


def _preview(value, limit: int = 200) -> str:
    return runtime.preview(value, limit)


def optimize_command(args) -> int:
    from .importhook import find_project_root
    from .report import print_summary, progress_reporter

    task_path = Path(args.task)
    root = find_project_root(task_path.resolve().parent if task_path.exists() else None)
    flags = {"model": args.model, "api_base": args.api_base, "steps": args.steps, "batch_size": args.batch_size,
             "seed": args.seed, "budget_usd": args.budget_usd, "max_tokens": args.max_tokens,
             "workers": args.workers, "cache": False if args.no_cache else None,
             "trial_timeout": args.trial_timeout}
    try:
        store = RunStore.open(root, args.resume) if args.resume else None
        config = resolve(root, flags) if store is None else store.config_with(flags)
        task = load_task(task_path, root)
        store = store or RunStore.create(root, config, task_path)
    except (ConfigError, TaskError, ValueError) as exc:
        print(f"tracec optimize: error: {exc}", file=sys.stderr)
        return 2
    from .llm import LLMClient, LLMError

    try:
        client = LLMClient(config.model, api_base=config.api_base, max_tokens=config.max_tokens, seed=config.seed,
                           cache_dir=root / ".tracec" / "cache" / "llm" if config.cache else None,
                           budget_usd=config.budget_usd)
    except LLMError as exc:
        print(f"tracec optimize: error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)   # log lines stay whole in CI logs and pipes
    try:
        optimizer = Optimizer(task, root, config, store, client)
        store.check_files(optimizer.originals)
    except (TaskError, ValueError) as exc:
        print(f"tracec optimize: error: {exc}", file=sys.stderr)
        return 2
    console.print(f"tracec optimize: run {store.run_id}, model {config.model} ({config.model_source}), "
                  f"{len(optimizer.targets)} trainable parameter(s), {config.steps} step(s)")
    try:
        with progress_reporter(console, config.steps, store.state.step) as progress:
            result = optimizer.run(progress)
    except TaskError as exc:
        optimizer.live.restore()
        print(f"tracec optimize: error: {exc}", file=sys.stderr)
        return 2
    print_summary(result, optimizer, client, root)
    if result.stopped == "interrupted":
        return 130
    return 1 if result.stopped.startswith("model error") else 0

"""The evaluator of `tracec optimize TASK.py` (the interface: evaluator.py): the task file's examples run in
this process, candidates are installed live (candidates.py) and interrupted by a deadline."""

from __future__ import annotations

import _thread
import ast
import concurrent.futures
import os
import signal
import textwrap
import threading
from pathlib import Path

from tracec.optimize.candidates import (
    LiveParams,
    Target,
    TrialError,
    bound_values,
    find_targets,
    project_hooks,
    read_originals,
    site_values,
)
from tracec.optimize.evaluator import UNSEEN
from tracec.optimize.task import Task, TaskError, run_example


def definition_source(source: str, line: int) -> str | None:
    """Source of the function defined at `line` (the `def` line), dedented, without decorators."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno == line:
            return textwrap.dedent(ast.get_source_segment(source, node, padded=True))
    return None


def code_values(targets: dict[str, Target], originals: dict[str, str]) -> dict[str, str]:
    """The current source of every trainable function, read from its original file."""
    values = {}
    for key, target in targets.items():
        if target.kind == "code":
            code = definition_source(originals[target.file], target.line)
            if code is not None:
                values[key] = code
    return values


class TaskEvaluator:
    stop_at = None   # a task's scores need not top out at 1.0: run every step

    def __init__(self, task: Task, root: Path, workers: int, trial_timeout: float) -> None:
        self.task, self.root, self.workers, self.trial_timeout = task, root, workers, trial_timeout
        hooks = project_hooks(root)
        self.targets: dict[str, Target] = selected(find_targets(hooks), task)
        self.originals = read_originals(root, {t.file for t in self.targets.values()})
        self.live = LiveParams(root, self.targets, self.originals)
        self.initial: dict[str, object] = bound_values(hooks)   # globals/class attributes: known now
        self.initial.update(code_values(self.targets, self.originals))
        self.train, self.val = task.train, task.val
        self.label = f"{'val' if task.val is not task.train else 'train'} ({len(task.val)} examples)"
        self.resume_args = os.path.relpath(task.path)
        self._installed: dict = {}

    def _use(self, values: dict) -> None:
        if values != self._installed:
            self._installed = {}
            self.live.install(values)
            self._installed = dict(values)

    def _evaluate(self) -> float:
        examples = self.val
        if self.workers > 1:
            with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
                outcomes = list(pool.map(lambda ex: run_example(self.task, ex, recorded=False), examples))
        else:
            outcomes = [run_example(self.task, ex, recorded=False) for ex in examples]
        return sum(o.score for o in outcomes) / len(outcomes)

    def baseline(self) -> float:
        self._use({})
        return self._evaluate()

    def batch(self, rng, size: int, values: dict) -> list:
        return rng.sample(list(self.train), min(size, len(self.train)))

    def record(self, batch, values: dict) -> list:
        self._use(values)
        return [run_example(self.task, ex, recorded=True) for ex in batch]

    def score(self, values: dict) -> float:
        with Deadline(self.trial_timeout) as deadline:
            try:
                self._use(values)
                score = self._evaluate()
                deadline.finish()
                return score
            except KeyboardInterrupt:
                if not deadline.finish():   # the user's Ctrl-C, not the deadline
                    raise
                raise TrialError(f"scoring it took longer than {self.trial_timeout:g} s "
                                 "(an endless loop?); it was stopped") from None

    def site_value(self, key: str):
        """What a `tracec.param` site with this key last returned (sites inside functions bind no global)."""
        return site_values().get(key, UNSEEN)

    def close(self) -> None:
        self._installed = {}
        self.live.restore()


def selected(targets: dict[str, Target], task: Task) -> dict[str, Target]:
    """The task's `params` (user names or full keys) narrow what the optimizer may change."""
    if task.params is None:
        return targets
    from tracec.optimize.prompt import display_names

    names = display_names(targets)
    by_name = {**{name: key for key, name in names.items()}, **{key: key for key in targets}}
    unknown = [p for p in task.params if p not in by_name]
    if unknown:
        raise TaskError(f"{task.path}: params names {unknown[0]!r}, which is no tracec.param or @trainable "
                        f"function of the project (known: {', '.join(sorted(names.values()))})")
    return {by_name[p]: targets[by_name[p]] for p in task.params}


class Deadline:
    """Interrupts the main thread (as Ctrl-C would) when a candidate runs too long: a proposed function
    with an endless loop must not hang the optimizer. Python code sees the interrupt between bytecodes; a
    candidate stuck inside one C call is only stopped when that call returns.

    `interrupt_main` does nothing while SIGINT has no Python handler, and a process started in the
    background of a script (`cmd &`, some CI runners) starts with SIGINT ignored: inside the deadline
    SIGINT then gets a handler that raises only for the deadline and keeps ignoring the real signal."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._done = self._fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._replaced, self._previous = False, None

    def _on_sigint(self, signum, frame) -> None:
        if self._fired or self._previous is signal.SIG_DFL:
            raise KeyboardInterrupt

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
        if threading.current_thread() is threading.main_thread() and not callable(signal.getsignal(signal.SIGINT)):
            self._replaced, self._previous = True, signal.signal(signal.SIGINT, self._on_sigint)
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()
        self._timer.cancel()
        if self._replaced:   # None: a handler not set from Python, which signal.signal cannot put back
            signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)

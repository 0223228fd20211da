"""A task file: plain Python defining `train`, optional `val`, `run(example)` and
`feedback(example, output) -> (score, text)`, and optionally `params` (the names of the only parameters
the optimizer may change), `repeats` (runs per example of a stochastic task, scored by their mean),
`test` (held-out examples the optimizer never sees; benchmarks score the result on them) and `objectives`
(several named scores with weights, see `score_of`). Loaded with the project's modules instrumented."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tracec import runtime
from tracec.errors import UsageError

TOKENS = "tokens"   # the objective tracec measures itself: tokens of the tracec.chat calls one example made


class TaskError(UsageError):
    """The task file is unusable; the message names the file and what to define."""


@dataclass(frozen=True)
class Task:
    path: Path
    train: tuple
    val: tuple          # == train when the task defines no `val`
    run: Callable[[Any], Any]
    feedback: Callable[[Any, Any], tuple]
    params: tuple[str, ...] | None = None   # optional: the only parameters to change (names or keys)
    repeats: int = 1                        # runs per example; a stochastic task's score is their mean
    test: tuple = ()                        # held out: never seen by the optimizer
    objectives: dict[str, float] | None = None   # name -> weight; feedback then returns named scores

    @property
    def counts_tokens(self) -> bool:
        return self.objectives is not None and TOKENS in self.objectives

    def split(self, name: str) -> tuple:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


@dataclass(frozen=True)
class Outcome:
    """One example run, as the optimizer's prompt shows it: previews of the example and of what run()
    returned (or "Type: message" of what it raised), the feedback, and the recording (None if not recorded)."""
    example: str
    output: str
    score: float
    text: str
    graph: runtime.Graph | None


def load_task(path: Path, root: Path, instrumented: bool = True) -> Task:
    """Import the task file as `__tracec_task__`, with the import hook for `root` installed if `instrumented`."""
    from tracec.importhook import install

    if not path.is_file():
        raise TaskError(f"{path}: no such task file")
    if instrumented:
        install(root)
    folder = str(path.resolve().parent)
    if folder not in sys.path:   # like `python TASK.py`: the task's folder is importable
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("__tracec_task__", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["__tracec_task__"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TaskError(f"{path}: importing the task failed: {type(exc).__name__}: {exc}") from exc
    train, val = getattr(module, "train", None), getattr(module, "val", None)
    if not isinstance(train, (list, tuple)) or not train:
        raise TaskError(f"{path}: define `train` as a non-empty list of examples")
    if val is not None and (not isinstance(val, (list, tuple)) or not val):
        raise TaskError(f"{path}: `val` must be a non-empty list of examples (or leave it out)")
    for name in ("run", "feedback"):
        if not callable(getattr(module, name, None)):
            signature = "run(example)" if name == "run" else "feedback(example, output) -> (score, text)"
            raise TaskError(f"{path}: define `{signature}`")
    params = getattr(module, "params", None)
    if params is not None and (not isinstance(params, (list, tuple)) or not params
                               or not all(isinstance(p, str) for p in params)):
        raise TaskError(f"{path}: `params` must be a non-empty list of parameter names (or leave it out)")
    repeats = getattr(module, "repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise TaskError(f"{path}: `repeats` must be a whole number of runs per example, at least 1")
    test = getattr(module, "test", ())
    if not isinstance(test, (list, tuple)):
        raise TaskError(f"{path}: `test` must be a list of examples (or leave it out)")
    return Task(path, tuple(train), tuple(val if val is not None else train), module.run, module.feedback,
                tuple(params) if params is not None else None, repeats, tuple(test), _objectives(path, module))


def _objectives(path: Path, module) -> dict[str, float] | None:
    objectives = getattr(module, "objectives", None)
    if objectives is None:
        return None
    if (not isinstance(objectives, dict) or not objectives or not all(isinstance(k, str) for k in objectives)
            or not all(_is_number(w) for w in objectives.values())):
        raise TaskError(f"{path}: `objectives` must map each named score feedback returns to its weight, e.g. "
                        f"{{'correct': 1.0, '{TOKENS}': -0.001}} (or leave it out)")
    if set(objectives) == {TOKENS}:
        raise TaskError(f"{path}: `objectives` names only {TOKENS!r}; add the scores feedback returns")
    return {name: float(weight) for name, weight in objectives.items()}


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def judge(task: Task, example, output, error: BaseException | None, tokens: int = 0) -> tuple[float, str]:
    """Score one run. An exception in run() is feedback (score 0 and its message), not a crash. `tokens`:
    what the run's tracec.chat calls used, the value of the `tokens` objective when the task names one."""
    if error is not None:
        return 0.0, f"run(example) raised {type(error).__name__}: {error}"
    try:
        result = task.feedback(example, output)
    except Exception as exc:
        raise TaskError(f"{task.path}: feedback() raised {type(exc).__name__}: {exc}") from exc
    shape = "({name: score, ...}, text: str)" if task.objectives else "(score: float, text: str)"
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], str):
        raise TaskError(f"{task.path}: feedback() must return {shape}, got {result!r:.80}")
    if task.objectives is None:
        if not _is_number(result[0]):
            raise TaskError(f"{task.path}: feedback() must return {shape}, got {result!r:.80}")
        return float(result[0]), result[1]
    return score_of(task, result[0], tokens, result[1])


def score_of(task: Task, named, tokens: int, text: str) -> tuple[float, str]:
    """Several objectives: the score is the weighted sum of the named scores feedback returned (and of the
    measured tokens); the text tells the model each part, so it sees what a change traded."""
    assert task.objectives is not None
    wanted = sorted(set(task.objectives) - {TOKENS})
    if not isinstance(named, dict) or sorted(named) != wanted or not all(_is_number(v) for v in named.values()):
        raise TaskError(f"{task.path}: feedback() must return ({{name: score}} for exactly the objectives "
                        f"{', '.join(wanted)}, text), got {named!r:.80}")
    parts = {**{name: float(value) for name, value in named.items()}, **({TOKENS: tokens} if task.counts_tokens
                                                                        else {})}
    score = sum(task.objectives[name] * value for name, value in parts.items())
    shown = ", ".join(f"{name} {value:g} (weight {task.objectives[name]:g})" for name, value in parts.items())
    return score, f"{text} [objectives: {shown}]"


def execute(task: Task, example, *, recorded: bool) -> tuple[Any, Exception | None, runtime.Graph | None]:
    """Run one example: (what run() returned, or None; what it raised, or None; the recording when
    `recorded`). An `async def run` is awaited in an event loop of its own."""
    recorder = runtime.start() if recorded else None
    output, error = None, None
    try:
        output = task.run(example)
        if inspect.isawaitable(output):
            output = asyncio.run(_awaited(output))
    except Exception as exc:
        error = exc
        if recorder is not None:
            recorder.observe_exception(exc)
    finally:
        if recorder is not None:
            runtime.stop(recorder)
    return output, error, recorder


async def _awaited(awaitable):
    return await awaitable

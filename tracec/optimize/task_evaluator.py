"""The evaluator of `tracec optimize TASK.py` (the interface: evaluator.py). The task runs only in worker
processes (worker_pool.py): a candidate is the patched source files themselves, made with the patch
writer's splice, and the score it gets is the score its patch gets."""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

from tracec.optimize.candidates import CandidateSources, Target, TrialError, read_originals
from tracec.optimize.evaluator import UNSEEN
from tracec.optimize.task import Outcome, TaskError
from tracec.optimize.worker_pool import WorkerPool
from tracec.runtime import Graph


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


def literal_values(reprs: dict[str, str]) -> dict[str, object]:
    """Values a worker sent as repr(), read back; one that is no literal is left out (it cannot be written)."""
    values = {}
    for key, text in reprs.items():
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return values


class TaskEvaluator:
    stop_at = None   # a task's scores need not top out at 1.0: run every step
    subject = "the task"

    def __init__(self, task: Path, root: Path, workers: int | None, trial_timeout: float, sandbox: bool = False,
                 backend: str = "local", ray_address: str | None = None, ray_excludes: tuple = ()) -> None:
        """`workers`: evaluation slots (None: this machine's cores, or the Ray cluster's CPUs)."""
        if not task.is_file():
            raise TaskError(f"{task}: no such task file")
        self.root = root
        if backend == "ray":
            from tracec.optimize.ray_backend import RayPool

            self.pool: WorkerPool | RayPool = RayPool(root, task, workers, trial_timeout, sandbox,
                                                      address=ray_address, extra_excludes=tuple(ray_excludes))
        else:
            self.pool = WorkerPool(root, task, workers or os.cpu_count() or 1, trial_timeout, sandbox)
        try:
            probe = self.pool.probe()
        except BaseException:
            self.pool.close()
            raise
        self.targets = {t["key"]: Target(**t) for t in probe["targets"]}
        self.originals = read_originals(root, {t.file for t in self.targets.values()})
        self.sources = CandidateSources(root, self.targets, self.originals)
        self.initial: dict[str, object] = literal_values(probe["initial"])
        self.initial.update(code_values(self.targets, self.originals))
        self.train = [("train", i) for i in range(probe["train"])]
        self.val = self.train if probe["val"] is None else [("val", i) for i in range(probe["val"])]
        self.test = [("test", i) for i in range(probe["test"])]
        self.repeats = probe["repeats"]
        self.parallel = self.pool.slots
        self.label = f"{'val' if probe['val'] is not None else 'train'} ({len(self.val)} examples)"
        self.resume_args = os.path.relpath(task)
        self._site_values: dict[str, object] = {}

    def _evaluate(self, values: dict, examples, record: bool) -> list[dict]:
        entries, sites = self.pool.evaluate(self.sources.files(values, self.initial), list(examples), record)
        self._site_values.update(literal_values(sites))
        return entries

    def batch(self, rng, size: int, values: dict) -> list:
        return rng.sample(list(self.train), min(size, len(self.train)))

    def record(self, batch, values: dict) -> list[Outcome]:
        try:
            entries = self._evaluate(values, batch, record=True)
        except TrialError as exc:   # e.g. the best candidate timed out on examples it never scored
            return [Outcome("(not run)", "(not run)", 0.0, f"the run failed: {exc}", Graph()) for _ in batch]
        outcomes = []
        for entry in entries:
            graph = Graph.from_json(entry["graph"])
            for node in graph.outputs:   # each outermost traced call made by run(example)
                graph.feedback(node, entry["text"], entry["score"])
            outcomes.append(Outcome(entry["example"], entry["output"], entry["score"], entry["text"], graph))
        return outcomes

    def scores(self, values: dict, examples) -> list[float]:
        return [e["score"] for e in self._evaluate(values, examples, record=False)]

    def site_value(self, key: str):
        """What a `tracec.param` site with this key last returned (sites inside functions bind no global)."""
        return self._site_values.get(key, UNSEEN)

    def close(self) -> None:
        self.pool.close()

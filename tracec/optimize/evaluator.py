"""What the loop needs from an evaluator: the one interface `TaskEvaluator` (a task file, in worker
processes) and `PytestEvaluator` (pytest tests, in a subprocess) implement, and what a fake in a test
implements."""

from __future__ import annotations

import random
from typing import Any, Protocol, Sequence

from tracec.optimize.candidates import CandidateSources, Target

UNSEEN = object()   # site_value(): the site has not run yet


class Evaluator(Protocol):
    targets: dict[str, Target]       # key -> what can change (tracec.param sites, @trainable functions)
    originals: dict[str, str]        # project-relative file -> its source when the run began
    initial: dict[str, Any]          # key -> the value in the source now
    sources: CandidateSources        # a candidate as files: what the workers run and the patch contains
    train: Sequence[Any]             # examples the minibatches are drawn from
    val: Sequence[Any]               # examples a candidate is scored on
    parallel: int                    # examples it can run at once (the workers); 1 runs one evaluation at a time
    repeats: int                     # runs per example the task asks for (a stochastic task: more than 1)
    label: str                       # what `val` is, for the console ("4 examples", "12 test(s)")
    resume_args: str                 # how `--resume` repeats the evaluator's part of the command line
    stop_at: float | None            # a score nothing can beat (pytest: 1.0); None runs every step

    subject: str                     # what the baseline failing to score means ("the task", "the selected tests")

    def batch(self, rng: random.Random, size: int, values: dict[str, Any]) -> list[Any]:
        """The step's minibatch of train examples."""

    def record(self, batch: list[Any], values: dict[str, Any]) -> list[Any]:
        """[task.Outcome] with graphs, each example run with `values` in effect."""

    def scores(self, values: dict[str, Any], examples: Sequence[Any]) -> list[float]:
        """The score of each of `examples` (train or val, repeats allowed), in order, with `values` in
        effect; TrialError rejects the candidate with a reason."""

    def site_value(self, key: str) -> Any:
        """What a param site inside a function last returned, or UNSEEN."""

    def close(self) -> None:
        """Undo whatever is still installed."""

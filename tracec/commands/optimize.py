"""`tracec optimize TASK.py` / `tracec optimize --pytest TESTS`: settings, the evaluator, the client and the
run state for the loop in tracec.optimize.loop, and its console output.

Exit statuses: 0 finished (improved or not, or stopped by a budget), 1 stopped by a model/server
error (what improved so far is still written), 2 bad task file/tests/settings/usage, 130 interrupted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tracec.errors import UsageError
from tracec.optimize.config import resolve
from tracec.optimize.console import print_summary, progress_reporter
from tracec.optimize.loop import Optimizer
from tracec.optimize.run_state import RunStore
from tracec.optimize.task_evaluator import TaskEvaluator
from tracec.project import find_project_root


def main(args: argparse.Namespace) -> int:
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
             "max_metric_calls": args.max_metric_calls, "max_llm_calls": args.max_llm_calls,
             "workers": args.workers, "cache": False if args.no_cache else None,
             "trial_timeout": args.trial_timeout, "sandbox": args.sandbox, "search": args.search,
             "proposals": args.proposals, "repeats": args.repeats, "backend": args.backend,
             "ray_address": args.ray_address}
    try:
        store = RunStore.open(root, args.resume) if args.resume is not None else None
        config = resolve(root, flags) if store is None else store.config_with(flags)
        if args.pytest and config.backend == "ray":
            raise UsageError("backend ray evaluates a task file; --pytest runs on this machine (--backend local)")
        if args.pytest:
            from tracec.optimize.pytest_evaluator import PytestEvaluator

            evaluator = PytestEvaluator(root, args.pytest, args.keyword, config.trial_timeout,
                                        config.workers or os.cpu_count() or 1)
        else:
            evaluator = TaskEvaluator(task_path, root, config.workers, config.trial_timeout, sandbox=config.sandbox,
                                      backend=config.backend, ray_address=config.ray_address,
                                      ray_excludes=config.ray_excludes)
        store = store or RunStore.create(root, config, evaluator.resume_args)
    except ValueError as exc:   # a run to resume that cannot be read (ConfigError, TaskError are UsageErrors)
        raise UsageError(str(exc)) from None
    from tracec.llm.client import LLMClient, LLMError

    try:
        client = LLMClient(config.model, api_base=config.api_base, max_tokens=config.max_tokens, seed=config.seed,
                           cache_dir=root / ".tracec" / "cache" / "llm" if config.cache else None,
                           # a resumed run has spent part of its budget already
                           budget_usd=None if config.budget_usd is None else
                           max(0.0, config.budget_usd - store.state.cost_usd))
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
    except UsageError:   # a broken task file (TaskError), a budget too small for the baseline
        evaluator.close()
        raise
    print_summary(result, optimizer, client, root)
    if result.stopped == "interrupted":
        return 130
    return 1 if result.stopped.startswith("model error") else 0

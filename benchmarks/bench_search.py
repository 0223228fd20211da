"""tracec's search against GEPA on the same work: the five tasks of benchmarks/search_tasks/, each optimized
by tracec's default search (`pareto`) at the full budget and at half of it, by `--search greedy`, and by
GEPA 0.1.4 through benchmarks/gepa_adapter.py, which evaluates through the same worker processes. Same
model, same `max_metric_calls`, the same seeds. Each result's values are then scored on the task's held-out
`test` split (in fresh workers, `repeats` runs per example for the stochastic task).

Reported per task and method: the test score (mean and spread over seeds), metric calls and LLM calls
spent. Every run starts in a fresh copy of the task folder under benchmarks/.work/, with the LLM cache
off, so no run sees another's replies.

Run: python benchmarks/bench_search.py [--tasks classifier,constant] [--seeds 0,1,2] [--metric-calls 60]
     [--methods pareto,pareto-half,greedy,gepa] [--model litellm/model --api-base URL]
GEPA: pip install gepa==0.1.4 (benchmarks/requirements.txt)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from statistics import fmean, pstdev

from _timing import print_table, write_results

HERE = Path(__file__).resolve().parent
TASKS = HERE / "search_tasks"
WORK = HERE / ".work" / "search"
METHODS = ("pareto", "pareto-half", "greedy", "gepa")


def fresh_copy(task: str, label: str) -> Path:
    root = WORK / label
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(TASKS / task, root, ignore=shutil.ignore_patterns("__pycache__", ".tracec"))
    return root


def client_for(args, root: Path, seed: int):
    from tracec.llm.client import LLMClient

    return LLMClient(args.model, api_base=args.api_base, max_tokens=800, seed=seed, cache_dir=None)


def test_score(root: Path, values: dict, repeats: int) -> float:
    from tracec.optimize.task_evaluator import TaskEvaluator

    evaluator = TaskEvaluator(root / "task.py", root, 2, 60.0)
    try:
        flat = evaluator.scores(values, list(evaluator.test) * repeats)
    except Exception as exc:   # the best candidate cannot run on test: it scores 0 there
        print(f"  test failed: {exc}", file=sys.stderr)
        return 0.0
    finally:
        evaluator.close()
    return fmean(flat)


def run_tracec(args, task: str, method: str, seed: int) -> dict:
    from tracec.optimize.config import resolve
    from tracec.optimize.loop import Optimizer
    from tracec.optimize.run_state import RunStore
    from tracec.optimize.task_evaluator import TaskEvaluator

    root = fresh_copy(task, f"{task}-{method}-{seed}")
    budget = args.metric_calls // 2 if method == "pareto-half" else args.metric_calls
    config = resolve(root, {"model": args.model, "api_base": args.api_base, "seed": seed, "steps": 1000,
                            "max_metric_calls": budget, "search": "greedy" if method == "greedy" else "pareto",
                            "cache": False, "workers": 2}, environ={})
    evaluator = TaskEvaluator(root / "task.py", root, 2, 60.0)
    repeats = config.repeats or evaluator.repeats
    client = client_for(args, root, seed)
    store = RunStore.create(root, config, evaluator.resume_args)
    optimizer = Optimizer(evaluator, root, config, store, client)
    result = optimizer.run(lambda *a: None)
    state = optimizer.state
    return {"values": dict(state.best_values), "metric_calls": state.metric_calls, "llm_calls": state.llm_calls,
            "val": state.best, "stopped": result.stopped, "test": test_score(root, state.best_values, repeats),
            "repeats": repeats}


def run_gepa_method(args, task: str, seed: int) -> dict:
    from gepa_adapter import run_gepa

    from tracec.optimize.config import resolve
    from tracec.optimize.task_evaluator import TaskEvaluator

    root = fresh_copy(task, f"{task}-gepa-{seed}")
    config = resolve(root, {}, environ={})
    evaluator = TaskEvaluator(root / "task.py", root, 2, 60.0)
    try:
        repeats = evaluator.repeats
        found = run_gepa(evaluator, client_for(args, root, seed), max_metric_calls=args.metric_calls, seed=seed,
                         batch_size=config.batch_size, repeats=repeats)
    finally:
        evaluator.close()
    return {**found, "test": test_score(root, found["values"], repeats), "repeats": repeats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(sorted(p.name for p in TASKS.iterdir() if p.is_dir())))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--metric-calls", type=int, default=60)
    parser.add_argument("--model", default=None, help="litellm model (default: the embedded local model)")
    parser.add_argument("--api-base", default=None)
    args = parser.parse_args()
    from tracec.llm.common import LOCAL_MODEL

    args.model = args.model or LOCAL_MODEL
    tasks, methods = args.tasks.split(","), args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    # seed by seed: a run cut short still has every task and method for the seeds it finished
    for seed in seeds:
        for task in tasks:
            for method in methods:
                started = time.monotonic()
                run = run_gepa_method(args, task, seed) if method == "gepa" else run_tracec(args, task, method, seed)
                run.update(task=task, method=method, seed=seed, seconds=round(time.monotonic() - started, 1))
                run["values"] = {k: repr(v)[:200] for k, v in run["values"].items()}
                print(f"{task} {method} seed {seed}: test {run['test']:.3f}, val {run['val']:.3f}, "
                      f"{run['metric_calls']} metric calls, {run['llm_calls']} LLM calls, {run['seconds']} s",
                      file=sys.stderr, flush=True)
                runs.append(run)
                write_results("bench_search", {"model": args.model, "metric_calls": args.metric_calls, "runs": runs})
    rows = []
    for task in tasks:
        for method in methods:
            mine = [r for r in runs if r["task"] == task and r["method"] == method]
            if not mine:
                continue
            tests = [r["test"] for r in mine]
            rows.append([task, method, f"{fmean(tests):.3f} ± {pstdev(tests):.3f}",
                         f"{fmean(r['metric_calls'] for r in mine):.0f}", f"{fmean(r['llm_calls'] for r in mine):.1f}",
                         f"{fmean(r['seconds'] for r in mine):.0f}"])
    print_table(f"search benchmark: {args.model}, max_metric_calls {args.metric_calls} (pareto-half: "
                f"{args.metric_calls // 2}), seeds {args.seeds}",
                ["task", "method", "test (mean ± sd)", "metric calls", "LLM calls", "s/run"], rows)
    print(write_results("bench_search", {"model": args.model, "metric_calls": args.metric_calls, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`--backend ray` against the local workers, on a CPU-heavy task (benchmarks/ray_task/: each example is
about 0.3 s of pure CPU). Measured in one run, medians of repeats:

- one optimizer step's evaluations (record a minibatch of 4 train examples, score one child on the 8 val
  examples; the LLM call is left out, it is the same for every backend) with 1 local worker, the local
  pool of 2, and Ray on a two-node loopback cluster (one CPU per node, tests/ray_cluster.py);
- the overhead per candidate: scoring one trivial example (ray_task with 1 integration step), Ray vs local;
- the cost of shipping the project: RayPool's start (ray.init with the runtime_env upload, actors, probe)
  for the task folder as it is and with 20 MB of extra source files, against the local pool's start.

Run: python benchmarks/bench_ray.py [--repeat 5]   (needs `pip install 'tracec[ray]'`)"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import string
import sys
import time
from pathlib import Path

from _timing import median_once, print_table, write_results

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))   # the loopback cluster the tests use

from ray_cluster import ENV, start_cluster  # noqa: E402

WORK = HERE / ".work" / "ray"


def fresh_task(extra_mb: int = 0) -> Path:
    root = WORK / f"task-{extra_mb}mb"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(HERE / "ray_task", root, ignore=shutil.ignore_patterns("__pycache__", ".tracec"))
    rng = random.Random(0)
    for i in range(extra_mb * 10):   # 100 kB source files the task never imports (a large repository)
        body = "".join(rng.choice(string.ascii_letters) for _ in range(100_000))
        (root / "vendor" / f"m{i}.py").parent.mkdir(exist_ok=True)
        (root / "vendor" / f"m{i}.py").write_text(f"DATA = {body!r}\n")
    return root


def evaluator(root: Path, backend: str, workers: int | None, address: str | None = None):
    from tracec.optimize.task_evaluator import TaskEvaluator

    return TaskEvaluator(root / "task.py", root, workers, 60.0, backend=backend, ray_address=address)


def step(ev) -> None:
    ev.record(list(ev.train[:4]), {})
    ev.scores({"simulate:STEPS": 600_001}, list(ev.val))   # a child: a changed value, so a patched file


def main() -> int:
    os.environ.update(ENV)   # this process is the cluster's client
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cluster = start_cluster()
    rows, results = [], {}
    try:
        root = fresh_task()
        setups = {"local, 1 worker": ("local", 1, None), "local, 2 workers": ("local", 2, None),
                  "ray, 2 nodes x 1 CPU": ("ray", None, cluster.address)}
        for name, (backend, workers, address) in setups.items():
            start = time.perf_counter()
            ev = evaluator(root, backend, workers, address)
            started = time.perf_counter() - start
            try:
                ev.scores({}, list(ev.val[:1]))   # warm: the first fork imports what later ones inherit
                median, samples, _ = median_once(lambda: step(ev), args.repeat)
                tiny, tiny_samples, _ = median_once(lambda: ev.scores({"simulate:STEPS": 1}, list(ev.val[:1])),
                                                    args.repeat)
            finally:
                ev.close()
            results[name] = {"start_s": started, "step_s": median, "step_samples_s": samples,
                             "one_trivial_candidate_s": tiny, "trivial_samples_s": tiny_samples}
        base = results["local, 1 worker"]["step_s"]
        local = results["local, 2 workers"]["one_trivial_candidate_s"]
        for name, r in results.items():
            rows.append([name, f"{r['start_s']:.2f} s", f"{r['step_s']:.2f} s", f"{base / r['step_s']:.2f}x",
                         f"{r['one_trivial_candidate_s'] * 1000:.0f} ms",
                         f"{(r['one_trivial_candidate_s'] - local) * 1000:+.0f} ms"])
        print_table(f"one step's evaluations (record 4 + score a child on 8 val), median of {args.repeat}",
                    ["backend", "start", "step", "speed-up vs 1 worker", "a trivial candidate",
                     "overhead vs local pool"], rows)
        shipping = {}
        for mb in (0, 20):
            root = fresh_task(mb)
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

            def start_ray():
                evaluator(root, "ray", None, cluster.address).close()

            median, samples, _ = median_once(start_ray, max(2, args.repeat // 2))
            shipping[f"{size / 1e6:.1f} MB"] = {"ray_start_s": median, "samples_s": samples}
        print_table("starting the Ray backend (ray.init with the working_dir upload, 2 actors, probe)",
                    ["project size", "start (median)"], [[k, f"{v['ray_start_s']:.2f} s"] for k, v in shipping.items()])
        write_results("bench_ray", {"evaluation": results, "shipping": shipping, "cpu_count": os.cpu_count()})
    finally:
        cluster.stop()
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

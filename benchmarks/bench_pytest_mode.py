"""What `tracec optimize --pytest` pays per evaluation, on the code_repair example (examples/code_repair).

Every evaluation in --pytest mode is a `python -m pytest --tracec` subprocess (so a hanging or crashing
candidate cannot take the optimizer down). Baseline, measured in the same run: the same four tests as a
plain `python -m pytest -q` subprocess. Then: scoring the current code (the plugin, no recording), scoring
a code candidate (installed in the child: splice, black, instrument, compile), and recording a minibatch
(every test recorded, its graph serialised into the report). Median of repeats; ratios against the
baseline. The copy of the example gets its own pyproject.toml, so nothing is written into the checkout.

Run: python benchmarks/bench_pytest_mode.py [--repeat 5]"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import fmean

from _timing import median_once, print_table, write_results

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "code_repair"
FIXED_MEDIAN = '''def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from tracec.optimize.pytest_evaluator import PytestEvaluator

    work = Path(tempfile.mkdtemp(prefix="tracec-bench-pytest-"))
    try:
        project = work / "code_repair"
        shutil.copytree(EXAMPLE, project)
        (project / "pyproject.toml").write_text("[project]\nname = 'code-repair'\n")
        os.chdir(project)   # pytest's rootdir and the project root are the copy
        evaluator = PytestEvaluator(project, ["tests"], None, timeout=120)
        key = next(k for k, t in evaluator.targets.items() if t.kind == "code")

        def plain():
            return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                                  capture_output=True, text=True).returncode

        rows, results = [], {}
        cases = [("plain pytest subprocess (baseline)", plain),
                 ("score current code (--tracec, no recording)", lambda: evaluator.scores({}, evaluator.val)),
                 ("score a code candidate", lambda: evaluator.scores({key: FIXED_MEDIAN}, evaluator.val)),
                 ("record a minibatch of 4", lambda: evaluator.record(
                     evaluator.batch(random.Random(0), 4, {}), {}))]
        baseline = None
        for label, fn in cases:
            median, samples, result = median_once(fn, repeat=args.repeat)
            baseline = baseline or median
            rows.append([label, f"{median * 1000:,.0f} ms", f"{median / baseline:.2f}x"])
            results[label] = {"median_s": median, "samples_s": samples}
        fixed = fmean(evaluator.scores({key: FIXED_MEDIAN}, evaluator.val))
        current = fmean(evaluator.scores({}, evaluator.val))
        print_table(f"tracec optimize --pytest, per evaluation ({len(evaluator.val)} tests, median of "
                    f"{args.repeat})", ["what", "median", "vs plain pytest"], rows)
        print(f"scores: current code {current:.2f}, fixed median {fixed:.2f}")
        evaluator.close()
        write_results("bench_pytest_mode", {"repeat": args.repeat, "cases": results,
                                            "score_current": current, "score_fixed": fixed})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

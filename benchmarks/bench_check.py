"""How fast `tracec check` is, the pre-commit hook's cost: the installed command on a folder of real code.

Baseline, measured in the same run: a subprocess that only parses the same files with `ast.parse` (the
least any checker must do). Corpora: a copy of the standard library without site-packages, made a project
of its own (files that never mention tracec: the cheap pre-filter path), and this repository's code (about
40 files that import tracec: the LibCST rules run on them).
Median of repeats; ratios against the baseline.

Run: python benchmarks/bench_check.py [--repeat 5]"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from _timing import median_once, print_table, write_results

REPO = Path(__file__).resolve().parent.parent
PARSE_ONLY = """
import ast, sys
from pathlib import Path
for root in sys.argv[1:]:
    for path in Path(root).rglob("*.py"):
        try:
            ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            pass
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tracec = shutil.which("tracec") or str(Path(sys.executable).with_name("tracec"))
    work = Path(tempfile.mkdtemp(prefix="tracec-bench-check-"))
    try:
        stdlib = work / "stdlib"
        shutil.copytree(sysconfig.get_paths()["stdlib"], stdlib, symlinks=True,
                        ignore=shutil.ignore_patterns("site-packages", "__pycache__"))
        (stdlib / "pyproject.toml").write_text("[project]\nname = 'stdlib-copy'\n")
        corpora = {"stdlib": (stdlib, ["."]),
                   "tracec repo": (REPO, ["tracec", "runtime", "transforms", "examples", "tests"])}
        rows, results = [], {}
        for name, (cwd, paths) in corpora.items():
            files = sum(1 for p in paths for _ in (cwd / p).rglob("*.py"))
            parse, _, _ = median_once(lambda: subprocess.run([sys.executable, "-c", PARSE_ONLY, *paths],
                                                              capture_output=True, cwd=cwd), repeat=args.repeat)
            check, _, done = median_once(lambda: subprocess.run([tracec, "check", *paths], capture_output=True,
                                                                text=True, cwd=cwd), repeat=args.repeat)
            if done.returncode not in (0, 1):
                raise SystemExit(f"tracec check failed on {name}: {done.stderr.strip()}")
            findings = sum(1 for line in done.stdout.splitlines() if ": TC" in line)
            rows.append([name, files, f"{parse:.2f} s", f"{check:.2f} s", f"{check / parse:.2f}x", findings])
            results[name] = {"files": files, "parse_only_s": parse, "check_s": check, "findings": findings}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(f"tracec check vs parsing the same files (median of {args.repeat})",
                ["corpus", "files", "ast.parse only", "tracec check", "ratio", "findings"], rows)
    write_results("bench_check", {"repeat": args.repeat, "corpora": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the instrumenting pass against a no-op LibCST pass, and of `tracec instrument --all`.

Corpus: the Python files of the standard library's pure-Python `json`, `concurrent` and `wsgiref`
packages (17 files, ~170 KiB), read once into memory. In-process timings per pass over the whole corpus:
  noop            libcst.parse_module + a CSTTransformer that changes nothing + .code (the baseline)
  noop+positions  the same through a MetadataWrapper (no copy, as the pass uses it) resolving
                  PositionProvider: the pass needs line numbers, and this shows what that metadata costs
  instrument      tracec.transforms.instrument_source(..., all_functions=True)
End to end (with --clock cpu: CPU time of the command and its worker processes): `python -m tracec instrument --all json concurrent wsgiref` in a scratch project holding a copy of the
corpus: cold (fresh copy, no cache; default worker count and -j 1) and warm (unchanged tree, cache hit,
nothing parsed), next to the interpreter start-up plus `import tracec.cli` that every run pays.

Run: python benchmarks/bench_instrument.py [--repeat 5] [--cli-repeat 3] [--quick] [--no-cli]"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

import libcst as cst
from _timing import (
    HERE,
    add_clock_argument,
    clock_name,
    fmt_ns,
    measure,
    median_once,
    print_table,
    set_clock,
    time_once,
    write_results,
)
from libcst.metadata import MetadataWrapper, PositionProvider

from tracec.transforms import instrument_source

PACKAGES = ("json", "concurrent", "wsgiref")
PROJECT = os.path.join(HERE, ".work", "instrument-project")


class Unchanged(cst.CSTTransformer):
    """Visits every node and returns it as is: the cheapest full LibCST round trip."""


class UnchangedWithPositions(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)


def corpus() -> list[tuple[str, str, str]]:
    """(path relative to the stdlib, dotted module name, source) for every .py file of PACKAGES."""
    files = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        root = os.path.dirname(spec.origin)
        base = os.path.dirname(root)
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, base)
                    module = rel[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    with open(path, encoding="utf-8") as fh:
                        files.append((rel, module, fh.read()))
    return files


def noop_pass(files) -> None:
    for _, _, source in files:
        tree = cst.parse_module(source)
        tree.visit(Unchanged()).code


def noop_positions_pass(files) -> None:
    for _, _, source in files:
        MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True).visit(UnchangedWithPositions()).code


def instrument_pass(files) -> list:
    return [instrument_source(source, path=rel, module=module, all_functions=True)
            for rel, module, source in files]


# -- the command line, end to end -------------------------------------------------------------------
def fresh_project(files) -> None:
    """A scratch project (pyproject.toml marks its root) holding a copy of the corpus, no cache."""
    shutil.rmtree(PROJECT, ignore_errors=True)
    os.makedirs(PROJECT)
    with open(os.path.join(PROJECT, "pyproject.toml"), "w", encoding="utf-8") as fh:
        fh.write('[project]\nname = "bench-instrument-corpus"\nversion = "0"\n')
    for rel, _, source in files:
        path = os.path.join(PROJECT, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)


def run_cli(*extra: str) -> None:
    cmd = [sys.executable, "-m", "tracec", "instrument", "--all", *extra, *PACKAGES]
    proc = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"`{' '.join(cmd[1:])}` exited {proc.returncode}: {' | '.join(detail)}")


def cli_timings(files, repeat: int) -> dict:
    if importlib.util.find_spec("tracec.cli") is None:
        return {"available": False, "reason": "tracec.cli is not installed yet"}
    startup, startup_samples, _ = median_once(
        lambda: subprocess.run([sys.executable, "-c", "import tracec.cli"], check=True), repeat, children=True)

    def cold(*extra):
        samples = []
        for _ in range(repeat):
            fresh_project(files)     # outside the timed region
            samples.append(time_once(lambda: run_cli(*extra), children=True)[0])
        samples.sort()
        return samples[len(samples) // 2], samples

    try:
        cold_default, cold_samples = cold()
        cold_one, cold_one_samples = cold("-j", "1")
        run_cli()                    # make sure the cache is populated for the current tree
        warm, warm_samples, _ = median_once(run_cli, repeat, children=True)
    except RuntimeError as exc:
        return {"available": False, "reason": str(exc)}
    built = sum(len(names) for _, _, names in os.walk(os.path.join(PROJECT, ".tracec", "build")))
    return {"available": True, "repeat": repeat, "startup_s": startup, "startup_samples_s": startup_samples,
            "cold_s": cold_default, "cold_samples_s": cold_samples,
            "cold_j1_s": cold_one, "cold_j1_samples_s": cold_one_samples,
            "warm_s": warm, "warm_samples_s": warm_samples, "files_in_build_dir": built}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per timing (median is reported)")
    parser.add_argument("--quick", action="store_true", help="3 samples: a smoke run, not a measurement")
    parser.add_argument("--cli-repeat", type=int, default=3,
                        help="samples per command-line timing (each cold sample parses the whole corpus)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end command-line timings")
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    set_clock(args.clock)
    repeat = 3 if args.quick else args.repeat

    files = corpus()
    kib = sum(len(source.encode("utf-8")) for _, _, source in files) / 1024
    results = instrument_pass(files)
    errors = [str(r.error) for r in results if r.error is not None]
    functions = sum(r.functions for r in results)

    passes = {"noop": noop_pass, "noop+positions": noop_positions_pass, "instrument": instrument_pass}
    timings = {name: measure(lambda fn=fn: fn(files), repeat=repeat, number=1) for name, fn in passes.items()}
    base = timings["noop"].median
    rows = [[name, fmt_ns(t.median), f"{len(files) / t.median:,.1f}", f"{kib / t.median:,.0f}",
             f"{t.median / base:.2f}x"] for name, t in timings.items()]
    print_table(f"in-process pass over {len(files)} files, {kib:,.0f} KiB ({', '.join(PACKAGES)}; "
                f"{functions} functions instrumented; {clock_name()} clock, median of {repeat})",
                ["pass", "time", "files/s", "KiB/s", "vs noop"], rows)
    if errors:
        print(f"instrument_source reported {len(errors)} error(s), first: {errors[0]}")

    cli = {"available": False, "reason": "skipped (--no-cli)"} if args.no_cli else cli_timings(files, min(repeat, args.cli_repeat))
    if cli["available"]:
        t_in = timings["instrument"].median
        rows = [["python -c 'import tracec.cli'", fmt_ns(cli["startup_s"]), "-", "-"],
                ["cold (default workers)", fmt_ns(cli["cold_s"]), f"{len(files) / cli['cold_s']:,.1f}",
                 f"{cli['cold_s'] / t_in:.2f}x"],
                ["cold -j 1", fmt_ns(cli["cold_j1_s"]), f"{len(files) / cli['cold_j1_s']:,.1f}",
                 f"{cli['cold_j1_s'] / t_in:.2f}x"],
                ["warm (cache hit)", fmt_ns(cli["warm_s"]), f"{len(files) / cli['warm_s']:,.1f}",
                 f"{cli['warm_s'] / t_in:.2f}x"]]
        print_table(f"`tracec instrument --all {' '.join(PACKAGES)}` end to end ({clock_name()} clock, "
                    f"median of {cli['repeat']})",
                    ["run", "time", "files/s", "vs in-process instrument"], rows)
    else:
        print(f"\ncommand line not measured: {cli['reason']}")

    write_results("bench_instrument", {
        "repeat": repeat, "packages": list(PACKAGES), "files": len(files), "kib": kib,
        "functions_instrumented": functions, "instrument_errors": errors,
        "passes": {name: {**t.to_json(), "files_per_s": len(files) / t.median, "kib_per_s": kib / t.median,
                          "ratio_vs_noop": t.median / base} for name, t in timings.items()},
        "cli": cli})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for the benchmarks: median-of-repeats timing, tables, JSON results.

Every benchmark compares against a baseline measured in the same process and the same run, so the ratios
stay meaningful on a noisy or shared machine even when the absolute numbers drift."""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
CLOCKS = ("wall", "cpu")
_clock = "wall"


def set_clock(name: str) -> None:
    """"wall" (default): elapsed time. "cpu": CPU seconds of this process, or of finished child processes
    for work run in subprocesses; steadier than wall time on a loaded machine that deschedules us, but
    blind to time spent waiting (I/O, worker start-up)."""
    global _clock
    if name not in CLOCKS:
        raise ValueError(f"unknown clock {name!r}: use one of {', '.join(CLOCKS)}")
    _clock = name


def clock_name() -> str:
    return _clock


def now(children: bool = False) -> float:
    if _clock == "wall":
        return time.perf_counter()
    if children:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    return time.process_time()


def add_clock_argument(parser) -> None:
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall: elapsed time (default); cpu: CPU time, steadier on a busy machine")


@dataclass
class Timing:
    """Seconds per call: the median over `repeat` samples, each the mean of `number` back-to-back calls."""
    median: float
    samples: list[float] = field(default_factory=list)
    number: int = 1

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the samples were."""
        if not self.samples or self.median == 0:
            return 0.0
        return (max(self.samples) - min(self.samples)) / self.median

    def to_json(self) -> dict:
        return {"median_s": self.median, "samples_s": self.samples, "calls_per_sample": self.number}


def measure(fn: Callable[[], object], *, repeat: int = 7, min_sample_s: float = 0.05,
            number: int | None = None, setup: Callable[[], object] | None = None) -> Timing:
    """Median seconds per call of `fn()`.

    `number` calls make one sample; when not given it is chosen (like timeit.autorange) so one sample
    lasts at least `min_sample_s`, which keeps timer resolution out of the result. `setup` runs before
    each sample, outside the timed region. The garbage collector stays enabled on purpose: recording
    allocates, and a benchmark that hides collection would flatter it; a collection before each sample
    keeps earlier garbage from being charged to the next measurement."""
    if number is None:
        number = _autorange(fn, min_sample_s, setup)
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        start = now()
        for _ in range(number):
            fn()
        samples.append((now() - start) / number)
    return Timing(statistics.median(samples), samples, number)


def _autorange(fn, min_sample_s, setup) -> int:
    number = 1
    while True:
        if setup is not None:
            setup()
        start = now()
        for _ in range(number):
            fn()
        elapsed = now() - start
        if elapsed >= min_sample_s or number >= 1_000_000:
            return number
        # Aim a little past the target so the next try usually succeeds.
        number = max(number * 2, int(number * min_sample_s * 1.2 / max(elapsed, 1e-9)))


def time_once(fn: Callable[[], object], children: bool = False) -> tuple[float, object]:
    """Seconds and result of a single call (for work too slow or stateful to repeat in a loop).
    `children`: the work happens in subprocesses, so the cpu clock must count theirs."""
    gc.collect()
    start = now(children)
    result = fn()
    return now(children) - start, result


def median_once(fn: Callable[[], object], repeat: int = 5,
                children: bool = False) -> tuple[float, list[float], object]:
    """Median over `repeat` single calls; returns (median, samples, last result)."""
    samples, result = [], None
    for _ in range(repeat):
        elapsed, result = time_once(fn, children)
        samples.append(elapsed)
    return statistics.median(samples), samples, result


def fmt_ns(seconds: float) -> str:
    ns = seconds * 1e9
    if ns < 10_000:
        return f"{ns:,.0f} ns"
    if ns < 10_000_000:
        return f"{ns / 1e3:,.1f} us"
    return f"{ns / 1e6:,.1f} ms"


def print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    """A plain-text table, first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def environment() -> dict:
    """What the numbers were measured on, stored next to them."""
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpus": os.cpu_count(), "clock": _clock,
            "load_average": list(os.getloadavg()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": _commit()}


def _commit() -> str | None:
    """The tracec commit measured (numbers move as the runtime changes), "+dirty" with local edits to the measured code."""
    try:
        head = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", os.path.dirname(HERE), "status", "--porcelain",
                                "--untracked-files=no", "--", "runtime", "transforms", "tracec"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def write_results(name: str, data: dict) -> str:
    """Write benchmarks/results/<name>.json atomically (temp file + os.replace)."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    payload = {"benchmark": name, "environment": environment(), **data}
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=RESULTS_DIR)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"\nwrote {os.path.relpath(path)}")
    return path


def load_instrumented(source: str, *, path: str, module: str, all_functions: bool = True) -> dict:
    """Instrument a workload and execute it in a fresh namespace, as the import hook would."""
    from tracec.transforms import instrument_source

    result = instrument_source(source, path=path, module=module, all_functions=all_functions)
    if result.error is not None or not result.functions:
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: could not instrument {path}: "
                         f"{result.error or 'no function was instrumented'}")
    namespace = {"__name__": module}
    if not result.header_placed:
        exec(result.header, namespace)   # what the import hook does for files with no line to carry it
    exec(compile(result.code, path, "exec"), namespace)
    return namespace

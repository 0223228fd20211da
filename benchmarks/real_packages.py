"""Semantic preservation on real packages: their own test suites, plain vs instrumented with --all.

For each pinned pure-Python package this script
  1. downloads its sdist with `pip download --no-binary :all: --no-deps` into benchmarks/.work/,
  2. runs the sdist's own tests on the plain package,
  3. instruments the package with `tracec instrument PKG --all -o OUT` and swaps it into a copy of the tree,
  4. runs the same tests with recording off, with TRACEC_RECORD=1 (graph written to TRACEC_GRAPH) and
     with one recording per test (every test recorded, not only those before the node cap is hit),
  5. compares per-test outcomes (pytest --junitxml): every test that passed plain must pass in all three.

A tiny pytest plugin (written into .work/ at run time) checks that the tests really imported the copy
under test: every imported module of the package lives in the tree being tested and, for the
instrumented runs, carries the `_tracec_m` runtime hook.

Usage:  python benchmarks/real_packages.py [--packages NAME ...] [--timeout S] [--test-timeout S]
Writes benchmarks/results/real_packages.json; exit status 1 on any regression or failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
RESULTS = HERE / "results" / "real_packages.json"
GUARD_MODULE = "_tracec_bench_guard"
TIMEOUT_MARKER = "tracec-bench: test timed out"  # also in GUARD_SOURCE


@dataclass(frozen=True)
class PackageSpec:
    dist: str  # PyPI name
    version: str  # pinned: results must be comparable between runs
    import_name: str  # top-level package folder inside the sdist
    pytest_args: tuple[str, ...]  # relative to the extracted sdist
    why: str
    # The sdist's own pytest config file, or None: then an empty one is used, so pytest never walks up
    # into this repository's pyproject.toml (its rootdir would change the test ids between trees).
    config: str | None = None


# Chosen to stress the transform: more-itertools is almost all generators, closures and iterator
# protocol classes; boltons has classes with properties/slots/descriptors, exception hierarchies,
# context managers and code that introspects functions and frames (funcutils, tbutils).
# Doctests of the package itself run too: they check line numbers and docstrings survive.
PACKAGES = {
    "more-itertools": PackageSpec(
        dist="more-itertools", version="10.8.0", import_name="more_itertools",
        pytest_args=("--doctest-modules", "more_itertools", "tests"),
        why="generators, closures, iterator classes",
    ),
    "boltons": PackageSpec(
        dist="boltons", version="26.2.0", import_name="boltons",
        pytest_args=("--doctest-modules", "boltons", "tests"),
        why="classes, descriptors, exceptions, introspection", config="pyproject.toml",
    ),
}

GUARD_SOURCE = '''\
"""Written by benchmarks/real_packages.py.

Records which files the package under test was imported from, and fails any single test that runs
longer than TRACEC_BENCH_TEST_TIMEOUT seconds, so one pathological test cannot hide the outcome of
all the others behind a whole-run timeout. With TRACEC_BENCH_RECORD_EACH=1 every test runs inside its
own recording (fresh node budget), so recording is exercised by the whole suite, not only by the
tests that run before a process-wide recording fills up."""
import json, os, signal, sys
import pytest

RECORDED = {"tests": 0, "nodes": 0, "truncated": 0}
MARKER = "tracec-bench: test timed out"


class TestTimedOut(BaseException):  # BaseException: instrumented code must not swallow it
    pass


def _alarm(signum, frame):
    raise TestTimedOut(MARKER)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    limit = float(os.environ.get("TRACEC_BENCH_TEST_TIMEOUT", "0"))
    if limit <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    recording = None
    if os.environ.get("TRACEC_BENCH_RECORD_EACH") == "1":
        import tracec.runtime as rt
        recording = rt.start(max_nodes=int(os.environ.get("TRACEC_MAX_NODES", "200000")))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if recording is not None:
            rt.stop(recording)
            RECORDED["tests"] += 1
            RECORDED["nodes"] += len(recording.nodes)
            RECORDED["truncated"] += bool(recording.truncated)


def pytest_sessionfinish(session, exitstatus):
    package = os.environ["TRACEC_BENCH_PACKAGE"]
    found = []
    for name, module in sorted(sys.modules.items()):
        if name != package and not name.startswith(package + "."):
            continue
        path = getattr(module, "__file__", None)
        text = ""
        if path and path.endswith(".py"):
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        found.append({"module": name, "file": path, "marker_in_file": "_tracec_m" in text,
                      "hooks_in_globals": "_tracec_m" in vars(module)})
    with open(os.environ["TRACEC_BENCH_GUARD_OUT"], "w", encoding="utf-8") as handle:
        json.dump({"modules": found, "recorded_per_test": RECORDED}, handle)
'''


@dataclass
class RunResult:
    label: str
    wall_s: float
    returncode: int
    outcomes: dict[str, str]  # test id -> passed | failed | error | skipped | timeout
    messages: dict[str, str]  # test id -> first line of its failure message
    seconds: dict[str, float]  # test id -> duration reported by pytest
    guard: list[dict]
    timed_out: bool = False
    graph_nodes: int | None = None
    graph_truncated: bool | None = None
    graph_mb: float | None = None
    recorded_per_test: dict | None = None  # per-test mode: tests recorded, total nodes, tests truncated
    problems: list[str] = field(default_factory=list)  # import-check failures

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def download(spec: PackageSpec) -> Path:
    """The sdist, from benchmarks/.work/downloads (fetched once)."""
    folder = WORK / "downloads"
    prefixes = {f"{name}-{spec.version}.tar.gz" for name in (spec.dist, spec.dist.replace("-", "_"))}
    existing = [path for path in folder.glob("*.tar.gz") if path.name in prefixes]
    if existing:
        return existing[0]
    folder.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
         "-d", str(folder), f"{spec.dist}=={spec.version}"])
    existing = [path for path in folder.glob("*.tar.gz") if path.name in prefixes]
    if not existing:
        raise SystemExit(f"pip download {spec.dist}=={spec.version} produced no sdist in {folder}")
    return existing[0]


def extract(sdist: Path, dest: Path) -> Path:
    """A fresh copy of the sdist's top folder at `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    staging = dest.with_name(dest.name + ".extract")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # refuse absolute paths and links out of the tree
            archive.extractall(staging, filter="data")
        else:
            archive.extractall(staging)
    (top,) = staging.iterdir()
    top.rename(dest)
    staging.rmdir()
    return dest


def tracec_command() -> list[str]:
    """The `tracec` console script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("tracec")
    found = str(beside) if beside.exists() else shutil.which("tracec")
    if not found:
        raise SystemExit("tracec CLI not found: pip install -e . in the repository first")
    return [found]


def instrument_tree(plain: Path, spec: PackageSpec, dest: Path) -> dict:
    """Copy `plain` to `dest` and replace its package with the `tracec instrument --all` build."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(plain, dest, ignore=shutil.ignore_patterns("__pycache__", ".tracec"))
    build = dest.with_name(dest.name + ".build")
    shutil.rmtree(build, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run(tracec_command() + ["instrument", spec.import_name, "--all", "-o", str(build)],
                          cwd=plain, text=True, capture_output=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tracec instrument failed for {spec.dist} (exit {proc.returncode}):\n"
                         f"{proc.stdout}{proc.stderr}")
    built = build / spec.import_name  # build mirrors paths relative to the project root (the sdist)
    if not (built / "__init__.py").is_file():
        raise SystemExit(f"tracec instrument wrote no {spec.import_name}/__init__.py under {build}")
    changed = 0
    for source in built.rglob("*.py"):
        target = dest / spec.import_name / source.relative_to(built)
        if source.read_bytes() != target.read_bytes():
            changed += 1
        shutil.copyfile(source, target)  # non-.py files (.pyi, data) stay from the plain copy
    shutil.rmtree(build)
    return {"seconds": round(seconds, 2), "files_changed": changed,
            "summary": (proc.stdout + proc.stderr).strip().splitlines()[-1:]}


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
    """(test id -> outcome, test id -> first line of the failure message, test id -> seconds).

    A test reported more than once (subtests) keeps its worst outcome; a test stopped by the guard's
    per-test alarm is "timeout"."""
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3, "timeout": 4}
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        seconds[test_id] = seconds.get(test_id, 0.0) + float(case.get("time") or 0)
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                message = (child.get("message") or "").strip()
                outcome = "timeout" if TIMEOUT_MARKER in message else "error" if child.tag == "error" else "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        if rank[outcome] >= rank[outcomes.get(test_id, "passed")]:
            outcomes[test_id] = outcome
            if message:
                messages[test_id] = message.splitlines()[0][:300]
    return outcomes, messages, seconds


def run_tests(tree: Path, spec: PackageSpec, label: str, *, record: str, timeout: float,
              test_timeout: float) -> RunResult:
    """record: "" (off), "process" (TRACEC_RECORD=1 for the whole run) or "each" (one per test)."""
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.import_name}-{label}"
    junit, guard_out, graph = logs / f"{stem}.xml", logs / f"{stem}.guard.json", logs / f"{stem}.graph.json"
    for stale in (junit, guard_out, graph):
        stale.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEC_")}
    env.update(TRACEC_BENCH_PACKAGE=spec.import_name, TRACEC_BENCH_GUARD_OUT=str(guard_out),
               PYTHONPATH=os.pathsep.join([str(WORK / "plugin"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               PYTHONDONTWRITEBYTECODE="1", TRACEC_BENCH_TEST_TIMEOUT=str(test_timeout))
    if record == "process":
        env.update(TRACEC_RECORD="1", TRACEC_GRAPH=str(graph))
    elif record == "each":
        env.update(TRACEC_BENCH_RECORD_EACH="1")
    config = tree / spec.config if spec.config else WORK / "plugin" / "empty-pytest.ini"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", GUARD_MODULE,
           f"--rootdir={tree}", "-c", str(config), f"--junitxml={junit}", *spec.pytest_args]
    started = time.perf_counter()
    timed_out = False
    with open(logs / f"{stem}.log", "w", encoding="utf-8") as log:
        try:
            returncode = subprocess.run(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            returncode, timed_out = -1, True
    wall = time.perf_counter() - started
    outcomes, messages, seconds = parse_junit(junit) if junit.exists() else ({}, {}, {})
    result = RunResult(label=label, wall_s=round(wall, 2), returncode=returncode, timed_out=timed_out,
                       outcomes=outcomes, messages=messages, seconds=seconds,
                       guard=[])
    if guard_out.exists():
        report = json.loads(guard_out.read_text())
        result.guard = report["modules"]
        if record == "each":
            result.recorded_per_test = report["recorded_per_test"]
    result.problems = check_imports(result.guard, tree, spec, instrumented=label != "plain")
    if record == "process":
        if graph.exists():
            data = json.loads(graph.read_text(encoding="utf-8"))
            result.graph_nodes = len(data.get("nodes", []))
            result.graph_truncated = bool(data.get("truncated"))
            result.graph_mb = round(graph.stat().st_size / 1e6, 1)
            graph.unlink()  # can be tens of MB; the numbers above are what we keep
        else:
            result.problems.append(f"TRACEC_RECORD=1 wrote no graph to {graph}")
    return result


def check_imports(guard: list[dict], tree: Path, spec: PackageSpec, *, instrumented: bool) -> list[str]:
    """The tests must have exercised the copy in `tree`, instrumented when it should be."""
    if not guard:
        return [f"the tests imported no {spec.import_name} module (or the guard plugin did not run)"]
    problems = []
    root = str(tree.resolve()) + os.sep
    for entry in guard:
        path = entry["file"]
        if not path or not os.path.realpath(path).startswith(root):
            problems.append(f"{entry['module']} imported from {path}, not from {tree}")
        elif instrumented and not (entry["marker_in_file"] and entry["hooks_in_globals"]):
            # A module with no function at all may legitimately stay uninstrumented.
            plain_text = Path(path).read_text(encoding="utf-8", errors="replace")
            if "def " in plain_text:
                problems.append(f"{entry['module']} ({path}) has functions but no _tracec_m hooks")
        elif not instrumented and entry["marker_in_file"]:
            problems.append(f"{entry['module']} in the plain run is instrumented ({path})")
    if instrumented and not any(entry["hooks_in_globals"] for entry in guard):
        problems.append(f"no imported {spec.import_name} module carries _tracec_m hooks")
    return problems


def regressions(plain: RunResult, other: RunResult) -> dict[str, dict]:
    """Tests that passed plain but not in `other` -> what happened to them there."""
    found = {}
    for test, outcome in sorted(plain.outcomes.items()):
        if outcome == "passed" and other.outcomes.get(test) != "passed":
            found[test] = {"outcome": other.outcomes.get(test, "not run"), "message": other.messages.get(test, ""),
                           "plain_s": round(plain.seconds.get(test, 0.0), 2)}
    return found


def bench_package(spec: PackageSpec, timeout: float, test_timeout: float) -> dict:
    print(f"== {spec.dist} {spec.version}: {spec.why}", flush=True)
    commit = git_commit()  # per package: the core may change between packages during development
    sdist = download(spec)
    plain_tree = extract(sdist, WORK / "trees" / f"{spec.import_name}-{spec.version}-plain")
    plain = run_tests(plain_tree, spec, "plain", record="", timeout=timeout, test_timeout=test_timeout)
    print(f"   plain: {plain.count('passed')} passed in {plain.wall_s}s", flush=True)
    inst_tree = WORK / "trees" / f"{spec.import_name}-{spec.version}-instrumented"
    build = instrument_tree(plain_tree, spec, inst_tree)
    print(f"   instrumented {build['files_changed']} files in {build['seconds']}s", flush=True)
    runs = [plain]
    for label, record in (("off", ""), ("recording", "process"), ("per-test", "each")):
        result = run_tests(inst_tree, spec, label, record=record, timeout=timeout,
                           test_timeout=test_timeout)
        print(f"   {label}: {result.count('passed')} passed in {result.wall_s}s", flush=True)
        runs.append(result)
    return {
        "package": spec.dist, "version": spec.version, "why": spec.why, "tracec_commit": commit,
        "pytest_args": list(spec.pytest_args), "instrument": build,
        "collected": len(plain.outcomes),
        "runs": {r.label: {key: value for key, value in asdict(r).items() if key not in ("outcomes", "messages", "seconds", "guard", "label")}
                 | {"passed": r.count("passed"), "failed": r.count("failed"), "error": r.count("error"),
                    "skipped": r.count("skipped"), "timeout": r.count("timeout"),
                    "modules_checked": len(r.guard)}
                 for r in runs},
        "plain_not_passing": {t: o for t, o in sorted(plain.outcomes.items()) if o not in ("passed", "skipped")},
        "regressions": {r.label: regressions(plain, r) for r in runs[1:]},
    }


def _count(rep: dict, timeouts: bool) -> int:
    """Distinct regressed tests of a package: timeouts (cost) or everything else (semantics)."""
    return len({test for found in rep["regressions"].values() for test, what in found.items()
                if (what["outcome"] == "timeout") == timeouts})


def _per_test(stats: dict | None) -> str:
    return "none" if not stats else f"{stats['nodes']} in {stats['tests']} tests ({stats['truncated']})"


def print_table(reports: list[dict]) -> None:
    headers = ["package", "tests", "plain", "off", "rec", "per-test", "broken", "timed out",
               "time plain/off/rec/per-test (s)", "graph nodes", "per-test nodes (truncated)"]
    rows = []
    for rep in reports:
        runs = rep["runs"]
        nodes = runs["recording"]["graph_nodes"]
        graph = "none" if nodes is None else f"{nodes}{' (truncated)' if runs['recording']['graph_truncated'] else ''}"
        rows.append([f"{rep['package']} {rep['version']}", str(rep["collected"]),
                     *(str(runs[k]["passed"]) for k in ("plain", "off", "recording", "per-test")),
                     str(_count(rep, timeouts=False)), str(_count(rep, timeouts=True)),
                     " / ".join(f"{runs[k]['wall_s']:.1f}" for k in ("plain", "off", "recording", "per-test")),
                     graph, _per_test(runs["per-test"]["recorded_per_test"])])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    for rep in reports:
        for label, found in rep["regressions"].items():
            for name, what in found.items():
                print(f"REGRESSION [{rep['package']}, {label}] {name}: {what['outcome']} "
                      f"(plain {what['plain_s']}s) {what['message']}".rstrip())
        for label, run_ in rep["runs"].items():
            for problem in run_["problems"]:
                print(f"CHECK FAILED [{rep['package']}, {label}]: {problem}")
            if run_["timed_out"]:
                print(f"TIMEOUT [{rep['package']}, {label}]: the whole run was stopped")


def git_commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], text=True, capture_output=True)
    return proc.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", nargs="+", choices=sorted(PACKAGES), default=sorted(PACKAGES))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per whole test-suite run")
    parser.add_argument("--test-timeout", type=float, default=60,
                        help="seconds per single test before it counts as timed out (plain: all < 5 s)")
    args = parser.parse_args(argv)
    write_atomic(WORK / "plugin" / f"{GUARD_MODULE}.py", GUARD_SOURCE)
    write_atomic(WORK / "plugin" / "empty-pytest.ini", "[pytest]\n")
    reports = [bench_package(PACKAGES[name], args.timeout, args.test_timeout) for name in args.packages]
    print()
    print_table(reports)
    failed = any(any(rep["regressions"].values()) or any(r["problems"] or r["timed_out"] for r in rep["runs"].values())
                 for rep in reports)
    write_atomic(RESULTS, json.dumps({"tracec_commit": git_commit(), "python": platform.python_version(),
                                      "ok": not failed, "packages": reports}, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

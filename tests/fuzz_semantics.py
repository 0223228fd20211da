"""Semantics fuzzing of the tracec transform: instrumented programs must behave exactly like plain ones.

    python tests/fuzz_semantics.py --count 2000 [--seed-start N] [--jobs 2] [--batch 20] [--size small]

Each program from tests/program_gen/ is instrumented with `all_functions=True` (the CLI's `--all`); the
result must compile and keep the line count. Then the plain program and the instrumented one run in
subprocesses from a temp dir, the instrumented one twice: with recording off, and with `TRACEC_RECORD=1`
plus `TRACEC_GRAPH=<file>` (whole-process recording, graph written at exit and checked to be JSON with
"version": 1 and nodes). stdout, stderr, the escaping exception type and message and the exit code must be
identical. Programs run batched, many per worker process in fresh namespaces; a program that kills or hangs
its worker is reported as crashed and the worker restarts after it, so it cannot hide the others. A batch
mismatch is re-run alone in a fresh process to tell real differences from state leaking between programs.

The module doubles as the checking library of tests/test_generated_programs.py (`check_seeds`,
`check_sources`). Counts go to stdout and, with every failure, to tests/.work/fuzz_semantics.json (`--json FILE`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import program_gen  # beside this file: Python puts a script's folder first on sys.path, pytest the tests folder

HERE = os.path.dirname(os.path.abspath(__file__))

PROGRAM_TIMEOUT_S = 30  # one program (not a batch) may take this long before its worker is killed
MODES = ("plain", "off", "record")  # plain program; instrumented with recording off; recording on

# Runs the programs listed in a JSON file, each in a fresh namespace with stdout/stderr captured, and
# prints one "@@{json}" line per program as soon as it finishes (so a crash loses only the current one).
WORKER = r'''
import contextlib, io, json, sys

def run(job):
    out, err = io.StringIO(), io.StringIO()
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    result = {"exc": None, "message": None, "exit": 0}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if job["header"]:
                exec(job["header"], ns)
            exec(compile(job["code"], "gen.py", "exec", dont_inherit=True), ns)
        except SystemExit as exc:
            code = exc.code
            result.update(exc="SystemExit", exit=code if code is None or isinstance(code, int) else str(code))
        except BaseException as exc:
            try:
                message = str(exc)[:300]
            except Exception:
                message = "<unprintable>"
            result.update(exc=type(exc).__name__, message=message, exit=1)
    result.update(stdout=out.getvalue(), stderr=err.getvalue())
    return result

jobs = json.load(open(sys.argv[1], encoding="utf-8"))
for index in range(int(sys.argv[2]), len(jobs)):
    result = run(jobs[index])
    result["index"] = index
    sys.stdout.write("@@" + json.dumps(result) + "\n")
    sys.stdout.flush()
'''


@dataclass
class Program:
    name: str  # "seed 17" or a regression case's name
    source: str
    raises: str | None = None  # exception type the program raises on purpose


@dataclass
class Outcome:
    name: str
    status: str  # identical | mismatch | batch-mismatch | instrument-error | compile-error | line-mismatch | crashed
    detail: str = ""
    plain_ok: bool = True  # the plain run ended with its "final" line and raised only what was intended
    issues: list[str] = field(default_factory=list)  # batch-level problems (graph file, worker stderr)

    @property
    def ok(self) -> bool:
        return self.status == "identical" and self.plain_ok and not self.issues

    def describe(self) -> str:
        lines = [f"{self.name}: {self.status}" + ("" if self.plain_ok else " (plain run misbehaved)")]
        lines += [f"  {line}" for line in self.detail.splitlines()] + [f"  batch: {i}" for i in self.issues]
        return "\n".join(lines)


# -- running -----------------------------------------------------------------------------------------------

def _environment(mode: str, graph: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEC_")}
    env["PYTHONHASHSEED"] = "0"
    if mode == "record":
        env.update(TRACEC_RECORD="1", TRACEC_GRAPH=graph)
    return env


def _run_worker(jobs_file: str, start: int, env: dict, cwd: str) -> tuple[dict, str, str | None]:
    """Run jobs[start:] in one worker; returns (results by index, worker stderr, failure or None)."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER, jobs_file, str(start)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    lines: queue.Queue = queue.Queue()
    errors: list[str] = []
    threading.Thread(target=lambda: ([lines.put(l) for l in proc.stdout], lines.put(None)), daemon=True).start()
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    results: dict = {}
    while True:
        try:
            line = lines.get(timeout=PROGRAM_TIMEOUT_S)
        except queue.Empty:
            proc.kill()
            proc.wait()
            return results, "".join(errors), f"timeout after {PROGRAM_TIMEOUT_S}s"
        if line is None:
            break
        if line.startswith("@@"):
            result = json.loads(line[2:])
            results[result["index"]] = result
    proc.wait()
    time.sleep(0.01)  # let the stderr reader finish
    failure = None if proc.returncode == 0 else f"worker exited with {proc.returncode}"
    return results, "".join(errors), failure


def run_batch(jobs: list[dict], mode: str, workdir: str) -> tuple[list[dict], list[str]]:
    """One result dict per job (a crashed/hung program gets {"crashed": reason}); plus batch issues."""
    jobs_file = os.path.join(workdir, f"jobs-{mode}.json")
    with open(jobs_file, "w", encoding="utf-8") as fh:
        json.dump(jobs, fh)
    results: dict = {}
    issues, start, attempt = [], 0, 0
    while start < len(jobs):
        attempt += 1
        graph = os.path.join(workdir, f"graph-{mode}-{attempt}.json")
        got, stderr, failure = _run_worker(jobs_file, start, _environment(mode, graph), workdir)
        results.update(got)
        done = max(got, default=start - 1) + 1
        if done < len(jobs):  # the worker died or hung in jobs[done]
            results[done] = {"crashed": f"{failure or 'worker stopped'}; stderr: {stderr.strip()[-300:]}"}
            start = done + 1
            continue
        start = done
        if failure or stderr.strip():
            issues.append(f"{mode} worker: {failure or 'exit 0'}; stderr: {stderr.strip()[-300:]}")
        if mode == "record":
            problem = graph_problem(graph)
            if problem:
                issues.append(f"record graph: {problem}")
    return [results[i] for i in range(len(jobs))], issues


def graph_problem(path: str) -> str | None:
    """Why the graph file written by TRACEC_RECORD=1 breaks the contract, or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            graph = json.load(fh)
    except (OSError, ValueError) as exc:
        return f"{path}: {exc}"
    if graph.get("version") != 1:
        return f"version is {graph.get('version')!r}, expected 1"
    if not isinstance(graph.get("nodes"), list) or not graph["nodes"]:
        return "no nodes recorded"
    return None


# -- comparing ---------------------------------------------------------------------------------------------

def difference(plain: dict, other: dict) -> str | None:
    """A short human-readable difference between two runs, or None when they behaved the same."""
    if "crashed" in other or "crashed" in plain:
        return None
    parts = []
    for key in ("exc", "message", "exit"):
        if plain[key] != other[key]:
            parts.append(f"{key}: plain {plain[key]!r} != instrumented {other[key]!r}")
    for stream in ("stdout", "stderr"):
        if plain[stream] != other[stream]:
            diff = list(difflib.unified_diff(plain[stream].splitlines(), other[stream].splitlines(),
                                             f"plain {stream}", f"instrumented {stream}", n=1, lineterm=""))
            parts.append("\n".join(diff[:24] + (["..."] if len(diff) > 24 else [])))
    return "\n".join(parts) or None


def plain_ok(program: Program, run: dict) -> bool:
    if "crashed" in run:
        return False
    lines = run["stdout"].splitlines()
    return bool(lines) and lines[-1].startswith("final") and run["exc"] == program.raises


def prepare(program: Program) -> tuple[dict | None, Outcome | None]:
    """The instrumented job for `program`, or the Outcome saying why there is none."""
    from tracec.transforms import instrument_source

    result = instrument_source(program.source, path="gen.py", module="gen", all_functions=True)
    if result.error is not None or result.code is None:
        return None, Outcome(program.name, "instrument-error", str(result.error))
    try:
        compile(result.code, "gen.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return None, Outcome(program.name, "compile-error", f"line {exc.lineno}: {exc.msg}: {exc.text!r}")
    before, after = len(program.source.splitlines()), len(result.code.splitlines())
    if before != after:
        return None, Outcome(program.name, "line-mismatch", f"{before} lines became {after}")
    return {"code": result.code, "header": None if result.header_placed else result.header}, None


def check_programs(programs: list[Program], confirm: bool = True) -> list[Outcome]:
    """Check one batch of programs (runs in the calling process; see check_many for parallelism)."""
    outcomes: dict[int, Outcome] = {}
    ready: list[tuple[int, dict]] = []
    for i, program in enumerate(programs):
        job, failure = prepare(program)
        if failure:
            outcomes[i] = failure
        else:
            ready.append((i, job))
    with tempfile.TemporaryDirectory(prefix="tracec-fuzz-") as workdir:
        plain_jobs = [{"code": programs[i].source, "header": None} for i, _ in ready]
        instrumented = [job for _, job in ready]
        runs, issues = {}, []
        threads = [threading.Thread(target=lambda m=m, jobs=jobs: runs.__setitem__(m, run_batch(jobs, m, workdir)))
                   for m, jobs in (("plain", plain_jobs), ("off", instrumented), ("record", instrumented))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for mode in MODES:
            issues += runs[mode][1]
        for k, (i, job) in enumerate(ready):
            program, by_mode = programs[i], {mode: runs[mode][0][k] for mode in MODES}
            outcomes[i] = _judge(program, by_mode, issues, confirm)
    return [outcomes[i] for i in range(len(programs))]


def _judge(program: Program, runs: dict, issues: list[str], confirm: bool) -> Outcome:
    crashed = [f"{mode}: {run['crashed']}" for mode, run in runs.items() if "crashed" in run]
    if crashed:
        return Outcome(program.name, "crashed", "\n".join(crashed), plain_ok(program, runs["plain"]), issues)
    diffs = {mode: difference(runs["plain"], runs[mode]) for mode in ("off", "record")}
    diffs = {mode: d for mode, d in diffs.items() if d}
    status = "identical"
    if diffs and confirm:  # re-run alone: does the difference survive a fresh process?
        alone = check_programs([program], confirm=False)[0]
        status = "mismatch" if alone.status != "identical" else "batch-mismatch"
    elif diffs:
        status = "mismatch"
    detail = "\n".join(f"recording {'off' if m == 'off' else 'on'}:\n{d}" for m, d in diffs.items())
    return Outcome(program.name, status, detail, plain_ok(program, runs["plain"]), issues)


def check_many(programs: list[Program], jobs: int = 1, batch: int = 20, progress=None) -> list[Outcome]:
    """check_programs over batches, `jobs` batches at a time in separate processes; `progress(done, total)`
    is called after each batch."""
    batches = [programs[i:i + batch] for i in range(0, len(programs), batch)]
    results: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for outcomes in pool.map(check_programs, batches):
            results += outcomes
            if progress:
                progress(len(results), len(programs))
    return results


def seed_programs(seeds, small: bool = False) -> list[Program]:
    programs = []
    for seed in seeds:
        generated = program_gen.generate(seed, small=small)
        programs.append(Program(f"seed {seed}" + (" (small)" if small else ""), generated.source, generated.raises))
    return programs


def check_seeds(seeds, jobs: int = 1, batch: int = 20, small: bool = False, progress=None) -> list[Outcome]:
    return check_many(seed_programs(seeds, small), jobs=jobs, batch=batch, progress=progress)


def summarize(outcomes: list[Outcome]) -> dict:
    count = lambda *statuses: sum(o.status in statuses for o in outcomes)  # noqa: E731
    compiled = len(outcomes) - count("instrument-error", "compile-error", "line-mismatch")
    return {"generated": len(outcomes), "compiled": compiled, "ran": compiled - count("crashed"),
            "identical": count("identical"), "mismatched": count("mismatch", "batch-mismatch"),
            "mismatched_only_in_batch": count("batch-mismatch"), "crashed": count("crashed"),
            "instrument_errors": count("instrument-error"), "compile_errors": count("compile-error"),
            "line_mismatches": count("line-mismatch"), "plain_misbehaved": sum(not o.plain_ok for o in outcomes),
            "batch_issues": len({i for o in outcomes for i in o.issues})}


def tracec_fingerprint() -> str:
    """Hash of tracec's installed source: a run is only meaningful if it did not change meanwhile (worker
    processes import the runtime afresh, the pool keeps the transform it imported first)."""
    import hashlib

    import tracec

    digest = hashlib.sha256()
    root = os.path.dirname(os.path.dirname(os.path.abspath(tracec.__file__)))
    for folder in ("tracec", "runtime", "transforms"):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, folder))):
            for name in sorted(f for f in files if f.endswith(".py")):
                with open(os.path.join(dirpath, name), "rb") as fh:
                    digest.update(name.encode() + fh.read())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="number of generated programs")
    parser.add_argument("--seed-start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=2, help="batches checked in parallel")
    parser.add_argument("--batch", type=int, default=20, help="programs per worker process")
    parser.add_argument("--size", choices=("small", "full"), default="full",
                        help="program size: small programs (1-2 feature templates) instrument ~4x faster")
    parser.add_argument("--json", metavar="FILE", help="report file (default: tests/.work/fuzz_semantics.json)")
    args = parser.parse_args(argv)

    seeds = range(args.seed_start, args.seed_start + args.count)
    fingerprint = tracec_fingerprint()
    started = time.perf_counter()
    report = lambda done, total: print(f"checked {done}/{total} programs", file=sys.stderr, flush=True)  # noqa: E731
    outcomes = check_seeds(seeds, jobs=args.jobs, batch=args.batch, small=args.size == "small", progress=report)
    elapsed = time.perf_counter() - started
    summary = summarize(outcomes)
    summary["tracec_changed_during_run"] = tracec_fingerprint() != fingerprint
    if summary["tracec_changed_during_run"]:
        print("WARNING: tracec's source changed during the run; differences may be version skew, re-run.")
    for name, value in summary.items():
        print(f"{name:>26}: {value}")
    print(f"{'seconds':>26}: {elapsed:.1f}")
    failures = [o for o in outcomes if not o.ok]
    for outcome in failures[:15]:
        print("\n" + outcome.describe())
    if len(failures) > 15:
        print(f"\n... and {len(failures) - 15} more (all in the JSON file)")
    lines = [len(p.source.splitlines()) for p in seed_programs(seeds[:50], args.size == "small")]
    write_report(args.json or "fuzz_semantics", {"seed_start": args.seed_start, "count": args.count, "size": args.size,
                                     "mean_program_lines_first_50": round(sum(lines) / len(lines)), "jobs": args.jobs,
                                     "batch": args.batch, "seconds": round(elapsed, 1), "summary": summary,
                                     "failures": [asdict(o) for o in failures]})
    return 0 if not failures else 1


def write_report(where: str, data: dict) -> str:
    """A run's numbers as JSON (atomically), with what they were measured on: FILE, or a bare name under
    tests/.work/. Returns the path."""
    import platform

    from tracec.fileio import write_atomic

    path = where if where.endswith(".json") else os.path.join(HERE, ".work", f"{where}.json")
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    environment = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit.stdout.strip() or None}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, json.dumps({"environment": environment, **data}, indent=2) + "\n")
    print(f"\nwrote {os.path.relpath(path)}")
    return path


if __name__ == "__main__":
    sys.exit(main())

"""Grammar-based fuzzing of the tracec transform with hypothesmith: code CPython compiles must instrument.

    python tests/fuzz_grammar.py --count 10000 [--seed 0] [-j 1] [--timeout 3] [--minimize 3] [--no-run]

Programs: half from hypothesmith's `from_grammar()` (grammar text, mostly nonsense CPython accepts), a
quarter each from `from_node()` and `from_node(libcst.FunctionDef)` (printed LibCST trees). Hypothesis runs
in chunks of CHUNK examples, each with a seed derived from `--seed` (no database, no health checks, no
constants mined from loaded modules): same seed and versions, same programs, whatever `-j`. Duplicates are
dropped; the programs are cached in tests/.work/ (drawing is most of a run's time).

`--all` rewrites only functions and most generated code is module-level, so each program is checked as
generated ("module") and as the body of a function the module calls ("function", when that compiles).
Each case must instrument with `all_functions=True` without raising, `.error` ("libcst-cannot-parse" when
LibCST refuses what CPython compiles) or `.internal`; the output must compile, have as many lines and keep
every statement (kind, line). Cases the pass changed then run where that is safe, sandboxed, plain and
instrumented with recording off and on (fuzz_sandbox.py): exception type and message, exit status, stdout
and stderr must match once addresses are masked. A plain run that times out or hits a limit is not
runnable; one a second plain run does not reproduce is nondeterministic (both skipped). Failures are
shrunk (line, then character deletions keeping the same cause) and grouped by cause.
Counts go to stdout and tests/.work/fuzz_grammar.json (`--json FILE`); tests/test_grammar_fuzz.py runs a sample.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import fuzz_semantics  # beside this file (tracec_fingerprint(), write_report())
from fuzz_sandbox import TOO_HARD, check_run

HERE = os.path.dirname(os.path.abspath(__file__))

CHUNK = 200  # examples per Hypothesis run
SOURCES = {"grammar": 2, "node": 1, "node-def": 1}  # share of the programs each strategy draws
NEWLINE = re.compile(r"\r\n|\r|\n")
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$").findall  # lines with their endings


@dataclass
class Outcome:
    name: str  # "grammar#12 function"
    source: str  # the case as checked
    status: str  # ok | crash | libcst-cannot-parse | libcst-round-trip | rejected | internal | compile-error | line-mismatch | ...
    detail: str = ""
    run: str = "not-run"  # same | mismatch | instrumented-timeout | instrumented-crashed | skipped-* | not-run
    run_detail: str = ""
    minimal: str | None = None
    rewritten: bool = False  # the pass changed the code (module-level code mostly has nothing to rewrite)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and (self.run in ("same", "not-run") or self.run.startswith("skipped"))

    @property
    def cause(self) -> str:
        """The failure without the program's names and numbers: failures are grouped by it."""
        if self.status != "ok":
            return f"{self.status}: {_generic(self.detail)}"
        return f"{self.run}: {_generic(self.run_detail.splitlines()[0] if self.run_detail else '')}"


def _generic(text: str) -> str:
    text = re.sub(r"'(?![A-Z]\w*(?:Error|Exception|Exit)')[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\d+", "N", text)[:160]


# -- generating --------------------------------------------------------------------------------------------

def _hypothesis_setup() -> None:
    """(In pool workers only.) Hypothesis' files go to the temp dir, not the checkout; and since 6.131 it
    mixes constants found in the source of loaded "local" modules (tracec's, these scripts') into what it
    draws: switched off, or the programs would change with every edit to them."""
    from hypothesis.configuration import set_hypothesis_home_dir
    from hypothesis.internal.conjecture import providers

    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "tracec-hypothesis-py%d%d" % sys.version_info[:2]))
    if hasattr(providers, "_get_local_constants") and hasattr(providers, "Constants"):
        empty = providers.Constants()
        providers._get_local_constants = lambda: empty


def draw_chunk(source: str, seed: int, chunk: int, size: int = CHUNK) -> list[str]:
    """The `size` programs one seeded Hypothesis run draws from `source`."""
    _hypothesis_setup()
    import hypothesmith
    import libcst
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    strategy = {"grammar": hypothesmith.from_grammar, "node": hypothesmith.from_node,
                "node-def": lambda: hypothesmith.from_node(libcst.FunctionDef)}[source]()
    drawn: list[str] = []

    @seeded(int(hashlib.sha256(f"{seed}:{source}:{chunk}:{size}".encode()).hexdigest()[:16], 16))
    @settings(database=None, max_examples=size, deadline=None, phases=[Phase.generate, Phase.target],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def collect(text):
        drawn.append(text)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect()
    return drawn


def generate(count: int, seed: int = 0, jobs: int = 1, shares: dict | None = None, chunk_size: int = CHUNK,
             progress=None) -> list[tuple[str, str]]:
    """`count` distinct (name, source) programs, shared between the sources by weight (SOURCES)."""
    shares = shares or SOURCES
    wanted = {s: count * w // sum(shares.values()) for s, w in shares.items()}
    wanted[next(iter(wanted))] += count - sum(wanted.values())
    seen: set[str] = set()
    programs: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:  # Hypothesis is set up in the workers only
        for source, n in wanted.items():
            got: list[str] = []
            chunk = 0
            while len(got) < n:
                rounds = max(1, min(jobs * 2, -(-(n - len(got)) // (chunk_size // 2))))
                before = len(got)
                for drawn in pool.map(draw_chunk, [source] * rounds, [seed] * rounds, range(chunk, chunk + rounds),
                                      [chunk_size] * rounds):
                    fresh = [text for text in dict.fromkeys(drawn) if text not in seen][:n - len(got)]
                    seen.update(fresh)
                    got += fresh
                chunk += rounds
                if progress:
                    progress(source, len(got), n)
                if len(got) == before:  # the strategy keeps drawing what we have
                    break
            programs += [(f"{source}#{i}", text) for i, text in enumerate(got)]
    return programs


def cached_generate(count: int, seed: int, jobs: int, shares: dict, progress=None) -> list[tuple[str, str]]:
    """generate(), kept in tests/.work/ under its arguments and the versions that decide the draws."""
    from importlib.metadata import version

    key = json.dumps([count, seed, shares, CHUNK, version("hypothesis"), version("hypothesmith"),
                      version("libcst"), sys.version_info[:2]])
    path = os.path.join(HERE, ".work", f"fuzz_grammar-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return [tuple(p) for p in json.load(fh)]
    programs = generate(count, seed, jobs, shares, progress=progress)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(programs, fh)
    os.replace(path + ".tmp", path)
    return programs


def compiles(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "gen.py", "exec", dont_inherit=True)
        return True
    except TOO_HARD:
        return False


def as_function(text: str) -> str | None:
    """The program's statements as the body of a function the module calls; None when there are no
    statements or that does not compile."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not ast.parse(text).body:
                return None
    except TOO_HARD:
        return None
    body = "\n".join("    " + part if part.strip(" \t\f") else part for part in NEWLINE.split(text))
    wrapped = f"def fuzz_body():\n{body}\nfuzz_body()\n"
    return wrapped if compiles(wrapped) else None


def cases(programs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, source) for each form of each program that compiles before instrumenting."""
    out = []
    for name, text in programs:
        if compiles(text):
            out.append((f"{name} module", text))
            wrapped = as_function(text)
            if wrapped:
                out.append((f"{name} function", wrapped))
    return out


# -- checking the transform --------------------------------------------------------------------------------

def lines(text: str) -> int:
    return len(NEWLINE.findall(text)) + (1 if text and not NEWLINE.search(text[-1:]) else 0)


def statements(text: str) -> Counter:
    return Counter((type(n).__name__, n.lineno) for n in ast.walk(ast.parse(text)) if isinstance(n, ast.stmt))


def check_transform(text: str):
    """(status, detail, InstrumentResult or None) for one case."""
    from tracec.transforms import instrument_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = instrument_source(text, path="gen.py", module="gen", all_functions=True)
        except BaseException as exc:  # noqa: B036  (a bug may raise anything, SystemExit included)
            return "crash", f"{type(exc).__name__}: {str(exc)[:200]}", None
        problem = result.error or getattr(result, "internal", None)
        if problem is not None:
            kind = "libcst-cannot-parse" if "LibCST cannot parse" in problem.message else (
                "libcst-round-trip" if "LibCST does not reproduce" in problem.message else (
                    "rejected" if result.error is not None else "internal"))
            return kind, problem.message, result
        if result.code is None:
            return "no-code", "code is None without error", result
        try:
            compile(result.code, "gen.py", "exec", dont_inherit=True)
            after = statements(result.code)
        except TOO_HARD as exc:
            return "compile-error", f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}", result
        lost = statements(text) - after
    before, now = lines(text), lines(result.code)
    # a module of plain definitions may get the header as a new last line: that moves no line
    appended_header = now == before + 1 and LINE(result.code)[-1].rstrip("\r\n") == result.header
    if before != now and not appended_header:
        last = LINE(result.code)[-1][:40] if now > before else ""
        return "line-mismatch", f"{before} lines became {now}" + (f"; last line {last!r}" if last else ""), result
    if lost:
        return "statement-moved", ", ".join(f"{kind} of line {line}" for kind, line in sorted(lost)), result
    return "ok", "rewritten" if result.changed else "unchanged", result


def check_case(name: str, source: str, run_programs: bool = True, timeout: float = 3.0) -> Outcome:
    status, detail, result = check_transform(source)
    outcome = Outcome(name, source, status, detail, rewritten=bool(result and result.changed))
    if status == "ok" and run_programs:
        outcome.run, outcome.run_detail = check_run(source, result, timeout)
    return outcome


def _check_batch(batch: list[tuple[str, str]], run_programs: bool, timeout: float) -> list[Outcome]:
    return [check_case(name, source, run_programs, timeout) for name, source in batch]


def check_all(items: list[tuple[str, str]], jobs: int = 1, run_programs: bool = True, timeout: float = 3.0,
              progress=None) -> list[Outcome]:
    batches = [items[i:i + 25] for i in range(0, len(items), 25)]
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done in pool.map(_check_batch, batches, [run_programs] * len(batches), [timeout] * len(batches)):
            outcomes += done
            if progress:
                progress(len(outcomes), len(items))
    return outcomes


# -- shrinking and reporting -------------------------------------------------------------------------------

def shrink(outcome: Outcome, timeout: float = 3.0, budget: int = 300) -> str:
    """A smaller source failing with the same cause: deletes spans of lines, then of characters."""
    runs = outcome.status == "ok"
    budget = budget // 5 if runs else budget  # a run costs ~3 processes

    def keeps(text: str) -> bool:
        nonlocal budget
        if budget <= 0 or not compiles(text):
            return False
        budget -= 1
        return check_case(outcome.name, text, runs, timeout).cause == outcome.cause

    text = outcome.source
    for split in (LINE, list):
        units = split(text)
        size = max(1, len(units) // 2)
        while size >= 1 and budget > 0:
            i, changed = 0, False
            while i < len(units) and budget > 0:
                candidate = units[:i] + units[i + size:]
                if candidate and keeps("".join(candidate)):
                    units, changed = candidate, True
                else:
                    i += size
            if not changed:
                size //= 2
        text = "".join(units)
    return text


def shrink_failures(failures: list[Outcome], per_cause: int, jobs: int = 1, timeout: float = 3.0) -> None:
    """Sets `.minimal` on the first `per_cause` failures of each cause (all of them when per_cause < 0)."""
    chosen, counts = [], Counter()
    for outcome in failures:
        counts[outcome.cause] += 1
        if per_cause < 0 or counts[outcome.cause] <= per_cause:
            chosen.append(outcome)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for outcome, minimal in zip(chosen, pool.map(shrink, chosen, [timeout] * len(chosen))):
            outcome.minimal = minimal


def summarize(generated: int, outcomes: list[Outcome]) -> dict:
    count, runs = Counter(o.status for o in outcomes), Counter(o.run for o in outcomes)
    return {"generated": generated, "compiled_before": len({o.name.rsplit(" ", 1)[0] for o in outcomes}),
            "cases": len(outcomes), "function_forms": sum(o.name.endswith(" function") for o in outcomes),
            "instrumented": len(outcomes) - sum(count[s] for s in ("crash", "libcst-cannot-parse", "rejected",
                                                                   "internal", "no-code")),
            "rewritten": sum(o.rewritten for o in outcomes),
            "compiled_after": count["ok"] + count["line-mismatch"] + count["statement-moved"],
            "lines_kept": count["ok"] + count["statement-moved"], "transform_ok": count["ok"],
            "ran": sum(runs[s] for s in ("same", "mismatch", "instrumented-timeout", "instrumented-crashed")),
            "same_output": runs["same"], "statuses": dict(count), "runs": dict(runs)}


def group(failures: list[Outcome]) -> list[dict]:
    groups: dict[str, dict] = {}
    for o in failures:
        entry = groups.setdefault(o.cause, {"cause": o.cause, "count": 0, "example": o.name, "minimal": None})
        entry["count"] += 1
        entry["minimal"] = entry["minimal"] or o.minimal
    return sorted(groups.values(), key=lambda g: -g["count"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000, help="distinct generated programs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds a plain run may take")
    parser.add_argument("--sources", default=",".join(f"{k}={v}" for k, v in SOURCES.items()),
                        help="strategies and their shares (default: %(default)s)")
    parser.add_argument("--no-run", action="store_true", help="check the transform only")
    parser.add_argument("--minimize", type=int, default=3, help="failures shrunk per cause (-1: all)")
    parser.add_argument("--json", metavar="FILE", help="report file (default: tests/.work/fuzz_grammar.json)")
    args = parser.parse_args(argv)

    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    fingerprint = fuzz_semantics.tracec_fingerprint()
    started = time.perf_counter()
    shares = {k: int(v) for k, v in (item.split("=") for item in args.sources.split(","))}
    programs = cached_generate(args.count, args.seed, args.jobs, shares,
                               lambda source, done, total: say(f"drew {done}/{total} {source} programs"))
    generated_s = time.perf_counter() - started
    outcomes = check_all(cases(programs), args.jobs, not args.no_run, args.timeout,
                         lambda done, total: say(f"checked {done}/{total} cases"))
    failures = [o for o in outcomes if not o.ok]
    shrink_failures(failures, args.minimize, args.jobs, args.timeout)
    elapsed = time.perf_counter() - started
    summary = summarize(len(programs), outcomes)
    summary["tracec_changed_during_run"] = fuzz_semantics.tracec_fingerprint() != fingerprint
    for key, value in summary.items():
        print(f"{key:>26}: {value}")
    print(f"{'seconds':>26}: {elapsed:.0f} (drawing {generated_s:.0f})")
    groups = group(failures)
    for entry in groups:
        print(f"\n{entry['count']:6d} x {entry['cause']}\n        e.g. {entry['example']}: {entry['minimal']!r}")
    from importlib.metadata import version

    drew_with = {name: version(name) for name in ("hypothesis", "hypothesmith", "libcst")}   # decide the draws
    fuzz_semantics.write_report(args.json or "fuzz_grammar", {"seed": args.seed, "count": args.count, "sources": shares, "jobs": args.jobs,
                                   "drew_with": drew_with,
                                   "timeout": args.timeout, "seconds": round(elapsed, 1), "summary": summary,
                                   "causes": groups, "failures": [asdict(o) for o in failures]})
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

"""Issue 9: `tracec instrument --all` over every .py file an interpreter has installed, checked file by file.

Corpus: the measured interpreter's site-packages (sysconfig purelib/platlib; `--stdlib` adds the standard
library). Files that do not compile before instrumenting are excluded and listed. The rest are copied under
a scratch project root (the CLI takes only paths under the root and skips folders named site-packages) and
built cold with the real command. Checks per file, on the same interpreter: compile (the output compiles),
lines (every statement keeps its type, line and end line once tracec's own statements are set aside), count
(same number of lines), and what the CLI says: files it names, does not build, or copies unchanged although
they define functions. See benchmarks/README.md ("Real code") for usage; exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import tokenize
import traceback
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _timing  # beside this script, which Python puts first on sys.path

HERE = Path(__file__).resolve().parent

HOOK_PREFIX = "_tracec_"
HEADER = b"import tracec.runtime as _tracec_rt;"
LINE_BREAK = re.compile(rb"\r\n|\r|\n")   # what Python's tokenizer counts (str.splitlines counts \f too)


# -- corpus ---------------------------------------------------------------------------------------
def corpus_roots(stdlib: bool, folders: list[str] | None = None) -> dict[str, Path]:
    if folders:   # --corpus: any folders instead (a project, a folder of repros)
        return {f"dir{i}": Path(folder).resolve() for i, folder in enumerate(folders)}
    paths = sysconfig.get_paths()
    roots = {"site": Path(paths["purelib"])}
    if os.path.realpath(paths["platlib"]) != os.path.realpath(paths["purelib"]):
        roots["platlib"] = Path(paths["platlib"])
    if stdlib:
        roots["stdlib"] = Path(paths["stdlib"])
    return roots


def collect(roots: dict[str, Path], packages: list[str] | None) -> tuple[dict[str, Path], list[dict]]:
    """rel path under the scratch corpus -> source file, and the folders deliberately not walked."""
    others = {os.path.realpath(r) for r in roots.values()}
    files, skipped = {}, []
    for label, root in roots.items():
        for folder, dirnames, filenames in os.walk(root):
            keep = []
            for name in sorted(dirnames):
                full = os.path.join(folder, name)
                if name == "__pycache__":
                    continue   # bytecode only
                if os.path.realpath(full) in others or name in ("site-packages", "dist-packages"):
                    skipped.append({"folder": full, "reason": "another corpus root, or a site-packages "
                                    "folder inside one (e.g. the stdlib's: not the stdlib)"})
                elif os.path.islink(full):
                    skipped.append({"folder": full, "reason": "symlinked folder (os.walk does not follow)"})
                else:
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                path = Path(folder, name)
                rel = path.relative_to(root)
                if name.endswith(".py") and path.is_file() and (not packages or _top(rel) in packages):
                    files[f"{label}/{rel.as_posix()}"] = path
    return files, skipped


def _top(rel: Path) -> str:
    return rel.parts[0][:-3] if len(rel.parts) == 1 and rel.suffix == ".py" else rel.parts[0]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def precheck(job: tuple[str, str]) -> tuple[str, str | None]:
    rel, path = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SyntaxWarnings (invalid escapes) are not errors
        try:
            compile(Path(path).read_bytes(), rel, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return rel, _describe(exc)
    return rel, None


# -- the line check -------------------------------------------------------------------------------
def _is_header(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Import):
        return all(a.name == "tracec.runtime" and a.asname == "_tracec_rt" for a in stmt.names)
    return isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) and t.id == "_tracec_m"
                                                for t in stmt.targets)


def _is_hook(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id.startswith(HOOK_PREFIX))


def _simple(arg: ast.expr) -> bool:
    if isinstance(arg, (ast.Tuple, ast.List)):
        return all(_simple(e) for e in arg.elts)
    if isinstance(arg, ast.Starred):
        return _simple(arg.value)
    return isinstance(arg, (ast.Constant, ast.Name))


def _payload_only(stmt: ast.stmt) -> bool:
    """A hook carrying only ids and names (`_tracec_e(0, (a,))`) may be injected or may wrap an original
    bare-name statement; `_tracec_v(3, f(x))` always wraps an original expression statement."""
    return _is_hook(stmt) and all(_simple(a) for a in stmt.value.args) and not stmt.value.keywords


def _same(a: ast.AST, b: ast.AST) -> bool:
    return type(a) is type(b) and a.lineno == b.lineno


def _name(node: ast.AST) -> str:
    return f"{type(node).__name__} at line {node.lineno}"


def compare_body(orig: list, out: list, module: bool = False) -> tuple[int, str] | None:
    """First (line, message) where `out` is not `orig` plus injected statements, else None."""
    i = 0
    for j, stmt in enumerate(out):
        if module and _is_header(stmt):
            continue
        want = orig[i] if i < len(orig) else None
        if want is not None and _same(want, stmt):
            if _payload_only(stmt) and _matched_later(want, out, j + 1):
                continue   # an injected hook before the statement that really is `want`
            problem = compare_node(want, stmt)
            if problem:
                return problem
            i += 1
        elif not _is_hook(stmt):
            if want is None:
                return stmt.lineno, f"output has an extra {_name(stmt)}"
            if type(want) is type(stmt):
                return want.lineno, f"{_name(want)} is at line {stmt.lineno} in the output"
            return want.lineno, f"{_name(want)}: the output has {_name(stmt)} in its place"
    if i < len(orig):
        return orig[i].lineno, f"{_name(orig[i])} is missing from the output"
    return None


def _matched_later(want: ast.stmt, out: list, start: int) -> bool:
    for stmt in out[start:]:
        if _same(want, stmt):
            return True
        if not _is_hook(stmt):
            return False
    return False


def compare_node(a: ast.AST, b: ast.AST) -> tuple[int, str] | None:
    """Same decorator lines, the same blocks inside (bodies, handlers, match cases), same end line.
    Blocks come before the end line so that the innermost moved statement is the one reported."""
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field, None)
        if not isinstance(x, list) or not isinstance(y, list):
            continue
        if field == "decorator_list":
            if [d.lineno for d in x] != [d.lineno for d in y]:
                return a.lineno, (f"decorators of {_name(a)} moved: lines {[d.lineno for d in x]} -> "
                                  f"{[d.lineno for d in y]}")
        elif any(isinstance(s, ast.stmt) for s in x + y):   # body, orelse, finalbody
            problem = compare_body(x, y)
            if problem:
                return problem
        elif any(isinstance(s, (ast.excepthandler, ast.match_case)) for s in x + y):
            if len(x) != len(y):
                return a.lineno, f"{_name(a)}: {len(x)} {field} in the original, {len(y)} in the output"
            for p, q in zip(x, y):
                p_at, q_at = (p.pattern, q.pattern) if isinstance(p, ast.match_case) else (p, q)
                if p_at.lineno != q_at.lineno:
                    return p_at.lineno, f"{_name(p_at)} is at line {q_at.lineno} in the output"
                problem = compare_body(p.body, q.body)
                if problem:
                    return problem
    if getattr(a, "end_lineno", None) != getattr(b, "end_lineno", None):
        return a.lineno, f"{_name(a)} ends at line {a.end_lineno}, in the output at {b.end_lineno}"
    return None


def count_lines(data: bytes) -> int:
    """Lines as Python numbers them: a missing final newline is not a line less."""
    parts = LINE_BREAK.split(data)
    return len(parts) - (parts[-1] == b"")


def check_file(job: tuple[str, str, str]) -> dict:
    rel, src_path, out_path = job
    src = Path(src_path).read_bytes()
    try:
        out = Path(out_path).read_bytes()
    except FileNotFoundError:
        return {"file": rel, "output": "missing", "failures": []}
    if out == src:
        # with --all only a file without functions is left as it is; one with a def copied without
        # a message is the "said 0 errors" case
        defines = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(ast.parse(src)))
        return {"file": rel, "output": "copied", "failures": [], "defines_functions": defines}
    failures = []
    before, after = count_lines(src), count_lines(out)
    if before != after:
        # told apart because it moves no statement (a module of plain definitions gets the header last)
        appended = after == before + 1 and out.rstrip(b"\r\n").rsplit(b"\n", 1)[-1].startswith(HEADER)
        failures.append({"check": "count", "line": None if not appended else after,
                         "message": ("header appended as a new last line: " if appended else "")
                         + f"{before} lines -> {after}"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = compile(out, rel, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
            compile(tree, rel, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            line = exc.lineno if isinstance(exc, SyntaxError) else None
            failures.append({"check": "compile", "line": line, "message": _describe(exc)})
            return {"file": rel, "output": "instrumented", "failures": failures}
        problem = compare_body(ast.parse(src).body, tree.body, module=True)
    if problem:
        failures.append({"check": "lines", "line": problem[0], "message": problem[1]})
    return {"file": rel, "output": "instrumented", "failures": failures}


def api_detail(job: tuple[str, str]) -> dict:
    """What `instrument_source` itself says about a file the CLI reported: the same failure, or the
    innermost tracec frame when it raises (it should not), or "succeeds" when the tree changed since."""
    rel, path = job
    from tracec.project import module_name_for_file
    from tracec.transforms import instrument_source

    data = Path(path).read_bytes()
    text = data.decode(tokenize.detect_encoding(io.BytesIO(data).readline)[0])
    try:
        result = instrument_source(text, path=rel, module=module_name_for_file(path), all_functions=True)
    except Exception as exc:   # noqa: BLE001 - the point is to see what it raises
        here = os.path.dirname(sys.modules["tracec.transforms"].__file__)
        ours = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(here)]
        where = f"{os.path.basename(ours[-1].filename)}:{ours[-1].lineno}" if ours else "?"
        return {"file": rel, "api": f"raises {_describe(exc)} in {where}"}
    problem = getattr(result, "internal", None) or result.error   # `.internal`: tracec's own failure
    return {"file": rel, "api": f"returns {problem}" if problem else "succeeds"}


# -- the CLI run ------------------------------------------------------------------------------------
def tracec_command() -> list[str]:
    beside = Path(sys.executable).with_name("tracec")   # the console script a user would run
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "tracec"]


def run_cli(root: Path, jobs: int, repeat: int, timeout: float) -> dict:
    runs = []
    for _ in range(repeat):
        for stale in (root / "build", root / ".tracec"):
            shutil.rmtree(stale, ignore_errors=True)
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(tracec_command() + ["instrument", "--all", "corpus", "-o", "build", "-j", str(jobs)],
                              cwd=root, capture_output=True, text=True, timeout=timeout, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append({"exit": proc.returncode, "wall_s": round(wall, 2), "stderr": proc.stderr,
                     "cpu_s": round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 2)})
    last = runs[-1]
    summary = [line for line in last["stderr"].splitlines() if line.startswith("tracec instrument:")]
    counts = {name: int(n) for n, name in re.findall(r"(\d+) ([a-z][a-z ]*[a-z])", summary[-1])} if summary else {}
    return {"command": " ".join(["tracec", "instrument", "--all", "corpus", "-o", "build", "-j", str(jobs)]),
            "exit_statuses": [r["exit"] for r in runs], "wall_s": [r["wall_s"] for r in runs],
            "median_wall_s": statistics.median(r["wall_s"] for r in runs), "cpu_s": [r["cpu_s"] for r in runs],
            "summary_line": summary[-1] if summary else None, "summary_counts": counts, "stderr": last["stderr"]}


def parse_messages(stderr: str, rels: set[str]) -> tuple[dict[str, list[dict]], list[str]]:
    """Per-file messages of the CLI (internal errors, errors, notes), and lines naming no corpus file."""
    per_file, other = defaultdict(list), []
    for line in stderr.splitlines():
        rel = next((line[:m.end() - 1] for m in re.finditer(r"\.py:", line)
                    if line[:m.end() - 1] in rels), None)
        if rel is None:
            if not line.startswith("tracec instrument:"):
                other.append(line)
            continue
        rest = line[len(rel) + 1:]   # "LINE[:COL]: message" or, in older builds, " message"
        at = re.match(r"(\d+):(?:\d+:)?\s*", rest)
        text = rest[at.end():] if at else rest.strip()
        kind = "internal" if "internal error" in text else "note" if text.startswith("note:") else "error"
        per_file[rel].append({"kind": kind, "line": int(at.group(1)) if at else None, "message": text})
    return per_file, other


def cause(failure: dict) -> str:
    """Group key: the check and its message with numbers and quoted text blanked."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", failure["message"])
    return f"{failure['check']}: " + re.sub(r"\d+", "N", text)[:160]


# -- one interpreter --------------------------------------------------------------------------------
def measure(args) -> int:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    environment = _timing.environment()   # now: the commit the CLI runs, and the load it starts under
    found = subprocess.run([sys.executable, "-c", "import tracec.transforms as t; print(t.__file__)"],
                           capture_output=True, text=True, cwd=HERE.parent.parent, check=False)
    environment["tracec_transforms"] = found.stdout.strip()   # the commit is this repo's, the code may not be
    root = HERE / ".work" / "real_code" / tag
    files, skipped = collect(corpus_roots(args.stdlib, args.corpus), args.packages)
    if args.limit:
        files = dict(list(files.items())[:args.limit])
    print(f"{sys.executable} (Python {sys.version.split()[0]}): {len(files)} .py files", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [(rel, str(path)) for rel, path in files.items()]
        broken = {rel: err for rel, err in pool.map(precheck, jobs, chunksize=64) if err}
    shutil.rmtree(root / "corpus", ignore_errors=True)
    for rel, path in files.items():
        if rel not in broken:
            (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / "corpus" / rel)
    (root / "pyproject.toml").write_text("# scratch project root of benchmarks/real_code.py\n")
    cli = run_cli(root, args.jobs, args.repeat, args.timeout)
    print(f"  cli: exit {cli['exit_statuses']}, {cli['median_wall_s']} s wall; {cli['summary_line']}", flush=True)
    rels = {f"corpus/{rel}" for rel in files if rel not in broken}
    messages, other_stderr = parse_messages(cli.pop("stderr"), rels)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [(rel, str(root / rel), str(root / "build" / rel)) for rel in sorted(rels)]
        checked = list(pool.map(check_file, jobs, chunksize=32))
        reported = sorted(rel for rel, found in messages.items() if any(m["kind"] != "note" for m in found))
        details = {d["file"]: d["api"] for d in pool.map(api_detail, [(r, str(root / r)) for r in reported])}
    failures, allowed, output = [], [], defaultdict(int)   # allowed: appended headers, with the flag
    for entry in checked:
        rel = entry["file"]
        output[entry["output"]] += 1
        for m in messages.get(rel, []):
            if m["kind"] != "note":
                check = "left uninstrumented" if m["kind"] == "internal" else "cli error"
                failures.append({"file": rel, "check": check, "line": m["line"], "message": m["message"],
                                 "api": details.get(rel)})
        if entry["output"] == "missing" and rel not in messages:
            failures.append({"file": rel, "check": "not built", "line": None,
                             "message": "no output and no message from tracec instrument"})
        if entry.get("defines_functions") and rel not in messages:
            failures.append({"file": rel, "check": "silently copied", "line": None,
                             "message": "defines functions, copied unchanged, no message from tracec instrument"})
        for f in entry["failures"]:
            if not args.fail_appended_header and f["message"].startswith("header appended"):
                allowed.append({"file": rel, **f})
            else:
                failures.append({"file": rel, **f})
    groups = defaultdict(list)
    for failure in failures:
        groups[cause(failure)].append(failure)
    run = {"python": sys.version.split()[0], "executable": sys.executable, "environment": environment,
           "commit_at_details": _timing.environment()["commit"], "files": len(files), "built": len(rels),
           "corpus_roots": {k: str(v) for k, v in corpus_roots(args.stdlib, args.corpus).items()},
           "packages": args.packages, "limit": args.limit, "cli": cli, "outputs": dict(output),
           "excluded": {"does_not_compile_before": [{"file": r, "reason": e} for r, e in sorted(broken.items())],
                        "folders_not_walked": skipped},
           "left_uninstrumented": sorted({f["file"] for f in failures if f["check"] == "left uninstrumented"}),
           "notes": {r: [m["message"] for m in ms if m["kind"] == "note"] for r, ms in messages.items()
                     if any(m["kind"] == "note" for m in ms)},
           "allowed_appended_header": allowed, "stderr_other": other_stderr,
           "failing_files": len({f["file"] for f in failures}),
           "causes": {key: {"files": len(items), "examples": [f"{f['file']}:{f['line'] or ''}" for f in items[:5]]}
                      for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1]))},
           "failures": failures}
    report(run)
    save(run, "real_code" if not (args.corpus or args.packages or args.limit) else "real_code_partial")   # keep full runs
    return 1 if failures or any(cli["exit_statuses"]) or other_stderr else 0


def report(run: dict) -> None:
    cli, out, checks = run["cli"], run["outputs"], defaultdict(int)
    for f in run["failures"]:
        checks[f["check"]] += 1
    row = {"python": run["python"], "files": run["files"], "excluded": len(run["excluded"]["does_not_compile_before"]),
           "built": run["built"], "wall s": cli["median_wall_s"], "exit": ",".join(map(str, cli["exit_statuses"])),
           "instrumented": out.get("instrumented", 0), "copied": out.get("copied", 0),
           "left uninstr.": checks["left uninstrumented"],
           "cli errors": checks["cli error"] + checks["not built"] + checks["silently copied"],
           "compile": checks["compile"], "lines": checks["lines"], "count": checks["count"],
           "failing files": run["failing_files"]}
    _timing.print_table(f"tracec instrument --all over {', '.join(run['corpus_roots'].values())} "
                        f"(Python {run['python']}, commit {run['environment']['commit']})", list(row), [list(row.values())])
    if run["causes"]:
        _timing.print_table("failures by cause", ["cause", "files", "first example"],
                            [[k, v["files"], v["examples"][0]] for k, v in run["causes"].items()])
    for line in run["stderr_other"][:10]:
        print(f"  unexpected stderr: {line}")


def save(run: dict, name: str) -> None:
    path = Path(_timing.RESULTS_DIR) / f"{name}.json"
    try:
        runs = json.loads(path.read_text("utf-8")).get("runs", {})
    except (OSError, ValueError):
        runs = {}
    runs[f"{sys.implementation.name}-{run['python']}"] = run
    _timing.write_results(name, {"runs": runs})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", metavar="PATH",
                        help="measure with this interpreter (its own site-packages); repeatable")
    parser.add_argument("--stdlib", action="store_true", help="add the interpreter's standard library")
    parser.add_argument("--corpus", action="append", metavar="DIR",
                        help="instrument the .py files of DIR instead of site-packages; repeatable")
    parser.add_argument("--packages", nargs="+", metavar="NAME", help="only these top-level packages/modules")
    parser.add_argument("--limit", type=int, help="only the first N files (sorted by path)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="workers for the CLI and the checks")
    parser.add_argument("--repeat", type=int, default=1, help="cold CLI runs; the median wall time is reported")
    # docs/COMPILER.md: a module of plain definitions gets its header as a new last line, which moves nothing
    parser.add_argument("--fail-appended-header", action="store_true",
                        help="count a header added as a new last line as a failure (by default it is listed)")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per CLI run")
    args = parser.parse_args()
    if not args.python:
        return measure(args)
    # each interpreter measures itself, so compile() and ast see exactly what that Python sees
    argv = [a for i, a in enumerate(sys.argv) if i and a != "--python" and sys.argv[i - 1] != "--python"
            and not a.startswith("--python=")]
    return max(subprocess.run([python, __file__, *argv], check=False).returncode for python in args.python)


if __name__ == "__main__":
    sys.exit(main())

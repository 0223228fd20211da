"""Running generated programs that may do anything, and comparing them with their instrumented versions.

Used by fuzz_grammar.py. `unsafe` screens a program statically: it runs only when it imports nothing and
names no builtin beyond a pure allowlist (no files, processes, exec/eval, introspection, ids or hashes) and
no dunder attribute. `run` executes one program in a fresh process with fuzz_semantics' worker (which
reports the escaping exception's type and message, the exit status and the captured output): in a temp
dir, `-s -P` and a minimal environment (not `-I`, which drops PYTHONHASHSEED: set order would then differ
between runs), stdin closed, rlimits on CPU seconds, address space and file size, the process group killed
on timeout. `check_run` runs the plain program, then the instrumented one with recording off and on
(TRACEC_RECORD=1, its graph file checked), and compares them with memory addresses masked.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import fuzz_semantics  # its WORKER script and difference()

MEMORY_BYTES, FILE_BYTES = 1 << 30, 64 << 20
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
TOO_HARD = (SyntaxError, ValueError, RecursionError, MemoryError)
SAFE_BUILTINS = frozenset(
    "abs all any ascii bin bool bytearray bytes callable chr classmethod complex dict divmod enumerate filter "
    "float format frozenset hex int isinstance issubclass iter len list map max min next object oct ord pow "
    "print property range repr reversed round set slice sorted staticmethod str sum super tuple type zip "
    "None True False Ellipsis NotImplemented".split()) | {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)}
SAFE_DUNDERS = frozenset({"__name__", "__doc__", "__debug__"})


def unsafe(text: str) -> str | None:
    """Why running this program could reach beyond its own process and temp dir, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nodes = list(ast.walk(ast.parse(text)))
    except TOO_HARD:
        return "too deep to screen"
    for node in nodes:
        if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and node.module != "__future__":
            return "imports"
        if isinstance(node, ast.Name) and (node.id in vars(builtins) and node.id not in SAFE_BUILTINS
                                           or node.id.startswith("__") and node.id not in SAFE_DUNDERS):
            return f"uses {node.id}"
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return "dunder attribute"
    return None


def _limits(cpu_seconds: int):
    def apply() -> None:
        import resource

        for limit, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_AS, MEMORY_BYTES),
                             (resource.RLIMIT_FSIZE, FILE_BYTES), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (value, value))
    return apply


def run(code: str, header: str | None, mode: str, workdir: str, timeout: float, graph: bool = False) -> dict:
    """One run in a fresh sandboxed process: fuzz_semantics' result dict, or {"crashed": why}."""
    jobs_file, graph_file = os.path.join(workdir, f"job-{mode}.json"), os.path.join(workdir, "graph.json")
    with open(jobs_file, "w", encoding="utf-8") as fh:
        json.dump([{"code": code, "header": header}], fh)
    env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    if mode == "record":
        env.update(TRACEC_RECORD="1", TRACEC_GRAPH=graph_file)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-s", "-P", "-c", fuzz_semantics.WORKER, jobs_file, "0"], cwd=workdir,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_limits(int(timeout) + 1), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"crashed": f"timeout after {timeout:.0f}s"}
    err = err.decode("utf-8", "replace").strip()[-300:]
    results = [json.loads(line[2:]) for line in out.decode("utf-8", "replace").splitlines() if line.startswith("@@")]
    if not results:
        return {"crashed": f"exit {proc.returncode}: {err}"}
    result = dict(results[0], seconds=time.perf_counter() - started, worker_stderr=err)
    if mode == "record" and graph:
        try:
            with open(graph_file, encoding="utf-8") as fh:
                data = json.load(fh)
            ok = data.get("version") == 1 and isinstance(data.get("nodes"), list)
            result["graph"] = None if ok else "graph: not version 1 with nodes"
        except (OSError, ValueError) as exc:
            result["graph"] = f"graph: {exc}"
    return {k: ADDRESS.sub("0x?", v) if isinstance(v, str) else v for k, v in result.items()}


def check_run(source: str, result, timeout: float) -> tuple[str, str]:
    """(run status, detail) for a case whose instrumented code is `result.code`."""
    if not result.changed:
        return "skipped-unchanged", "instrumented code is the source"
    why = unsafe(source)
    if why:
        return "skipped-unsafe", why
    with tempfile.TemporaryDirectory(prefix="tracec-grammar-") as workdir:
        plain = run(source, None, "plain", workdir, timeout)
        if "crashed" in plain or plain["exc"] == "MemoryError":
            return "skipped-not-runnable", plain.get("crashed") or "MemoryError"
        header = None if result.header_placed else result.header
        slow = min(60.0, max(timeout, 50 * plain["seconds"]))
        problems = []
        for mode in ("off", "record"):
            other = run(result.code, header, mode, workdir, slow, graph=True)
            if "crashed" in other:
                status = "instrumented-timeout" if other["crashed"].startswith("timeout") else "instrumented-crashed"
                return status, f"recording {mode}: {other['crashed']}"
            diff = fuzz_semantics.difference(plain, other)
            problems += [f"recording {mode}: {issue}" for issue in (diff, other["worker_stderr"], other.get("graph"))
                         if issue]
        if not problems:
            return "same", ""
        again = run(source, None, "plain", workdir, timeout)
        if "crashed" in again or fuzz_semantics.difference(plain, again):
            return "skipped-nondeterministic", "two plain runs differ"
        return "mismatch", "\n".join(problems)

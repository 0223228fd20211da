"""`tracec instrument`: write instrumented copies of a source tree under a build directory.

The build directory mirrors the tree relative to the project root.  Files that need no
instrumentation are copied byte for byte, so ``python .tracec/build/app.py`` runs.  A small
per-file cache under ``.tracec/cache/`` remembers (tracec version, mode, path, source hash) ->
output hash, so a second run over an unchanged tree reads and hashes files but parses none.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import io
import json
import os
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tracec.errors import UsageError
from tracec.fileio import sha256_hex, write_atomic
from tracec.importhook import tracec_fingerprint
from tracec.project import (
    PARALLEL_MIN_FILES,
    discover,
    display_path,
    find_project_root,
    is_under,
    module_name_for_file,
    tracec_version,
)

PROGRESS_MIN_FILES = 50
BUILD_FORMAT = 2  # bump when the output for the same input and tracec version changes


@dataclass
class Item:
    """One source file and what happened to it."""

    src: Path
    rel: str  # posix path relative to the project root
    module: str
    out: Path
    data: bytes = b""
    encoding: str = "utf-8"
    key: str = ""
    status: str = "pending"  # cached | copied | instrumented | error | internal
    output: bytes | None = None  # the bytes DIR/rel should hold, when computed
    message: str = ""
    functions: int = 0
    parsed: bool = False
    text: str = ""  # decoded source, when it must be instrumented
    instrumented: str = ""  # instrumented text, for --diff


def symlink_below(folder: Path, path: Path) -> Path | None:
    """The first symbolic link among `path`'s parent folders below `folder`, if any: writing a file there
    would land wherever the link points (a link in the build tree to the sources overwrote them)."""
    try:
        parts = path.parent.relative_to(folder).parts
    except ValueError:
        return path.parent
    current = folder
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def build_directory(out: str | None, root: Path) -> Path:
    """The build directory: inside the project root, outside .git/, and not reached through a link."""
    given = Path(os.path.abspath(out if out else root / ".tracec" / "build"))
    if not is_under(given, root):
        raise UsageError(f"{out or given}: the build directory must be inside the project root {root}")
    if ".git" in (part.lower() for part in given.relative_to(root).parts):
        raise UsageError(f"{out or given}: the build directory may not be inside .git/")
    link = symlink_below(root, given / "file")
    if link is not None:
        raise UsageError(f"{display_path(link)}: is a symbolic link; tracec never writes through one: remove it "
                         "or choose another build directory with -o")
    return given


def python_syntax_error(source: str | bytes, rel: str) -> str:
    """`path:line:col: syntax error: message` from Python's own parser, or "" when it parses."""
    try:
        compile(source, rel, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return f"{rel}:{exc.lineno or 1}:{exc.offset or 0}: syntax error: {exc.msg}"
    except ValueError as exc:  # e.g. NUL bytes
        return f"{rel}:1:0: {exc}"
    return ""


def instrument_one(job: tuple[str, str, str, bool]) -> tuple[str | None, str, int, str]:
    """(text, rel, module, all_functions) -> (code, message, functions, verdict); runs in workers.

    verdict "ok": `code` is the output and `message` an optional note; "error": the file is not valid
    Python (`message` says where); "internal": tracec could not instrument it (its bug or limit), so
    the original is to be used and `message` says why.
    """
    text, rel, module, all_functions = job
    try:
        from tracec.transforms import instrument_source

        result = instrument_source(text, path=rel, module=module, all_functions=all_functions)
    except Exception as exc:   # instrument_source never raises; if it did, one file must not stop the tree
        return None, f"{rel}:1: internal error: {type(exc).__name__}: {exc}; file left uninstrumented", 0, "internal"
    if result.internal is not None:
        return None, str(result.internal), 0, "internal"
    if result.error is not None:
        return None, str(result.error), 0, "error"
    code, note = result.code, ""
    if code != text and result.header and not result.header_placed:
        from tracec.transforms.header import header_on_new_line

        code = header_on_new_line(code, result.header)
        note = (f"{rel}: note: no line runs early enough to carry the runtime header; added one at the top, "
                "so the build copy's lines shift by one")
    return code, note, result.functions, "ok"


class BuildCache:
    """One JSON entry per (file, mode): the key of the last build and the output's hash."""

    def __init__(self, root: Path):
        self.folder = root / ".tracec" / "cache"

    def _entry_path(self, rel: str, all_functions: bool) -> Path:
        name = sha256_hex(f"{rel}\0{all_functions}".encode())[:32]
        return self.folder / f"{name}.json"

    def load(self, rel: str, all_functions: bool) -> dict:
        try:
            return json.loads(self._entry_path(rel, all_functions).read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def store(self, rel: str, all_functions: bool, entry: dict) -> None:
        write_atomic(self._entry_path(rel, all_functions), json.dumps(entry).encode())


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def unified_diff(rel: str, before: str, after: str) -> str:
    """Unified diff a/rel -> b/rel that `git apply` and `patch -p1` accept."""
    out = []
    for line in difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{rel}",
        tofile=f"b/{rel}",
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


class Builder:
    """Runs one `tracec instrument` invocation."""

    def __init__(self, *, root: Path, out_dir: Path, all_functions: bool, mode: str, jobs: int,
                 stdout: TextIO, stderr: TextIO, fail_on_change: bool = False):
        self.root, self.out_dir, self.all_functions = root, out_dir, all_functions
        self.fail_on_change, self.rewritten = fail_on_change, 0   # like black: exit 1 once it rewrote a file
        self.mode = mode  # write | check | diff | check+diff
        self.jobs = max(1, jobs)
        self.stdout, self.stderr = stdout, stderr
        self.cache = BuildCache(root)
        self.version = tracec_version()
        selection = "all" if all_functions else "annotated"
        # The cache key: tracec build (version + its source files), mode, then path and content.
        self.fingerprint = tracec_fingerprint() + f"\0{BUILD_FORMAT}\0{selection}\0".encode()

    def run(self, files: list[Path]) -> int:
        items = [self._item(path) for path in files]
        with _progress(len(items), self.stderr) as advance:
            to_parse = []
            for item in items:
                if self._plan(item):
                    advance()
                else:
                    to_parse.append(item)
            self._parse(to_parse, advance)
        for item in items:
            if item.status in ("error", "internal"):
                print(item.message, file=self.stderr)
        stale = self._finish(items)
        self._summary(items, stale)
        if any(item.status == "internal" for item in items):
            return 123
        failed = any(item.status == "error" for item in items)
        return 1 if failed or (stale and "check" in self.mode) or self.rewritten else 0

    def _item(self, path: Path) -> Item:
        rel = path.relative_to(self.root).as_posix()
        return Item(src=path, rel=rel, module=module_name_for_file(path), out=self.out_dir / rel)

    def _plan(self, item: Item) -> bool:
        """Read and classify; True when the item is settled without parsing."""
        try:
            item.data = item.src.read_bytes()
        except OSError as exc:
            item.status, item.message = "error", f"{item.rel}:1:0: cannot read: {exc.strerror}"
            return True
        item.key = sha256_hex(self.fingerprint + f"{item.rel}\0{item.module}\0".encode() + item.data)
        entry = {} if self.mode == "diff" else self.cache.load(item.rel, self.all_functions)
        if entry.get("key") == item.key:
            if entry.get("error"):
                item.status, item.message = "error", entry["error"]
                return True
            existing = _read_or_none(item.out)
            if existing is not None and sha256_hex(existing) == entry.get("out"):
                item.status, item.output = "cached", existing
                return True
            if entry.get("copy"):
                item.status, item.output = "copied", item.data
                return True
        try:
            item.encoding = tokenize.detect_encoding(io.BytesIO(item.data).readline)[0]
            text = item.data.decode(item.encoding)
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            item.status, item.message = "error", f"{item.rel}:1:0: cannot decode source: {exc}"
            return True
        from tracec.transforms import wants_instrumentation

        if not wants_instrumentation(text, self.all_functions):
            # Copied as is, but a broken file must still be reported: Python's own (fast) parser.
            item.parsed = True
            error = python_syntax_error(item.data, item.rel)
            if error:
                item.status, item.message = "error", error
            else:
                item.status, item.output = "copied", item.data
            return True
        item.text = text
        return False

    def _parse(self, items: list[Item], advance) -> None:
        jobs = [(item.text, item.rel, item.module, self.all_functions) for item in items]
        if self.jobs > 1 and len(jobs) >= PARALLEL_MIN_FILES:
            from concurrent.futures import ProcessPoolExecutor

            import tracec.transforms  # noqa: F401 - forked workers inherit the loaded LibCST

            workers = min(self.jobs, len(jobs))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                chunk = max(1, len(jobs) // (workers * 4))
                results = pool.map(instrument_one, jobs, chunksize=chunk)
                self._collect(items, jobs, results, advance)
        else:
            self._collect(items, jobs, map(instrument_one, jobs), advance)

    def _collect(self, items, jobs, results, advance) -> None:
        for item, job, (code, message, functions, verdict) in zip(items, jobs, results):
            item.parsed = True
            advance()
            if verdict == "internal":   # the original is built instead: the tree still runs
                item.status, item.message, item.output = "internal", message, item.data
                continue
            if code is None:
                item.status, item.message, item.output = "error", message, None
                continue
            if message:
                print(message, file=self.stderr)  # a note; the file is still built
            if code == job[0]:
                item.status, item.output = "copied", item.data
            else:
                item.status, item.functions = "instrumented", functions
                item.output = code.encode(item.encoding)
                item.instrumented = code

    def _finish(self, items: list[Item]) -> list[tuple[str, Item]]:
        """Write outputs / print diffs / find stale files, by mode."""
        stale = []
        for item in items:
            if "diff" in self.mode and item.status == "instrumented":
                self.stdout.write(unified_diff(item.rel, item.text, item.instrumented))
            if "check" in self.mode and item.status not in ("error", "internal", "cached"):
                existing = _read_or_none(item.out)
                if existing is None:
                    stale.append(("missing", item))
                elif existing != item.output:
                    stale.append(("out of date", item))
            if self.mode == "write":
                self._write(item)
        for reason, item in stale:
            print(f"{reason}: {display_path(item.out)}", file=self.stdout)
        return stale

    def _write(self, item: Item) -> None:
        if item.status == "internal":   # written as is, never cached: every run reports it again
            self._write_output(item)
            return
        entry = {"key": item.key, "version": self.version, "path": item.rel}
        if item.status == "error":
            entry["error"] = item.message
        else:
            if item.status != "cached":
                self._write_output(item)
            entry["out"] = sha256_hex(item.output)
            entry["copy"] = item.output == item.data
        self.cache.store(item.rel, self.all_functions, entry)

    def _write_output(self, item: Item) -> None:
        if _read_or_none(item.out) == item.output:
            return
        link = symlink_below(self.out_dir, item.out)
        if link is not None:
            item.status = "error"
            item.message = (f"{display_path(item.out)}: not written: {display_path(link)} is a symbolic link and tracec "
                            "never writes through one; remove it from the build directory")
            print(item.message, file=self.stderr)
            return
        write_atomic(item.out, item.output, mode=item.src.stat().st_mode & 0o7777)
        if self.fail_on_change:
            self.rewritten += 1
            print(f"rewrote: {display_path(item.out)}", file=self.stdout)

    def _summary(self, items: list[Item], stale: list) -> None:
        count = {name: 0 for name in ("instrumented", "copied", "cached", "error", "internal")}
        for item in items:
            count[item.status] = count.get(item.status, 0) + 1
        functions = sum(item.functions for item in items)
        parsed = sum(item.parsed for item in items)
        text = (
            f"tracec instrument: {len(items)} files: {count['instrumented']} instrumented "
            f"({functions} functions), {count['copied']} copied, {count['cached']} cached, "
            f"{count['error']} errors, {parsed} parsed"
        )
        if count["internal"]:
            text += f", {count['internal']} left uninstrumented by a tracec error (exit 123)"
        if "check" in self.mode:
            text += f"; {len(stale)} stale in {display_path(self.out_dir)}"
        elif self.mode == "write":
            text += f" -> {display_path(self.out_dir)}"
        print(text, file=self.stderr)


@contextlib.contextmanager
def _progress(total: int, stream: TextIO):
    """Yields an `advance()` callable; draws a rich bar only for big trees on a terminal."""
    if total <= PROGRESS_MIN_FILES or not getattr(stream, "isatty", lambda: False)():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("instrumenting", total=total)
        yield lambda: bar.advance(task)


def main(args: argparse.Namespace) -> int:
    """`tracec instrument`; returns the exit status."""
    root = find_project_root()
    out_dir = build_directory(args.output, root)
    problems: list[str] = []
    files = discover(args.paths, root, out_dir, problems)
    mode = "check+diff" if args.check and args.diff else "check" if args.check else "diff" if args.diff else "write"
    builder = Builder(root=root, out_dir=out_dir, all_functions=args.all_functions, mode=mode,
                      jobs=args.jobs or os.cpu_count() or 1, stdout=sys.stdout, stderr=sys.stderr,
                      fail_on_change=args.fail_on_change)
    for problem in problems:
        print(problem, file=sys.stderr)
    status = builder.run(files)
    return max(status, 1) if problems and status in (0, 1) else status

"""`tracec check [PATH...]`: fast, read-only checks for editors, CI and pre-commit. No LLM, and the
user's code is only parsed, never imported or run.

Output is one problem per line, `path:line:col: TC### message` with the path relative to the current
directory (ruff's format, so editors and CI annotate it), then a summary on stderr. Exit status: 0 clean,
1 problems, 2 usage error, 123 internal error (the CLI's catch-all).

Checked: the annotations in every Python file under PATHs (rules in `tracec.commands.check_rules`), instrumented
build output inside source folders (TC301), temp files a killed tracec write left beside them (TC302),
pending patches that no longer apply (TC401: all of them
without PATHs, else those whose target is among the checked files, so a pre-commit run names the patches
the staged edits made stale), and files in `.tracec/` git would track (TC501).
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from tracec.errors import EXIT_FINDINGS, EXIT_OK
from tracec.fileio import TEMP_PREFIX, TEMP_SUFFIX
from tracec.project import PARALLEL_MIN_FILES, discover, display_path, find_project_root

# set by the runtime header the transform puts into every instrumented module (transforms/__init__.py)
_HEADER_NAME = "_tracec_m"
_GIT_TIMEOUT = 30
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX))   # mkstemp's names
_WORD = re.compile(rb"\btracec\b")   # not "settrace_call": an annotation, pragma or build header says tracec


@dataclass(frozen=True)
class Finding:
    path: str         # relative to the current directory, like ruff
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


def _scan(tree: ast.Module, text: str) -> tuple[tuple[int, int] | None, bool]:
    """(where the file binds the runtime header's name, i.e. it is tracec's build output; whether it
    imports tracec in a way the transform can see (`import tracec`, `from tracec import`) or the rules
    report (`from tracec.api import`)). Without such an import no annotation rule can fire."""
    imports = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == _HEADER_NAME and isinstance(node.ctx, ast.Store):
            prefix = text.splitlines()[node.lineno - 1].encode("utf-8")[: node.col_offset]
            return (node.lineno, len(prefix.decode("utf-8", "replace")) + 1), imports   # ast counts bytes
        if isinstance(node, ast.Import):
            imports = imports or any(alias.name == "tracec" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imports = imports or (node.level == 0 and node.module in ("tracec", "tracec.api"))
    return None, imports


def screen_file(path: Path, shown: str) -> tuple[list[Finding], str | None]:
    """The cheap part of checking a file (Python's own parser): (problems found so far, the text when
    the annotation rules must look at it with LibCST)."""
    data = path.read_bytes()
    if b"tracec" not in data or not _WORD.search(data):   # nothing tracec would see (`in` is the fast test)
        return [], None
    try:
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return [Finding(shown, 1, 1, "TC001", f"cannot decode the source ({exc}); save it as UTF-8")], None
    try:
        tree = ast.parse(text, shown)
    except SyntaxError as exc:
        return [Finding(shown, exc.lineno or 1, max(exc.offset or 1, 1), "TC001", f"syntax error: {exc.msg}; "
                        "fix it so tracec can instrument the file")], None
    except ValueError as exc:   # e.g. NUL bytes
        return [Finding(shown, 1, 1, "TC001", f"cannot parse: {exc}")], None
    header, imports = _scan(tree, text)
    if header is not None:
        return [Finding(shown, *header, "TC301", "instrumented build output committed into a source folder; "
                        "delete it and build into .tracec/build (or pass --build-dir)")], None
    return [], text if imports else None


def annotation_findings(job: tuple[str, str]) -> list[Finding]:
    """(text, shown path) -> the annotation rules' problems; runs in worker processes for big trees."""
    from tracec.commands.check_rules import annotation_problems  # LibCST: loaded only when a file needs it

    text, shown = job
    return [Finding(shown, p.line, p.col, p.code, p.message) for p in annotation_problems(text, shown)]


def check_files(files: list[Path], jobs: int) -> list[Finding]:
    findings: list[Finding] = []
    to_parse = []
    for path in files:
        shown = display_path(path)
        found, text = screen_file(path, shown)
        findings.extend(found)
        if text is not None:
            to_parse.append((text, shown))
    if jobs > 1 and len(to_parse) >= PARALLEL_MIN_FILES:   # the same trade-off as `tracec instrument`
        from concurrent.futures import ProcessPoolExecutor

        import tracec.commands.check_rules  # noqa: F401 - forked workers inherit the loaded LibCST

        workers = min(jobs, len(to_parse))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(annotation_findings, to_parse, chunksize=max(1, len(to_parse) // (workers * 4))))
    else:
        results = [annotation_findings(job) for job in to_parse]
    for found in results:
        findings.extend(found)
    return findings


def leftover_temp_files(files: list[Path]) -> list[Finding]:
    """TC302: a temp file of write_atomic beside a checked file. It is only left when the writer died
    without running Python's cleanup (SIGKILL, power cut) before os.replace, so the file it was to
    replace still holds its old content and the temp file is garbage."""
    findings = []
    for folder in sorted({path.parent for path in files}):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        findings.extend(Finding(display_path(folder / name), 1, 1, "TC302", "leftover temp file of a tracec write "
                                "that was killed before it finished; the file it was replacing is unchanged: "
                                "delete this one") for name in names if _TEMP_NAME.fullmatch(name))
    return findings


def stale_patches(root: Path, targets: set[Path] | None) -> list[Finding]:
    """Pending patches that `tracec apply` would refuse, checked in order like `tracec apply --check`
    (each sees the files as the patches before it leave them). `targets`: only patches to these files."""
    from tracec.patches.apply import apply_patch, pending_patches
    from tracec.patches.patch_file import read_patch
    from tracec.patches.splice import PatchError

    findings = []
    contents: dict[Path, bytes] = {}
    for patch in pending_patches(root):
        try:
            if targets is not None and (root / read_patch(patch).target).resolve() not in targets:
                continue
            apply_patch(root, patch, check=True, contents=contents)
        except PatchError as exc:
            findings.append(Finding(display_path(patch), 1, 1, "TC401", f"pending patch no longer applies: {exc}; "
                                    "rerun tracec optimize or delete the patch"))
    return findings


def _git_files(root: Path, *options: str) -> list[str] | None:
    """`git ls-files OPTIONS -- .tracec` run in root; None without git or outside a repository."""
    try:
        result = subprocess.run(["git", "ls-files", "-z", *options, "--", ".tracec"], cwd=root,
                                capture_output=True, timeout=_GIT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return [name for name in result.stdout.decode("utf-8", "replace").split("\0") if name]


def tracec_dir_not_ignored(root: Path) -> list[Finding]:
    """TC501 when git would track a file in .tracec/: one not ignored (it would be committed with
    `git add .`) or one already in the index. Quiet without git, and without a .tracec/ holding files,
    so a repository that never ran tracec (a pre-commit hook's first commit) passes."""
    if not (root / ".tracec").is_dir():
        return []
    untracked = _git_files(root, "--others", "--exclude-standard")
    tracked = [] if untracked else _git_files(root, "--cached")
    if untracked:
        message = (f'.tracec/ is not git-ignored, so git would track {untracked[0]} (it holds caches, runs and '
                   'patches); add ".tracec/" to .gitignore')
    elif tracked:
        message = (f"git tracks {tracked[0]} in .tracec/ (caches, runs and patches); run `git rm -r --cached "
                   '.tracec` and add ".tracec/" to .gitignore')
    else:
        return []
    return [Finding(display_path(root / ".gitignore"), 1, 1, "TC501", message)]


def main(args: argparse.Namespace) -> int:
    """`tracec check`; returns the exit status."""
    root = find_project_root()
    build_dir = Path(os.path.realpath(args.build_dir if getattr(args, "build_dir", None)
                                      else root / ".tracec" / "build"))
    files = discover(args.paths or [str(root)], root, build_dir)
    findings = check_files(files, os.cpu_count() or 1)
    findings.extend(leftover_temp_files(files))
    findings.extend(stale_patches(root, set(files) if args.paths else None))
    findings.extend(tracec_dir_not_ignored(root))
    for finding in findings:
        print(finding)
    if not findings:
        print("All checks passed.", file=sys.stderr)
        return EXIT_OK
    count, where = len(findings), len({finding.path for finding in findings})
    print(f"Found {count} problem{'s' * (count != 1)} in {where} file{'s' * (where != 1)}.", file=sys.stderr)
    return EXIT_FINDINGS

"""`tracec report [RUN_ID] [-o OUT.html]`: the HTML page of an optimize run (tracec.optimize.report_page);
prints its path. Without RUN_ID, the newest run of the project. Exit 2 when there is no such run."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracec.errors import UsageError
from tracec.fileio import write_atomic
from tracec.project import find_project_root


def run_patches(root: Path, run_id: str) -> list[tuple[str, str]]:
    """(file name, text) of the pending patches the run wrote, oldest first."""
    from tracec.patches.apply import pending_patches
    from tracec.patches.patch_file import PatchError, read_patch

    found = []
    for path in pending_patches(root):
        try:
            patch = read_patch(path)
        except PatchError:
            continue
        if patch.summary.startswith(f"tracec optimize run {run_id}:"):
            found.append((path.name, path.read_text(encoding="utf-8", errors="replace")))
    return found


def main(args: argparse.Namespace) -> int:
    from tracec.optimize.report_page import render

    root = find_project_root(None)
    runs = root / ".tracec" / "runs"
    if args.run_id is None:
        done = sorted(p.name for p in runs.glob("*") if (p / "state.json").is_file()) if runs.is_dir() else []
        if not done:
            raise UsageError(f"no optimize run in {runs}; run `tracec optimize TASK.py` first")
        run_id = done[-1]
    else:
        run_id = args.run_id
        if any(c in run_id for c in "/\\\0") or run_id in ("", ".", "..") or not (runs / run_id / "state.json").is_file():
            raise UsageError(f"no run {run_id!r} in {runs} (the run id `tracec optimize` printed)")
    target = Path(args.output) if args.output else runs / run_id / "report.html"
    write_atomic(target, render(runs / run_id, run_patches(root, run_id)))
    print(target)
    return 0

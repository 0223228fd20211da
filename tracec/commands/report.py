"""`tracec report [RUN_ID] [-o OUT.html]`: the HTML page of an optimize run (tracec.optimize.report_page);
prints its path. Without RUN_ID, the newest run of the project. Exit 2 when there is no such run."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracec.errors import UsageError
from tracec.fileio import write_atomic
from tracec.project import find_project_root


def run_patches(root: Path, summary: str) -> list[tuple[str, str]]:
    """(file name, text) of the pending patches whose summary begins with `summary`, oldest first."""
    from tracec.patches.apply import pending_changes

    found = sorted(p.path for p in pending_changes(root).values() if p.summary.startswith(summary))
    return [(path.name, path.read_text(encoding="utf-8", errors="replace")) for path in found]


def main(args: argparse.Namespace) -> int:
    from tracec.optimize.report_page import render
    from tracec.optimize.run_state import RunStore

    root = find_project_root(None)
    runs = root / ".tracec" / "runs"
    run_id = args.run_id
    if run_id is None:
        done = sorted(p.name for p in runs.glob("*") if (p / "state.json").is_file()) if runs.is_dir() else []
        if not done:
            raise UsageError(f"no optimize run in {runs}; run `tracec optimize TASK.py` first")
        run_id = done[-1]
    try:
        store = RunStore.open(root, run_id)
    except ValueError as exc:   # no such run, or a name that is no run folder
        raise UsageError(str(exc)) from None
    target = Path(args.output) if args.output else store.folder / "report.html"
    write_atomic(target, render(store.folder, run_patches(root, store.patch_summary)))
    print(target)
    return 0

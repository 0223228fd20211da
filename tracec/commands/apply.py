"""`tracec apply [PATCH...] [--check] [--revert]`: the patches to apply, in order, one run at a time (the
logic of applying one patch is tracec.patches.apply)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from tracec.errors import EXIT_OK, UsageError
from tracec.fileio import signals_as_exit
from tracec.patches.apply import apply_patch, pending_patches
from tracec.patches.patch_file import APPLIED_DIR, PATCH_DIR
from tracec.project import find_project_root

LOCK_DIR = PATCH_DIR.parent   # .tracec/, locked while a run writes


def _resolve_argument(root: Path, name: str, revert: bool) -> Path | None:
    path = Path(name)
    if path.is_file():
        return path
    if revert:   # the pending name of a patch that has since moved to applied/
        moved = root / APPLIED_DIR / path.name
        if moved.is_file():
            return moved
    return None


@contextlib.contextmanager
def _one_apply_at_a_time(root: Path):
    """An exclusive flock on the .tracec/ folder itself for the whole run: a second `tracec apply` waits,
    then sees the files and patch folders the first one left (without it both read the same pending patch
    and the loser crashes moving it). Locking the folder writes no lock file, and the lock goes with the
    process, so a killed run never leaves it held. Without .tracec/ there is nothing pending to share."""
    try:
        import fcntl
    except ImportError:   # no flock on this platform: run unlocked, as a single user mostly does
        fcntl = None
    folder = root / LOCK_DIR
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if fcntl and folder.is_dir() else None
    except OSError:
        fd = None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"tracec apply: waiting for another tracec apply in {folder} to finish", file=sys.stderr,
                      flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:   # a file system without flock: run unlocked rather than not at all
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)


def main(args: argparse.Namespace) -> int:
    """tracec apply [PATCH...] [--check] [--revert]: in written order (reverting: the reverse), stopping
    at the first refusal because later patches to the same file build on earlier ones."""
    root = find_project_root()
    if args.revert and not args.patches:
        raise UsageError(f"--revert needs the PATCH to undo (applied ones are in {APPLIED_DIR.as_posix()}/)")
    if args.check or (not args.patches and not (root / PATCH_DIR).is_dir()):   # writes nothing: no lock
        return _apply_all(root, args)
    with signals_as_exit(), _one_apply_at_a_time(root):
        return _apply_all(root, args)


def _apply_all(root: Path, args: argparse.Namespace) -> int:
    patches = []
    for name in args.patches:
        path = _resolve_argument(root, name, args.revert)
        if path is None:
            raise UsageError(f"{name}: no such patch file")
        patches.append(path)
    if not args.patches:
        patches = pending_patches(root)
        if not patches:
            print(f"no pending patches in {PATCH_DIR.as_posix()}/")
            return EXIT_OK
    # numbered names give the order they were written in; undo in the opposite order
    patches.sort(key=lambda path: path.name, reverse=args.revert)
    contents: dict[Path, bytes] = {}
    for patch in patches:
        # a refusal (PatchError) stops here: later patches may build on this one
        print(apply_patch(root, patch, check=args.check, revert=args.revert, contents=contents))
    return EXIT_OK

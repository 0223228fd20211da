"""Scratch copies of the project, one per worker slot: candidates run against a copy, never the user's tree.

A copy holds every file of the project but `.git/`, `.tracec/`, virtualenvs and caches (the folders
`tracec instrument` skips). In a git checkout, files git ignores (data, caches, build output; often most
of the bytes) are not copied but linked: each ignored top entry is a symlink to the original, so a task
still reads them, and they are outside the manifest (under --sandbox they are read-only). The manifest is
each copied file's (size, mtime_ns) after the last sync: a file a candidate modified, replaced or deleted
differs from it and is reported, then copied back from the user's tree. Files a run creates are allowed
(a task may write its own output) and removed on the next sync.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tracec.fileio import write_atomic
from tracec.project import SKIP_DIR_NAMES

Stat = tuple[int, int]


def _skipped(root: Path, name: str) -> bool:
    parts = name.rstrip("/").split("/")
    return any(part in SKIP_DIR_NAMES or part in (".git", ".tracec") for part in parts) \
        or os.path.isfile(os.path.join(root, name, "pyvenv.cfg"))


def _git_paths(root: Path, *options: str) -> list[str] | None:
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *options], capture_output=True,
                                timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [os.fsdecode(p) for p in listed.split(b"\0") if p]


def project_layout(root: Path) -> tuple[list[str], list[str]]:
    """(files a scratch copy holds, top entries it links to the original), project-relative and sorted.
    In a git work tree: what git tracks or would track is copied, the files of submodules included, what
    it ignores is linked; elsewhere (or without git) every file is copied."""
    if shutil.which("git"):
        tracked = _git_paths(root, "--cached", "--recurse-submodules")   # only --cached recurses
        untracked = _git_paths(root, "--others", "--exclude-standard")
        ignored = _git_paths(root, "--others", "--ignored", "--exclude-standard", "--directory")
        if tracked is not None and untracked is not None and ignored is not None:
            kept = tracked + untracked
            files = sorted({p for p in kept if not _skipped(root, p) and os.path.isfile(root / p)
                            and not os.path.islink(root / p)})
            entries = {p.rstrip("/") for p in ignored if not _skipped(root, p) and os.path.lexists(root / p)}
            # a folder with a .gitignore of its own ("*") is listed with its contents: link the folder only
            links = sorted(p for p in entries if not any(a.as_posix() in entries for a in Path(p).parents))
            return files, links
    return project_files(root), []


def project_files(root: Path) -> list[str]:
    """Project-relative posix paths of every file under `root` but the skipped folders, sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIR_NAMES and d not in (".git", ".tracec")
                         and not os.path.isfile(os.path.join(folder, d, "pyvenv.cfg")))
        relative = Path(folder).relative_to(root)
        found.extend((relative / name).as_posix() for name in files if os.path.isfile(os.path.join(folder, name)))
    return sorted(found)


def _stat(path: Path) -> Stat | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


class ScratchCopy:
    """A copy of `source` (the user's project root) at `path`."""

    def __init__(self, source: Path, path: Path) -> None:
        self.source, self.path = source, path
        self.manifest: dict[str, Stat] = {}
        self.links: frozenset[str] = frozenset()   # ignored entries: symlinks to the user's tree

    @classmethod
    def create(cls, source: Path, path: Path) -> "ScratchCopy":
        copy = cls(source, path)
        path.mkdir(parents=True, exist_ok=True)
        files, links = project_layout(source)
        for name in files:
            copy._copy_back(name)
        for name in links:
            link = path / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(link):
                link.symlink_to((source / name).resolve())
        copy.links = frozenset(links)
        return copy

    def _copy_back(self, name: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_dir():
            _remove(target)
        shutil.copy2(self.source / name, target, follow_symlinks=True)
        self.manifest[name] = _stat(target)   # type: ignore[assignment]  # just written

    def write(self, sources: dict[str, str]) -> None:
        """Put candidate files in place (project-relative path -> full text), as the patch would leave them."""
        for name, text in sources.items():
            if name not in self.manifest:
                raise ValueError(f"{name}: not a file of the project")
            write_atomic(self.path / name, text.encode("utf-8"))
            self.manifest[name] = _stat(self.path / name)   # type: ignore[assignment]

    def changed(self) -> list[str]:
        """Files of the copy that differ from the manifest (modified, replaced or deleted), sorted."""
        return sorted(name for name, stat in self.manifest.items() if _stat(self.path / name) != stat)

    def sync(self, names) -> None:
        """Copy `names` back from the user's tree and remove files that are in no manifest."""
        for name in names:
            self._copy_back(name)
        for folder, dirs, files in os.walk(self.path):   # symlinked folders are not entered
            relative = Path(folder).relative_to(self.path)
            dirs[:] = [d for d in dirs if d not in ("__pycache__", ".tracec")
                       and (relative / d).as_posix() not in self.links]
            for file in files:
                name = (relative / file).as_posix()
                if name not in self.manifest and name not in self.links:
                    _remove(Path(folder, file))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

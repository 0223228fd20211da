"""The user's project as tracec sees it: where its root is, what its modules are called, which paths are
inside it, and which tracec is looking at it."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path


@functools.lru_cache(maxsize=1)
def tracec_version() -> str:
    """The installed distribution's version; from a checkout that was never installed, its pyproject's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tracec")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            found = re.search(r'^version = "([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE)
        except OSError:
            found = None
        return found.group(1) if found else "0+unknown"


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Nearest ancestor of `start` (default cwd) holding pyproject.toml or .git, else `start`."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / ".git").exists():
            return candidate
    return here


def module_name_for_file(path: str | os.PathLike[str]) -> str:
    """Dotted name from the top-most package directory (dirs with __init__.py), else the stem."""
    path = Path(path)
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name:
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts) or path.stem


def relative_posix(path: str | os.PathLike[str], root: Path) -> str:
    """`path` relative to `root` as posix text; outside the root it keeps '..' segments."""
    return Path(os.path.relpath(os.path.realpath(path), root)).as_posix()


def is_under(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """`path` is `folder` or inside it, compared as written (resolve both first where links matter)."""
    path, folder = os.fspath(path), os.fspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def display_path(path: str | os.PathLike[str]) -> str:
    """How tracec names a file to its user: relative to the current directory when under it (what a
    terminal or an editor opens from there), else absolute; never `../`, always with `/`."""
    try:
        return Path(path).relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return Path(path).as_posix()

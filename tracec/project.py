"""The user's project as tracec sees it: where its root is, which Python files it has, what its modules are
called, which paths are inside it, and which tracec is looking at it."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from tracec.errors import UsageError

SKIP_DIR_NAMES = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules"})
PARALLEL_MIN_FILES = 16  # fewer files to parse than this: worker start-up costs more than it saves


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


def discover(paths: list[str], root: Path, out_dir: Path, problems: list[str] | None = None) -> list[Path]:
    """Regular Python files named by `paths` (files, or directories searched recursively). A directory
    that cannot be listed is named in `problems` (else it would vanish from the build unnoticed); FIFOs,
    devices and sockets named *.py are passed over, since reading one would block or never end."""
    problems = [] if problems is None else problems
    found: dict[Path, None] = {}
    for raw in paths:
        if not os.path.exists(raw):
            raise UsageError(f"{raw}: no such file or directory")
        real = Path(os.path.realpath(raw))
        if not is_under(real, root):
            raise UsageError(f"{raw}: outside the project root {root}; run tracec from inside it")
        if is_under(real, out_dir):
            continue
        if not real.is_dir():
            if not real.is_file():
                raise UsageError(f"{raw}: not a regular file (a FIFO, device or socket); name Python files")
            found[real] = None
            continue

        def unreadable(error: OSError) -> None:
            where = display_path(Path(error.filename)) if error.filename else raw
            problems.append(f"{where}: cannot read directory: {error.strerror}; fix its permissions or leave it out")

        for folder, dirnames, filenames in os.walk(real, onerror=unreadable):
            dirnames[:] = sorted(
                name
                for name in dirnames
                if not name.startswith(".")
                and name not in SKIP_DIR_NAMES
                and Path(folder, name) != out_dir
                and not os.path.isfile(os.path.join(folder, name, "pyvenv.cfg"))
            )
            for name in sorted(filenames):
                path = Path(os.path.realpath(os.path.join(folder, name)))
                if name.endswith(".py") and is_under(path, root) and path.is_file():
                    found[path] = None
    return sorted(found)

"""Patch files: the unified diff of an edit plus a small header (target, keys, summary, and the sha256 of
the file before and after), written under `.tracec/patches/` for review, `tracec apply`, `git apply` or
`patch -p1`. Standard library only, so `tracec apply` loads neither LibCST nor black."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .patch import PatchError

PATCH_DIR = Path(".tracec") / "patches"
APPLIED_DIR = PATCH_DIR / "applied"
PATCH_MAGIC = "tracec-patch: 1"


def _diff_lines(text: str) -> list[str]:
    """Lines as git and patch see them: split after each \\n only (a \\r or form feed is line content)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def quote_path(path: str) -> str:
    """A diff header path the way git writes it: C-quoted when it holds quotes, backslashes or non-ASCII."""
    if not re.search(r'["\\\x00-\x1f\x7f-\U0010ffff]', path):
        return path
    escapes = {"\"": '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n"}
    out = []
    for char in path:
        if char in escapes:
            out.append(escapes[char])
        elif char < " " or char >= "\x7f":
            out.extend(f"\\{byte:03o}" for byte in char.encode("utf-8", "surrogateescape"))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _header_path(prefix: str, path: str) -> str:
    quoted = quote_path(prefix + path)
    # git ends a ---/+++ name holding a space with a tab so patch(1) does not cut it at the space
    return quoted + ("\t" if " " in path and not quoted.startswith('"') else "")


def render_diff(old: str, new: str, target: str) -> str:
    """A git-style unified diff of one file (`diff --git a/target b/target` onwards); "" when equal."""
    import difflib

    if old == new:
        return ""
    body = difflib.unified_diff(_diff_lines(old), _diff_lines(new), _header_path("a/", target),
                                _header_path("b/", target), lineterm="\n")
    out = [f"diff --git {quote_path('a/' + target)} {quote_path('b/' + target)}\n"]
    for line in body:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class PatchFile:
    path: Path
    target: str               # file path relative to the project root, posix
    base_sha256: str          # of the file the patch was made against
    result_sha256: str        # of the file once the patch is applied
    keys: tuple[str, ...]
    summary: str


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _next_number(root: Path) -> int:
    numbers = [int(match.group(1)) for folder in (root / PATCH_DIR, root / APPLIED_DIR) if folder.is_dir()
               for name in os.listdir(folder) if (match := re.match(r"(\d+)-", name))]
    return max(numbers, default=0) + 1


def write_patch(root: Path, target: str, old: str, new: str, *, keys: Sequence[str], summary: str) -> PatchFile:
    """Write root/.tracec/patches/NNNN-<stem>-<first name>.patch: header lines, then the diff."""
    diff = render_diff(old, new, target)
    if not diff:
        raise PatchError(f"{target}: the change leaves the file as it was; no patch written")
    keys = tuple(keys)
    header = [PATCH_MAGIC, f"target: {target}", f"keys: {' '.join(keys)}", f"summary: {_one_line(summary)}",
              f"base-sha256: {sha256_text(old)}", f"result-sha256: {sha256_text(new)}", ""]
    content = "\n".join(header) + "\n" + diff
    folder = Path(root) / PATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    first_name = keys[0].rpartition(":")[2].rpartition(".")[2] if keys else "change"
    label = "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", part).strip("_") or "x"
                     for part in (Path(target).stem, first_name))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            fh.write(content)
        while True:   # link() refuses an existing name: two writers never take the same number
            path = folder / f"{_next_number(root):04d}-{label}.patch"
            try:
                os.link(temp, path)
                break
            except FileExistsError:
                continue
            except OSError:   # a file system without hard links
                if not path.exists():
                    os.replace(temp, path)
                    temp = None
                    break
    finally:
        if temp is not None:
            os.unlink(temp)
    return read_patch(path)


def read_patch_text(path: Path) -> tuple[PatchFile, str]:
    """The header and the diff section (text from `diff --git` on)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise PatchError(f"{path}: cannot read the patch ({exc.strerror or exc}); check the path")
    head, marker, diff = text.partition("\ndiff --git ")
    fields = {}
    lines = head.split("\n")
    if lines[0].strip() != PATCH_MAGIC or not marker:
        raise PatchError(f"{path}:1: not a patch written by tracec optimize; apply it with git apply instead")
    for number, line in enumerate(lines[1:], start=2):
        if line.strip():
            name, colon, value = line.partition(":")
            if not colon:
                raise PatchError(f"{path}:{number}: malformed header line; regenerate the patch")
            fields[name.strip()] = value.strip()
    missing = [name for name in ("target", "base-sha256", "result-sha256") if not fields.get(name)]
    if missing:
        raise PatchError(f"{path}:1: header lacks {', '.join(missing)}; regenerate the patch")
    patch = PatchFile(path, fields["target"], fields["base-sha256"], fields["result-sha256"],
                      tuple(fields.get("keys", "").split()), fields.get("summary", ""))
    return patch, "diff --git " + diff


def read_patch(path: Path) -> PatchFile:
    return read_patch_text(path)[0]

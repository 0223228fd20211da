"""Patch files: the unified diff of an edit plus a small header (target, keys, summary, and the sha256 of
the file before and after), written under `.tracec/patches/` for review, `tracec apply`, `git apply` or
`patch -p1`. Standard library only, so `tracec apply` loads neither LibCST nor black."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tracec.errors import one_line
from tracec.fileio import sha256_hex
from tracec.patches.splice import PatchError

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


_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"',
              "\\": "\\"}


def unquote_path(text: str) -> str:
    """The path a diff header names: a C-quoted name decoded (octal escapes are UTF-8 bytes), else as is."""
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return text
    out, body, index = bytearray(), text[1:-1], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            index += 1
        elif body[index + 1:index + 4].isdigit() and len(body[index + 1:index + 4]) == 3:
            out.append(int(body[index + 1:index + 4], 8) & 0xFF)
            index += 4
        else:
            escaped = body[index + 1:index + 2]
            out += _C_ESCAPES.get(escaped, escaped).encode("utf-8", "surrogateescape")
            index += 2
    return out.decode("utf-8", "surrogateescape")


# code points HFS+ ignores in names, so ".g\u200cit" is the folder .git on a Mac (git refuses them too)
_HFS_IGNORED = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])


def unsafe_path(path: str) -> str | None:
    """Why a patch may not name `path` (relative, posix), or None. The paths `git apply` refuses: NUL,
    absolute, an empty, `.` or `..` component, and `.git` in any spelling a file system may take for it
    (any letter case, trailing dots or spaces as on NTFS, its 8.3 name git~1, HFS+-ignored characters),
    so a crafted patch cannot edit .git/config (whose settings run commands on the next `git status`)."""
    if "\0" in path:
        return "holds a NUL byte"
    if not path or path.startswith("/"):
        return "is not a path relative to the project root"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"has a {part!r} component" if part else "has an empty component"
        name = part.translate(_HFS_IGNORED).split(":", 1)[0].rstrip(" .").lower()
        if name in (".git", "git~1"):
            return f"has the component {part!r}, a name for git's own .git folder"
    return None


_HUNK_COUNTS = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_NAME_LINES = ("--- ", "+++ ", "rename from ", "rename to ", "copy from ", "copy to ")


def _strip_prefix(name: str) -> str:
    """`a/x` -> `x`: the first component goes, as with `git apply`'s default -p1."""
    return name.partition("/")[2] if "/" in name else name


def _git_line_names(rest: str) -> list[str]:
    """The names `diff --git A B` gives: both when quoted; unquoted, the split where both halves name the
    same file (git's rule; spaces make other splits ambiguous, and then git reads the ---/+++ lines)."""
    if rest.startswith('"'):
        end = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        if end is None:
            return [rest]
        return [unquote_path(end.group()), unquote_path(rest[end.end():].lstrip(" "))]
    last = re.search(r' ("(?:[^"\\]|\\.)*")$', rest)
    if last:
        return [rest[:last.start()], unquote_path(last.group(1))]
    for index, char in enumerate(rest):
        if char == " " and _strip_prefix(rest[:index]) == _strip_prefix(rest[index + 1:]):
            return [rest[:index], rest[index + 1:]]
    return []


def diff_paths(diff: str) -> list[str]:
    """Every file path the file headers of a unified diff name (prefix stripped; /dev/null left out),
    read the way `git apply` reads them: hunk lines are skipped by their counts, so a removed line that
    starts with "-- " is not taken for a header, and every further file section is seen."""
    paths: list[str] = []
    lines = diff.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        hunk = _HUNK_COUNTS.match(line)
        if hunk:
            old, new = (int(count) if count is not None else 1 for count in hunk.groups())
            while index < len(lines) and (old > 0 or new > 0 or lines[index].startswith("\\")):
                tag = lines[index][:1]
                old -= tag in (" ", "-", "")
                new -= tag in (" ", "+", "")
                index += 1
        elif line.startswith("diff --git "):
            paths.extend(_strip_prefix(name) for name in _git_line_names(line[len("diff --git "):]))
        elif line.startswith(_NAME_LINES):
            prefix = next(prefix for prefix in _NAME_LINES if line.startswith(prefix))
            rest = line[len(prefix):]
            name = unquote_path(rest if prefix[0] in "rc" else rest.split("\t", 1)[0])
            if name != "/dev/null":   # rename/copy lines name the path itself, ---/+++ with a/ and b/
                paths.append(name if prefix[0] in "rc" else _strip_prefix(name))
    return paths


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
    """The digest a patch records for a file's text (as the bytes it is written as)."""
    return sha256_hex(text.encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class PatchFile:
    path: Path
    target: str               # file path relative to the project root, posix
    base_sha256: str          # of the file the patch was made against
    result_sha256: str        # of the file once the patch is applied
    keys: tuple[str, ...]
    summary: str


def _next_number(root: Path) -> int:
    numbers = [int(match.group(1)) for folder in (root / PATCH_DIR, root / APPLIED_DIR) if folder.is_dir()
               for name in os.listdir(folder) if (match := re.match(r"(\d+)-", name))]
    return max(numbers, default=0) + 1


def write_patch(root: Path, target: str, old: str, new: str, *, keys: Sequence[str], summary: str) -> PatchFile:
    """Write root/.tracec/patches/NNNN-<stem>-<first name>.patch: header lines, then the diff."""
    problem = unsafe_path(target)
    if problem:   # read_patch_text (so tracec apply) would refuse it: never write such a patch
        raise PatchError(f"{quote_path(target)}: the path {problem}; tracec patches only files inside the "
                         "project root, outside .git/")
    diff = render_diff(old, new, target)
    if not diff:
        raise PatchError(f"{target}: the change leaves the file as it was; no patch written")
    keys = tuple(keys)
    header = [PATCH_MAGIC, f"target: {target}", f"keys: {' '.join(keys)}", f"summary: {one_line(summary)}",
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
    diff = "diff --git " + diff
    for named in (fields["target"], *diff_paths(diff)):
        problem = unsafe_path(named)
        if problem:
            raise PatchError(f"{path}: it would write {quote_path(named)}, which {problem}; tracec and git apply "
                             "never write there: delete this patch, it was not written by tracec optimize")
    patch = PatchFile(path, fields["target"], fields["base-sha256"], fields["result-sha256"],
                      tuple(fields.get("keys", "").split()), fields.get("summary", ""))
    return patch, diff


def read_patch(path: Path) -> PatchFile:
    return read_patch_text(path)[0]

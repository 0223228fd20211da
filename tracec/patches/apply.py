"""Applying, checking or reverting one patch `tracec optimize` wrote under .tracec/patches/ (the command,
its order and its lock: tracec.commands.apply).

A patch names the sha256 of the file it was made against and of the file it produces, so a stale patch
is refused instead of being fuzzily merged. Hunks are applied exactly (no offsets, no fuzz) and the result
must hash to the recorded value before the file is replaced (temp file in the same folder + os.replace).
A target `git apply` would refuse (absolute, `..`, `.git` in any spelling, NUL) is refused before
anything is written, and the resolved target (symlinks) must stay inside the project root and outside
.git/. Applied patches move to .tracec/patches/applied/; reverting moves them back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tracec.fileio import sha256_hex, write_atomic
from tracec.patches.patch_file import (
    APPLIED_DIR,
    PATCH_DIR,
    PatchFile,
    quote_path,
    read_patch,
    read_patch_text,
    unsafe_path,
)
from tracec.patches.splice import PatchError

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class _Hunk:
    old_start: int            # 1-based first line of `old` in the original file
    new_start: int            # 1-based first line of `new` in the patched file
    old: tuple[str, ...]      # lines with their line ends, as in the file
    new: tuple[str, ...]


def pending_patches(root: Path) -> list[Path]:
    """Patches not applied yet, in the order they were written."""
    folder = Path(root) / PATCH_DIR
    return sorted(folder.glob("*.patch")) if folder.is_dir() else []


def pending_changes(root: Path) -> dict[tuple[str, str, str], PatchFile]:
    """Readable pending patches by (target, base sha256, result sha256): a writer that would produce a
    change already waiting reuses that patch instead of writing it twice."""
    pending = {}
    for path in pending_patches(root):
        try:
            known = read_patch(path)
        except PatchError:
            continue
        pending.setdefault((known.target, known.base_sha256, known.result_sha256), known)
    return pending


def _parse_hunks(diff: str, patch: PatchFile) -> list[_Hunk]:
    lines = diff.split("\n")
    expected = (f"--- {quote_path('a/' + patch.target)}", f"+++ {quote_path('b/' + patch.target)}")
    headers = [line.rstrip("\t") for line in lines[1:3]]
    if lines[0] != f"diff --git {quote_path('a/' + patch.target)} {quote_path('b/' + patch.target)}" \
            or tuple(headers) != expected:
        raise PatchError(f"{patch.path}: its diff is not about its target {patch.target}; regenerate the patch")
    hunks: list[_Hunk] = []
    index = 3
    while index < len(lines) and lines[index]:
        match = _HUNK.match(lines[index])
        if not match:
            raise PatchError(f"{patch.path}:{index + 1}: malformed hunk header; regenerate the patch")
        old_count = int(match.group(2) if match.group(2) is not None else 1)
        new_count = int(match.group(4) if match.group(4) is not None else 1)
        old: list[str] = []
        new: list[str] = []
        index += 1
        last: tuple[list[str], ...] = ()
        while index < len(lines) and (len(old) < old_count or len(new) < new_count
                                      or lines[index].startswith("\\")):
            line = lines[index]
            tag, text = line[:1], line[1:] + "\n"
            if tag == "\\":            # "\ No newline at end of file": the line before has no line end
                for side in last:
                    side[-1] = side[-1][:-1]
            elif tag in (" ", "-", "+"):
                last = {" ": (old, new), "-": (old,), "+": (new,)}[tag]
                for side in last:
                    side.append(text)
            else:
                raise PatchError(f"{patch.path}:{index + 1}: malformed hunk line; regenerate the patch")
            index += 1
        if len(old) != old_count or len(new) != new_count:
            raise PatchError(f"{patch.path}: a hunk is truncated; regenerate the patch")
        # an empty range names the line *after which* to insert; make it the 1-based insertion line
        hunks.append(_Hunk(int(match.group(1)) + (old_count == 0), int(match.group(3)) + (new_count == 0),
                           tuple(old), tuple(new)))
    if lines[index:] not in ([], [""]):
        # git apply would act on what follows (another file's section); tracec writes one file per patch
        raise PatchError(f"{patch.path}:{index + 1}: text after the diff of {patch.target}; regenerate the patch")
    return hunks


def _patched(text: str, hunks: list[_Hunk], reverse: bool, patch: PatchFile) -> str:
    lines = text.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    for hunk in reversed(hunks):   # last first: earlier hunks keep their line numbers
        old, new, start = (hunk.new, hunk.old, hunk.new_start) if reverse else (hunk.old, hunk.new, hunk.old_start)
        if tuple(lines[start - 1:start - 1 + len(old)]) != old:
            raise PatchError(f"{patch.target}:{start}: the patch body does not match the file; "
                             "the patch file was edited, regenerate it")
        lines[start - 1:start - 1 + len(old)] = new
    return "".join(lines)


def _target_path(root: Path, patch: PatchFile) -> Path:
    """The file to write, resolved. read_patch_text already refused names git apply refuses (absolute,
    `..`, `.git`); a symlink may still lead out of the root or into .git/, so the resolved path is checked."""
    real_root = Path(root).resolve()
    target = (real_root / patch.target).resolve()
    if not target.is_relative_to(real_root):
        raise PatchError(f"{patch.path}: target {patch.target} resolves to {target}, outside the project root "
                         f"{real_root}; refusing to write there")
    problem = unsafe_path(target.relative_to(real_root).as_posix())
    if problem:
        raise PatchError(f"{patch.path}: target {patch.target} resolves to {target}, which {problem}; refusing "
                         "to write there: delete this patch")
    if not target.is_file():
        raise PatchError(f"{patch.target}: no such file (patch {patch.path.name}); was it moved or deleted?")
    return target


def _plan(root: Path, patch_path: Path, revert: bool, contents: dict[Path, bytes]) -> tuple[Path, bytes, str]:
    """(target, new bytes, message) for one patch; `contents` overrides file contents (for --check runs)."""
    patch, diff = read_patch_text(patch_path)
    target = _target_path(root, patch)
    current = contents[target] if target in contents else target.read_bytes()
    before, after = (patch.result_sha256, patch.base_sha256) if revert else (patch.base_sha256, patch.result_sha256)
    digest = sha256_hex(current)
    if digest == after:
        return target, current, f"{patch.path.name}: {patch.target} is already {'reverted' if revert else 'patched'}"
    if digest != before:
        what = "patched" if revert else "made"
        raise PatchError(f"{patch.target}: changed since {patch.path.name} was {what} (sha256 differs); "
                         + ("revert it by hand" if revert else "rerun tracec optimize for a fresh patch"))
    text = current.decode("utf-8", "surrogateescape")
    result = _patched(text, _parse_hunks(diff, patch), revert, patch).encode("utf-8", "surrogateescape")
    if sha256_hex(result) != after:
        raise PatchError(f"{patch.path}: applying it does not give the recorded result; the patch file was "
                         "edited, regenerate it")
    return target, result, f"{patch.path.name}: {'reverted' if revert else 'applied to'} {patch.target}"


def _move(root: Path, patch_path: Path, revert: bool) -> None:
    """Pending patches move to applied/ once applied, and back once reverted; others stay put."""
    source, destination = (root / APPLIED_DIR, root / PATCH_DIR) if revert else (root / PATCH_DIR, root / APPLIED_DIR)
    if patch_path.resolve().parent == source.resolve():
        destination.mkdir(parents=True, exist_ok=True)
        os.replace(patch_path, destination / patch_path.name)


def apply_patch(root: Path, patch: Path, *, check: bool = False, revert: bool = False,
                contents: dict[Path, bytes] | None = None) -> str:
    """Apply (or with revert=True undo) one patch; with check=True write nothing. Returns a one-line message."""
    root = Path(root)
    contents = {} if contents is None else contents
    target, result, message = _plan(root, Path(patch), revert, contents)
    if check:
        contents[target] = result
        return message.replace(": applied to ", ": would apply to ").replace(": reverted ", ": would revert ")
    if result != target.read_bytes():
        write_atomic(target, result, mode=target.stat().st_mode & 0o7777, sync=True)
    _move(root, Path(patch), revert)
    return message

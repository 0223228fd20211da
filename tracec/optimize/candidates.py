"""Optimizer parameters (targets, read from the live tables of a worker's instrumented modules) and a
candidate as source files (`CandidateSources`). Candidates are never installed into a running process:
workers import the patched files (tracec/optimize/worker_host.py, and the `--pytest` mode's test runs)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from tracec import runtime
from tracec.errors import TracecError


class TrialError(TracecError):
    """A candidate that cannot be tried or was rejected by its worker; the one-line message is fed back to
    the optimizer."""


@dataclass(frozen=True)
class Target:
    """A parameter the optimizer may change, as the recording and the module table describe it."""
    key: str          # "module:NAME" | "module:qualname"
    kind: str         # "value" | "code"
    file: str         # relative to the project root
    line: int         # line of the param site / def in the original file
    doc: str | None

    @property
    def module(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(":", 1)[1]


def project_hooks(root: Path) -> list[runtime.ModuleHooks]:
    """The live instrumented modules whose files belong to the project under `root`."""
    return [h for h in runtime.instrumented_modules() if (root / h.table.file).is_file()]


def read_originals(root: Path, files) -> dict[str, str]:
    """Each file's text exactly as on disk (decoded bytes: CRLF line ends survive), by relative path."""
    return {f: (root / f).read_bytes().decode("utf-8") for f in files}


def bound_values(hooks_by_module) -> dict[str, object]:
    """The current value of every param site that binds a module global or a class attribute, by key."""
    values: dict[str, object] = {}
    for hooks in hooks_by_module:
        for site_id, site in enumerate(hooks.table.params):
            if site.global_name:
                values.setdefault(site.key, hooks.param_value(site_id))
    return values


def site_values() -> dict[str, object]:
    """What each param site that has run last returned, by key (sites inside functions bind no global)."""
    values: dict[str, object] = {}
    for hooks in runtime.instrumented_modules():
        for site_id, value in hooks.param_values.items():
            values.setdefault(hooks.table.params[site_id].key, value)
    return values


def find_targets(hooks_by_module) -> dict[str, Target]:
    """Every value param site and trainable function of the given live modules, by key."""
    targets: dict[str, Target] = {}
    for hooks in hooks_by_module:
        table = hooks.table
        for site in table.params:
            targets.setdefault(site.key, Target(site.key, "value", table.file, site.line, site.doc))
        for fn in table.functions:
            if fn.trainable:
                key = f"{table.module}:{fn.qualname}"
                targets.setdefault(key, Target(key, "code", table.file, fn.line, fn.doc))
    return targets


class CandidateSources:
    """A candidate as the files its patch would leave: the patch writer's LibCST splice of each changed
    parameter into its file's original source (black on the new code only). What workers run and what
    the patch contains are made here, by the same call."""

    def __init__(self, root: Path, targets: dict[str, Target], originals: dict[str, str]) -> None:
        self.root = root
        self.targets = targets
        self.originals = originals               # file -> original source text
        self._black_mode = None   # the project's [tool.black], read once
        # children scored at once splice from several threads: one at a time, so the first call's lazy
        # imports of libcst and black (a module half-initialised in one thread is seen by another) and the
        # black mode are made once; a splice holds the GIL throughout anyway
        self._lock = threading.Lock()

    def by_file(self, keys) -> dict[str, list[str]]:
        """The keys grouped by the file that defines them, files in sorted order."""
        groups: dict[str, list[str]] = {}
        for key in keys:
            groups.setdefault(self.targets[key].file, []).append(key)
        return dict(sorted(groups.items()))

    def patched_source(self, file: str, keys, values: dict[str, object]) -> str:
        """The file's original source with the parameters `keys` set to `values`. Raises PatchError."""
        from tracec.patches.splice import Change, black_mode, rewrite_source

        changes = [Change(key, self.targets[key].kind, self.targets[key].line, values[key]) for key in keys]
        with self._lock:
            if self._black_mode is None:
                self._black_mode = black_mode(self.root)
            return rewrite_source(self.originals[file], file, changes, self._black_mode)

    def files(self, values: dict[str, object], initial: dict[str, object]) -> dict[str, str]:
        """Project-relative path -> full new text of each file `values` changes (a value equal to the one in
        the source changes nothing). TrialError, with the splice's reason, if one cannot be written."""
        from tracec.patches.splice import PatchError

        missing = object()
        changed = {k: v for k, v in values.items() if k in self.targets and v != initial.get(k, missing)}
        try:
            return {file: self.patched_source(file, keys, changed) for file, keys in self.by_file(changed).items()}
        except PatchError as exc:
            raise TrialError(str(exc)) from None

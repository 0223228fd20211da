"""Optimizer parameters (targets), the patch writer's splice for candidates, and installing candidates
into a running process, which only the `--pytest` mode's child does (tracec/pytest_plugin.py); a task
file's candidates are patched files run in worker processes (worker_host.py).

A value candidate becomes the module global its `tracec.param` site binds (so every traced read sees
it) and an override for sites that run again. A code candidate is spliced into the module's original
source with the patch writer, instrumented so its ids extend the live module's table, compiled, and its
code object replaces the function's `__code__`: every existing reference (imports, callbacks, bound
methods) runs the candidate, and restoring the old code object undoes it exactly."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

from tracec import runtime
from tracec.errors import TracecError


class TrialError(TracecError):
    """A candidate that cannot be installed; the message is fed back to the optimizer."""


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


def module_hooks(module_name: str) -> runtime.ModuleHooks:
    module = sys.modules.get(module_name)
    hooks = getattr(module, "_tracec_m", None)
    if not isinstance(hooks, runtime.ModuleHooks):
        raise TrialError(f"module {module_name} is not loaded instrumented")
    return hooks


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


def live_function(target: Target) -> types.FunctionType:
    """The function object a code parameter names (through classes and `functools.wraps` wrappers)."""
    if "<locals>" in target.name:
        raise TrialError(f"{target.file}:{target.line}: a nested trainable function cannot be tried in process")
    obj: object = sys.modules[target.module]
    for part in target.name.split("."):
        holder = obj
        obj = vars(holder).get(part) if isinstance(holder, type) else getattr(holder, part, None)
        obj = getattr(obj, "__func__", obj)   # staticmethod / classmethod
    leaf = target.name.rsplit(".", 1)[-1]
    while not (isinstance(obj, types.FunctionType) and obj.__code__.co_name == leaf):
        obj = getattr(obj, "__wrapped__", None)
        if obj is None:
            raise TrialError(f"{target.file}:{target.line}: cannot find the function {target.name} at run time")
    return obj


def _code_object(code: types.CodeType, name: str, line: int) -> types.CodeType | None:
    """The function code object named `name` whose definition starts last at or before `line`."""
    best = None
    stack = [code]
    while stack:
        current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                if const.co_name == name and const.co_firstlineno <= line and (
                        best is None or const.co_firstlineno > best.co_firstlineno):
                    best = const
                stack.append(const)
    return best


class LiveParams:
    """Installs candidate values into the process and restores the originals."""

    def __init__(self, root: Path, targets: dict[str, Target], originals: dict[str, str]) -> None:
        self.root = root
        self.targets = targets
        self.originals = originals               # file -> original source text
        self._saved_values: dict[str, object] = {}
        self._saved_code: dict[str, types.CodeType] = {}
        self._black_mode = None   # the project's [tool.black], read once

    def by_file(self, keys) -> dict[str, list[str]]:
        """The keys grouped by the file that defines them, files in sorted order."""
        groups: dict[str, list[str]] = {}
        for key in keys:
            groups.setdefault(self.targets[key].file, []).append(key)
        return dict(sorted(groups.items()))

    def patched_source(self, file: str, keys, values: dict[str, object]) -> str:
        """The file's original source with the parameters `keys` set to `values` (the patch writer's
        LibCST splice, black on the new code only). Raises PatchError."""
        from tracec.patches.splice import Change, black_mode, rewrite_source

        if self._black_mode is None:
            self._black_mode = black_mode(self.root)
        changes = [Change(key, self.targets[key].kind, self.targets[key].line, values[key]) for key in keys]
        return rewrite_source(self.originals[file], file, changes, self._black_mode)

    def install(self, values: dict[str, object]) -> None:
        """Make `values` (key -> new value / def source) live; anything not named returns to original."""
        self.restore()
        try:
            for key, value in values.items():
                if self.targets[key].kind == "value":
                    self._install_value(self.targets[key], value)
            code_changes = [key for key in values if self.targets[key].kind == "code"]
            for file, keys in self.by_file(code_changes).items():
                self._install_code(file, keys, values)
        except BaseException:
            self.restore()
            raise

    def restore(self) -> None:
        for key, value in self._saved_values.items():
            binding = self._binding(self.targets[key])
            if binding is not None:
                setattr(*binding, value)
            runtime.set_param_override(key, clear=True)
        for key, code in self._saved_code.items():
            live_function(self.targets[key]).__code__ = code
        self._saved_values.clear()
        self._saved_code.clear()

    # -- values -----------------------------------------------------------------------------------
    def _binding(self, target: Target) -> tuple[object, str] | None:
        """(module or class, attribute) that holds the parameter, when its site binds a name."""
        hooks = module_hooks(target.module)
        for site_id, site in enumerate(hooks.table.params):
            if site.key == target.key and site.global_name:
                if site.global_name[0] == ".":   # a class attribute
                    owner = hooks.param_owner(site_id)
                    return (owner, site.global_name[1:]) if owner is not None else None
                return sys.modules[target.module], site.global_name
        return None

    def _install_value(self, target: Target, value: object) -> None:
        binding = self._binding(target)
        self._saved_values[target.key] = getattr(*binding, None) if binding else None
        if binding is not None:
            setattr(*binding, value)
        runtime.set_param_override(target.key, value)

    # -- code -------------------------------------------------------------------------------------
    def _install_code(self, file: str, keys: list[str], values: dict[str, object]) -> None:
        from tracec.patches.splice import PatchError
        from tracec.transforms import instrument_source

        first = self.targets[keys[0]]
        hooks = module_hooks(first.module)
        try:
            source = self.patched_source(file, keys, values)
        except PatchError as exc:
            raise TrialError(str(exc)) from None
        table = hooks.table
        first_ids = (len(table.functions), len(table.statements), len(table.params))
        result = instrument_source(source, path=file, module=first.module, first_ids=first_ids)
        if result.error is not None:
            raise TrialError(str(result.error))
        compiled = compile(result.code, str(self.root / file), "exec", dont_inherit=True)
        hooks.extend(*result.tables)
        new_functions = hooks.table.functions[first_ids[0]:]
        for key in keys:
            target = self.targets[key]
            info = next((fn for fn in new_functions if fn.qualname == target.name), None)
            code = _code_object(compiled, target.name.rsplit(".", 1)[-1], info.line) if info else None
            if code is None:
                raise TrialError(f"{file}: the candidate for {target.name} did not compile to a function")
            function = live_function(target)
            if code.co_freevars != function.__code__.co_freevars:
                raise TrialError(f"{file}:{target.line}: the candidate for {target.name} uses different "
                                 "closure variables (e.g. adds or drops super()); keep them as they are")
            self._saved_code.setdefault(key, function.__code__)
            function.__code__ = code

"""What a fork of the worker host does (worker_host.py): `run` the examples with a candidate's files in
place, or `judge` the outputs a run child returned. Either writes one JSON result and ends with
`os._exit`, so nothing of the child's runs on in the host (atexit handlers, buffered output, finalizers).
With the spawn start method the same child is `python -m tracec.optimize.worker_child ORDER.job`."""

from __future__ import annotations

import base64
import builtins
import io
import json
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import NoReturn

from tracec.fileio import write_atomic
from tracec.project import is_under

EXIT_TASK_ERROR = 3   # the exit status of a child that found the task file itself broken


def main(phase: str, request: dict, run: dict | None, setup: dict, copy: Path, result: Path, log: Path) -> NoReturn:
    status = 0
    try:
        _detach(log)
        data = run_examples(request, setup, copy) if phase == "run" else judge_outputs(request, run, setup, copy)
    except TaskFileError as exc:
        data, status = {"error": str(exc), "task_error": True}, EXIT_TASK_ERROR
    except BaseException as exc:   # noqa: BLE001 - SystemExit, KeyboardInterrupt, ... from the candidate
        data = {"error": f"{'running the examples' if phase == 'run' else 'scoring'} raised "
                         f"{type(exc).__name__}: {str(exc)[:300]}"}
    try:
        write_atomic(result, json.dumps(data))
    except BaseException:   # noqa: BLE001 - e.g. an output that is not JSON: the host reports the death
        os._exit(1)
    os._exit(status)


class TaskFileError(Exception):
    """The task (not the candidate) cannot be used: the run stops and says why."""


def _detach(log: Path) -> None:
    """A process group of its own (the host kills it whole), no terminal, output to `log`, no host fds."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, 1 << 16)   # the protocol pipe above all: a candidate cannot answer for the host


def _load(setup: dict, copy: Path, instrumented: bool = True):
    """The task imported from the copy (like `python TASK.py` there), with the import hook for the copy if
    `instrumented`. Bytecode caches are written whatever PYTHONDONTWRITEBYTECODE says: the copy is tracec's
    own, and without them every fork would instrument every module again."""
    from tracec.optimize.task import TaskError, load_task

    root = Path(setup["root"])

    def mapped(path: str) -> str:
        """A path of the project as the copy has it. A virtualenv inside the project is not copied: its
        site-packages (on sys.path) stay where they are, as does anything else the copy lacks."""
        if not is_under(path, root):
            return path
        inside = copy / os.path.relpath(path, root)
        return str(inside) if os.path.exists(inside) else path

    os.chdir(mapped(setup["cwd"]))
    sys.path[:] = [mapped(p) for p in setup["sys_path"]]
    sys.modules.pop("__tracec_task__", None)
    sys.dont_write_bytecode = False
    try:
        return load_task(Path(mapped(setup["task"])), copy, instrumented)
    except TaskError as exc:
        raise TaskFileError(str(exc).replace(str(copy), str(root))) from None


def run_examples(request: dict, setup: dict, copy: Path) -> dict:
    from tracec import runtime
    from tracec.optimize.task import execute

    loaded_before = set(sys.modules)
    probe = bool(request.get("probe"))
    try:
        task = _load(setup, copy)
    except TaskFileError as exc:
        if probe or not request.get("sources"):
            raise
        return {"error": str(exc)}   # the candidate's own code failed to import: reject it
    from tracec.importhook import ProjectFiles

    project = ProjectFiles(setup["root"])
    strays = sorted(name for name, module in list(sys.modules.items())
                    if _outside_copy(getattr(module, "__file__", None), project, copy))
    if strays:
        raise TaskFileError(f"the module {strays[0]} was imported from {Path(setup['root'])} itself, not from the "
                            "optimizer's copy (an editable install with an import finder?); install the project "
                            "with `pip install -e . --config-settings editable_mode=compat`, or put its folder "
                            "on PYTHONPATH")
    if probe:
        return _probe(task, copy, loaded_before)
    from tracec.llm.chat import tokens_used

    entries, outputs = [], []
    for split, index in request["examples"]:
        example = task.split(split)[index]
        before = tokens_used()
        output, error, graph = execute(task, example, recorded=bool(request.get("record")))
        entry = {"example": runtime.preview(example), "graph": graph.to_json() if graph is not None else None,
                 "tokens": tokens_used() - before}
        if error is not None:
            entry.update(output=f"{type(error).__name__}: {error}", error=True, score=0.0,
                         text=f"run(example) raised {type(error).__name__}: {error}")
            outputs.append(None)
        else:
            entry.update(output=runtime.preview(output), error=False)
            outputs.append(output)
        entries.append(entry)
    try:
        pickled = pickle.dumps(outputs)
    except Exception as exc:   # noqa: BLE001 - whatever pickling raises
        raise TaskFileError(f"{setup['task']}: run(example) returned a value that cannot be pickled ({exc}); the "
                            "optimizer scores outputs in a process of their own: return plain data") from None
    sites = _literal_texts(_site_values())
    return {"results": entries, "outputs": base64.b64encode(pickled).decode("ascii"), "site_values": sites}


def _outside_copy(path, project, copy: Path) -> bool:
    """A module file of the user's own tree (not its virtualenvs or site-packages) outside the copy."""
    return isinstance(path, str) and path in project and not is_under(path, copy)


def _literal_texts(values: dict) -> dict[str, str]:
    """Each value as the literal the patch writer would write, read back with ast.literal_eval; a value
    that has no such literal is left out (it can be neither shown as current nor written)."""
    from tracec.literals import source_text

    texts = {key: source_text(value) for key, value in values.items()}
    return {key: text for key, text in texts.items() if text is not None}


def _site_values() -> dict:
    from tracec.optimize.candidates import site_values

    return site_values()


def _probe(task, copy: Path, loaded_before: set) -> dict:
    """What the optimizer needs to know before any candidate: the targets, their values, the splits, and
    the modules the host preloads (every module the task imported from outside the project)."""
    from tracec.optimize.candidates import bound_values, find_targets, project_hooks

    hooks = project_hooks(copy)
    targets = selected(find_targets(hooks), task)
    initial = _literal_texts(bound_values(hooks))
    preload = sorted(name for name, module in sys.modules.items() if name not in loaded_before
                     and name != "__tracec_task__" and not is_under(getattr(module, "__file__", None) or "/", copy))
    return {"targets": [{"key": t.key, "kind": t.kind, "file": t.file, "line": t.line, "doc": t.doc}
                        for t in targets.values()],
            "initial": initial, "train": len(task.train), "val": len(task.val) if task.val is not task.train else None,
            "test": len(task.test), "repeats": task.repeats, "preload": preload}


def selected(targets: dict, task) -> dict:
    """The task's `params` (user names or full keys) narrow what the optimizer may change."""
    if task.params is None:
        return targets
    from tracec.optimize.prompt import display_names

    names = display_names(targets)
    by_name = {**{name: key for key, name in names.items()}, **{key: key for key in targets}}
    unknown = [p for p in task.params if p not in by_name]
    if unknown:
        raise TaskFileError(f"{task.path}: params names {unknown[0]!r}, which is no tracec.param or @trainable "
                            f"function of the project (known: {', '.join(sorted(names.values()))})")
    return {by_name[p]: targets[by_name[p]] for p in task.params}


def judge_outputs(request: dict, run: dict, setup: dict, copy: Path) -> dict:
    """Score the run child's outputs with the task's original `feedback`, in a process no candidate ran in."""
    from tracec.optimize.task import TaskError, judge

    task = _load(setup, copy, instrumented=False)   # only `feedback` runs here: nothing to record
    try:
        outputs = RestrictedUnpickler(io.BytesIO(base64.b64decode(run["outputs"])), copy).load()
    except pickle.UnpicklingError as exc:
        return {"error": f"the candidate's output cannot be scored: {exc}"}
    verdicts: list = []
    for (split, index), entry, output in zip(request["examples"], run["results"], outputs):
        if entry["error"]:
            verdicts.append(None)
            continue
        example = task.split(split)[index]
        try:
            score, text = judge(task, example, output, None, entry.get("tokens", 0))
        except TaskError as exc:
            raise TaskFileError(str(exc)) from None
        verdicts.append({"score": score, "text": text})
    return {"verdicts": verdicts}


_SAFE_BUILTINS = frozenset({"list", "dict", "set", "frozenset", "tuple", "str", "bytes", "bytearray", "int",
                            "float", "complex", "bool", "slice", "range", "object", "NoneType", "Ellipsis"})
_SAFE_MODULES = frozenset({"collections", "datetime", "decimal", "fractions", "enum", "uuid", "pathlib",
                           "numpy", "numpy.core.multiarray", "numpy._core.multiarray"})


class RestrictedUnpickler(pickle.Unpickler):
    """Loads plain data and the classes of the project (original code) and of a few data libraries; refuses
    every other global, so an output cannot make the judge call `exec`, `os.system` or a candidate's code."""

    def __init__(self, file, copy: Path) -> None:
        super().__init__(file)
        self.copy = copy

    def find_class(self, module: str, name: str):
        if module == "builtins":
            found = getattr(builtins, name, None)
            if name in _SAFE_BUILTINS or (isinstance(found, type) and issubclass(found, BaseException)):
                return found
        elif module == "copyreg" and name == "_reconstructor":
            return super().find_class(module, name)
        elif module in _SAFE_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type) or name in ("_reconstruct", "scalar"):   # numpy's array/scalar loaders
                return found
        else:
            owner = sys.modules.get(module)
            if owner is not None and is_under(getattr(owner, "__file__", None) or "/", self.copy):
                found = super().find_class(module, name)
                if getattr(found, "__module__", None) == module:   # defined there, not imported into it
                    return found
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which the scorer does not load; return "
                                     "plain data or the project's own classes")


if __name__ == "__main__":   # the spawn start method (worker_host.Host.spawn): the order file says what to do
    _order = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    main(_order["phase"], _order["request"], _order["run"], _order["setup"], Path(_order["copy"]),
         Path(_order["result"]), Path(_order["log"]))

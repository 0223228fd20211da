"""The hooks instrumented modules call, the recordings they report to, and the process-wide state
that connects them (which recording is active, which modules are instrumented, candidate values)."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import weakref
from typing import Any, Callable

from . import unwind
from .graph import Node, write_graph
from .recorder import Recorder
from .tables import TABLE_FORMAT, ModuleTable

_recorders: list[Recorder] = []           # active recordings, innermost last
_modules: "weakref.WeakSet[ModuleHooks]" = weakref.WeakSet()
_overrides: dict[str, object] = {}         # param key -> candidate value (the optimizer's trials)


class _Inside(threading.local):
    """Set while the recorder runs on this thread: a traced __repr__ called for a preview must not
    record into the graph being built."""
    active = False


_inside = _Inside()


# With no recording active a hook must cost almost nothing. The bound `get` of an empty dict is a C
# callable that returns its second argument (or None with one): `v(7, x)` is `x`, `e(3)` is None.
_passthrough: Callable[..., Any] = {}.get

# hook global -> the Recorder method it reports to
_RECORDING_HOOKS = {
    "_tracec_e": Recorder.on_enter, "_tracec_v": Recorder.on_statement, "_tracec_c": Recorder.on_control,
    "_tracec_r": Recorder.on_return, "_tracec_y": Recorder.on_yield, "_tracec_h": Recorder.on_handler,
}


class _Hook:
    """A hook bound in an instrumented module's globals. It pickles as a reference (module name, hook
    name), never by value: cloudpickle ships a function defined in traced code together with the globals
    it uses, and Ray, Dask, joblib and multiprocessing all ship functions that way."""

    __slots__ = ("hooks", "name", "handler")

    def __init__(self, hooks: "ModuleHooks", name: str, handler) -> None:
        self.hooks, self.name, self.handler = hooks, name, handler

    def __reduce__(self):
        return _hook, (self.hooks.table.module, self.name)


class _ValueHook(_Hook):
    """Reports to the innermost recording and returns the value unchanged; never raises into user code
    nor records the recorder's own calls (a traced __repr__ used for a preview)."""

    __slots__ = ()

    def __call__(self, index, value):
        if not _inside.active:
            _inside.active = True
            try:
                self.handler(_recorders[-1], self.hooks, index, value, sys._getframe(1))
            except Exception:
                _internal_error()
            finally:
                _inside.active = False
        return value


class _HandlerHook(_Hook):
    __slots__ = ()

    def __call__(self, index):
        if not _inside.active:
            _inside.active = True
            try:
                self.handler(_recorders[-1], self.hooks, index, sys._getframe(1))
            except Exception:
                _internal_error()
            finally:
                _inside.active = False


class _ParamHook(_Hook):
    """`tracec.param(...)` sites, recording or not: they return the optimizer's candidate when one is tried."""

    __slots__ = ()

    def __call__(self, site_id, value):
        return self.hooks.param_site(site_id, value, sys._getframe(1))


class _Forward(_Hook):
    """A hook unpickled in a process where its module is loaded: calls whatever hook the module has now."""

    __slots__ = ()

    def __call__(self, *args):
        return self.hooks.namespace[self.name](*args)


def _hook(module_name: str, name: str):
    """What a pickled hook becomes: the live module's hook, or a pass-through where the module was never
    instrumented and loaded (the function then runs exactly as if it were not traced)."""
    hooks = _module_hooks(module_name)
    return _passthrough if hooks is None else _Forward(hooks, name, None)


class ModuleHooks:
    """The `_tracec_m` object of one instrumented module. It binds the module's hook globals, short
    because they appear on every instrumented statement: `_tracec_e` enter, `_v` statement, `_c`
    condition, `_r` return, `_y` yield, `_h` exception handler, `_p` parameter site."""

    def __init__(self, table: ModuleTable, namespace: dict, literals: tuple = ((), (), ())) -> None:
        self.table = table
        self.literals = literals   # the header's (functions, statements, params), kept so `extend` can add to them
        self.namespace = namespace
        self.global_params = {s.global_name: i for i, s in enumerate(table.params) if s.global_name}
        self.param_values: dict[int, object] = {}
        self.param_hook = _ParamHook(self, "_tracec_p", None)
        self._switch(_recorders[-1] if _recorders else None)
        _modules.add(self)

    def _switch(self, recorder: Recorder | None) -> None:
        # hooks are module globals (`_tracec_v(7, x)`): a global lookup is cheaper than an attribute
        ns = self.namespace
        if recorder is None or recorder.truncated:   # a full recording takes no more nodes
            for name in _RECORDING_HOOKS:
                ns[name] = _passthrough
        else:
            for name, handler in _RECORDING_HOOKS.items():
                ns[name] = (_HandlerHook if name == "_tracec_h" else _ValueHook)(self, name, handler)
        ns["_tracec_p"] = self.param_hook

    def __reduce__(self):   # the `_tracec_m` global: a reference, like the hooks
        return _module_hooks, (self.table.module,)

    def extend(self, functions, statements, params) -> None:
        """Add the tables of code compiled later for this module (see `first_ids` in the transform)."""
        self.literals = tuple(old + tuple(new) for old, new in zip(self.literals, (functions, statements, params)))
        # global_params keep pointing at the original sites: a recompiled function binds no new globals
        self.table = ModuleTable.from_literals(self.table.module, self.table.file, *self.literals)

    def param_value(self, site_id: int):
        """The parameter's value now: its module global, its class attribute (global_name ".NAME"), or
        what its site last returned."""
        site = self.table.params[site_id]
        name = site.global_name
        if name and name[0] == ".":
            owner = self.param_owner(site_id)
            if owner is not None and name[1:] in vars(owner):
                return vars(owner)[name[1:]]
        elif name and name in self.namespace:
            return self.namespace[name]
        return self.param_values.get(site_id)

    def param_owner(self, site_id: int):
        """The class a class-level param belongs to (from its key "module:Class.NAME"), else None."""
        site = self.table.params[site_id]
        if not site.global_name or site.global_name[0] != ".":
            return None
        owner = None
        for part in site.key.split(":", 1)[1].split(".")[:-1]:
            owner = self.namespace.get(part) if owner is None else vars(owner).get(part)
            if not isinstance(owner, type):
                return None
        return owner

    def param_site(self, site_id, value, pyframe):
        """A `tracec.param(...)` site run by `pyframe`: returns the optimizer's candidate when one is tried."""
        site = self.table.params[site_id]
        value = _overrides.get(site.key, value)
        self.param_values[site_id] = value
        if _recorders and not _inside.active:
            _inside.active = True
            try:
                _recorders[-1].on_param(self, site_id, pyframe)
            except Exception:
                _internal_error()
            finally:
                _inside.active = False
        return value


def _module_hooks(module_name: str):
    return next((hooks for hooks in list(_modules) if hooks.table.module == module_name), None)


def _internal_error() -> None:
    if _recorders:
        _recorders[-1].internal_errors += 1
    if os.environ.get("TRACEC_DEBUG"):
        raise


def module(table_format: int, name: str, file: str, namespace: dict, functions, statements, params) -> ModuleHooks:
    """Called by an instrumented module's header line."""
    if table_format != TABLE_FORMAT:
        raise ImportError(f"{file}: instrumented by an incompatible tracec (table format {table_format}, this "
                          f"runtime reads {TABLE_FORMAT}); rebuild it with `tracec instrument`")
    return ModuleHooks(ModuleTable.from_literals(name, file, functions, statements, params), namespace,
                       (tuple(functions), tuple(statements), tuple(params)))


def _switch_all() -> None:
    top = _recorders[-1] if _recorders else None
    for hooks in list(_modules):
        hooks._switch(top)


def start(max_nodes: int = 200_000) -> Recorder:
    """Start recording every instrumented module; recordings nest, the innermost receives the nodes."""
    recorder = Recorder(max_nodes=max_nodes, on_full=_switch_all)
    _recorders.append(recorder)
    _switch_all()
    if len(_recorders) == 1:
        unwind.enable(_on_unwind)
    return recorder


def stop(recorder: Recorder) -> Recorder:
    if recorder in _recorders:
        recorder.finish()
        _recorders.remove(recorder)
        _switch_all()
        if not _recorders:
            unwind.disable()
    return recorder


def _on_unwind(exc: BaseException, pyframe) -> None:
    """An exception leaves `pyframe` (3.12+): if it is a traced frame, it gets its error node now."""
    if _recorders and not _inside.active:
        _inside.active = True
        try:
            _recorders[-1].on_unwind(exc, pyframe)
        except Exception:
            _internal_error()
        finally:
            _inside.active = False


def instrumented_modules() -> list[ModuleHooks]:
    """The hooks of every instrumented module loaded in this process."""
    return list(_modules)


def active() -> Recorder | None:
    return _recorders[-1] if _recorders else None


def observe_exception(exc: BaseException) -> Node | None:
    """Record error nodes for an exception that escaped traced code (tracebacks locate each frame)."""
    if not _recorders:
        return None
    nid = _recorders[-1].observe_exception(exc)
    return None if nid is None else _recorders[-1].nodes[nid]


@contextlib.contextmanager
def record(max_nodes: int = 200_000):
    """`with record() as run:` records the traced code run inside the block."""
    recorder = start(max_nodes=max_nodes)
    try:
        yield recorder
    except BaseException as exc:
        recorder.observe_exception(exc)
        raise
    finally:
        stop(recorder)


def set_param_override(key: str, value=None, *, clear: bool = False) -> None:
    """Make every `tracec.param` site with this key return `value` (used to try candidates)."""
    if clear:
        _overrides.pop(key, None)
    else:
        _overrides[key] = value


def _record_process() -> None:
    """TRACEC_RECORD=1: record the whole process, bounded by TRACEC_MAX_NODES, written at exit."""
    max_nodes = int(os.environ.get("TRACEC_MAX_NODES", "200000"))
    path = os.environ.get("TRACEC_GRAPH") or os.path.join(".tracec", "graphs", f"record-{os.getpid()}.json")
    path = os.path.abspath(path)
    recorder = start(max_nodes=max_nodes)

    def write_at_exit() -> None:
        stop(recorder)
        try:
            write_graph(recorder, path)
        except OSError as exc:
            print(f"tracec: could not write graph {path}: {exc}", file=sys.stderr)

    atexit.register(write_at_exit)


if os.environ.get("TRACEC_RECORD") == "1":
    _record_process()

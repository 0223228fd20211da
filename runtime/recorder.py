"""Recorder: turns hook calls from instrumented code into graph nodes.

A traced call's state lives in a `Frame`, found from the Python frame that called the hook (its id plus
its code object), so no injected name ever appears in the user's locals. Control dependence comes from
the static table: each statement names its enclosing condition, and the frame keeps that condition's
latest evaluation."""

from __future__ import annotations

import contextvars
import sys
import threading

from .graph import Graph, Node, Param
from .preview import preview

_SUSPENDING = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async generator
LOOP_NODES = 1000       # nodes one statement records in one frame before repeats are summarised
MAX_FRAMES = 100_000    # bound on the live-frame table: frames left by swallowed exceptions get evicted
# asyncio tasks inherit their creator
_creator: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("tracec_frame", default=None)


class Frame:
    __slots__ = ("key", "code", "mod", "table", "fid", "fn", "function", "vars", "ctrl", "pending",
                 "caller", "base", "children", "last", "counts", "done", "suspends", "thread")

    def __init__(self, key, code, mod, fid, caller):
        self.key, self.code, self.mod, self.table, self.fid = key, code, mod, mod.table, fid
        self.fn = self.table.functions[fid]
        self.function = f"{self.table.module}.{self.fn.qualname}"
        self.vars: dict[str, int] = {}
        self.ctrl: dict[int, int] = {}
        self.pending: list[int] = []     # nodes the next statement depends on: callee returns, params
        self.caller = caller
        self.base: tuple[int, ...] = ()  # parents of every node here: the code parameter of a trainable
        self.children: list[Frame] = []
        self.last = None
        self.counts: dict[int, list] = {}
        self.done = False
        self.suspends = bool(code.co_flags & _SUSPENDING)
        self.thread = threading.get_ident()


class Recorder(Graph):
    def __init__(self, max_nodes: int = 200_000, on_full=None) -> None:
        super().__init__()
        self.max_nodes = max_nodes
        self._on_full = on_full   # called once when max_nodes is reached: recording stops costing
        self.internal_errors = 0
        self._lock = threading.Lock()
        self._frames: dict[int, Frame] = {}
        self._globals: dict[tuple[str, str], int] = {}
        self._param_nodes: dict[str, int] = {}
        self._latest: dict[tuple[str, int], Frame] = {}   # (module, fid) -> latest frame, for closures
        self._open_top: dict[int, list[Frame]] = {}        # thread -> outermost frames not yet closed
        self._errors: dict[int, tuple[tuple, dict[int, int]]] = {}

    # -- nodes ------------------------------------------------------------------------------------
    def _add(self, kind, name, code, value, file, line, function, parents, control, error=None):
        text = value if type(value) is _Text else preview(value)
        parents, control = _edges(parents), _edges(control)
        with self._lock:
            nid = len(self.nodes)
            if nid >= self.max_nodes:
                full, self.truncated = not self.truncated, True
                if full and self._on_full is not None:
                    self._on_full()
                return None
            self.nodes.append(Node(nid, kind, name, code, text, file, line, function, parents, control, error))
        return nid

    def _statement_node(self, fr: Frame, sid: int, value, extra=()):
        st = fr.table.statements[sid]
        seen = fr.counts.get(sid)
        if seen is not None and seen[0] >= LOOP_NODES:   # a long loop: update the last node, don't grow
            seen[0] += 1
            nid = seen[1]
            node = self.nodes[nid]
            node.repeats += 1
            node.value = preview(value)
        else:
            parents = [self._read(fr, name) for name in st.reads]
            parents += fr.pending
            parents += fr.base
            parents += extra
            control = (fr.ctrl.get(st.control),) if st.control >= 0 else ()
            nid = self._add(st.kind, st.name, st.code, value, fr.table.file, st.line, fr.function,
                            parents, control)
            if nid is None:
                return None
            if seen is None:
                fr.counts[sid] = [1, nid]
            else:
                seen[0] += 1
                seen[1] = nid
        fr.pending = []
        for name in st.writes:
            self._write(fr, name, nid)
        fr.last = nid
        return nid

    # -- names ------------------------------------------------------------------------------------
    def _read(self, fr: Frame, name: str):
        nid = fr.vars.get(name)
        if nid is not None:
            return nid
        if fr.fn.outer >= 0:
            enclosing = self._latest.get((fr.table.module, fr.fn.outer))
            if enclosing is not None and name in enclosing.vars:
                return enclosing.vars[name]
        nid = self._globals.get((fr.table.module, name))
        if nid is not None:
            return nid
        site_id = fr.mod.global_params.get(name)
        if site_id is not None:
            return self.param_node(fr.mod, site_id)
        return None

    def _write(self, fr: Frame, name: str, nid: int) -> None:
        if name in fr.fn.global_names:
            self._globals[(fr.table.module, name)] = nid
            return
        if name in fr.fn.nonlocal_names and fr.fn.outer >= 0:
            enclosing = self._latest.get((fr.table.module, fr.fn.outer))
            if enclosing is not None:
                enclosing.vars[name] = nid
                return
        fr.vars[name] = nid

    def param_node(self, mod, site_id: int):
        site = mod.table.params[site_id]
        nid = self._param_nodes.get(site.key)
        if nid is None:
            nid = self._add("param", site.key.partition(":")[2], f"{site.key} = tracec.param(...)",
                            mod.param_value(site_id), mod.table.file, site.line, mod.table.module, (), ())
            if nid is not None:
                self._param_nodes[site.key] = nid
                self.params.append(Param(site.key, "value", nid, mod.table.file, site.line))
        return nid

    def _code_param(self, fr: Frame):
        key = f"{fr.table.module}:{fr.fn.qualname}"
        nid = self._param_nodes.get(key)
        if nid is None:
            nid = self._add("param", fr.fn.qualname, fr.fn.code, _Text(fr.fn.code), fr.table.file, fr.fn.line,
                            fr.function, (), ())
            if nid is not None:
                self._param_nodes[key] = nid
                self.params.append(Param(key, "code", nid, fr.table.file, fr.fn.line))
        return nid

    # -- frames -----------------------------------------------------------------------------------
    def frame(self, mod, fid: int, pyframe) -> Frame:
        fr = self._frames.get(id(pyframe))
        if fr is None or fr.code is not pyframe.f_code or fr.done:
            return self._enter(mod, fid, pyframe, None)
        if fr.children:
            self._finish_children(fr, pyframe)
        return fr

    def _enter(self, mod, fid: int, pyframe, arguments) -> Frame:
        """A new traced call. `arguments` are the parameter values in order, or None when the frame is
        entered lazily (its body starts with a loop or a def): then only the edges are recorded."""
        caller, caller_pyframe = self._find_caller(pyframe)
        fr = Frame(id(pyframe), pyframe.f_code, mod, fid, caller)
        if len(self._frames) >= MAX_FRAMES:
            self._frames.pop(next(iter(self._frames)))
        self._frames[fr.key] = fr
        self._latest[(fr.table.module, fid)] = fr
        if fr.fn.trainable:
            fr.base = (self._code_param(fr),)
        if caller is not None:
            if caller.children and caller_pyframe is not None:
                self._finish_children(caller, caller_pyframe)
            arg_parents = caller.pending + self._call_site_reads(caller, caller_pyframe)
            if not fr.suspends:
                caller.children.append(fr)
        else:
            arg_parents = []
            opened = self._open_top.setdefault(fr.thread, [])
            for old in opened:   # a new outermost call on this thread: the earlier ones have ended
                if not old.suspends and not old.done:
                    self._implicit_return(old)
            opened[:] = [old for old in opened if not old.done]
            opened.append(fr)
        _creator.set(fr)
        kind = "input" if caller is None else "op"
        for i, name in enumerate(fr.fn.argnames):
            value = arguments[i] if arguments is not None else _NOT_SEEN
            fr.vars[name] = self._add(kind, name, f"{name} (argument of {fr.fn.qualname})", value,
                                      fr.table.file, fr.fn.line, fr.function, [*arg_parents, *fr.base], ())
        return fr

    def _find_caller(self, pyframe):
        """The nearest traced frame up the stack; for generators and coroutines only the frame driving
        them directly, else the frame that was current when their asyncio task was created."""
        suspends = pyframe.f_code.co_flags & _SUSPENDING
        f = pyframe.f_back
        while f is not None:
            fr = self._frames.get(id(f))
            if fr is not None and fr.code is f.f_code and not fr.done:
                return fr, f
            if suspends:
                break
            f = f.f_back
        if suspends:
            fr = _creator.get()
            while fr is not None and fr.done:
                fr = fr.caller
            return fr, None
        return None, None

    def _call_site_reads(self, caller: Frame, caller_pyframe) -> list:
        if caller_pyframe is None:
            return []
        sid = caller.table.line_to_statement.get((caller.fid, caller_pyframe.f_lineno))
        if sid is None:
            return []
        return [self._read(caller, name) for name in caller.table.statements[sid].reads]

    def _finish_children(self, fr: Frame, pyframe) -> None:
        """The parent runs again, so its non-suspending callees have finished; those that fell off their
        end without a `return` statement get an implicit return node. In a `finally` block the
        exception that ended them is still in flight: record it first."""
        exc = sys.exc_info()[1]
        if exc is not None:
            self.observe_exception(exc, handling=pyframe)
        for child in fr.children:
            if not child.done:
                self._implicit_return(child)
        fr.children = []

    def _implicit_return(self, fr: Frame) -> None:
        """A call that ended without its return hook: it fell off its end, or, when its body cannot,
        an exception ended it and untraced code caught it (that exception itself is not visible)."""
        line = self.nodes[fr.last].line if fr.last is not None else fr.fn.line
        parents = [fr.last, *fr.pending, *fr.base]
        if fr.last is None:   # nothing ran to completion: the call depends on its arguments
            parents += fr.vars.values()
        if fr.fn.falls_off:
            nid = self._add("return", "return", "(end of function: returns None)", None, fr.table.file, line,
                            fr.function, parents, ())
        else:
            error = {"type": "Exception", "message": "the call ended by an exception that untraced code caught "
                     "(pass it to tracec.runtime.observe_exception to record it)"}
            nid = self._add("error", "Exception", "(exception caught outside traced code)", _NOT_SEEN,
                            fr.table.file, line, fr.function, parents, (), error)
        self._close(fr, nid)

    def _close(self, fr: Frame, nid) -> None:
        fr.done = True
        if self._frames.get(fr.key) is fr:
            del self._frames[fr.key]
        if fr.caller is not None:
            fr.caller.pending.append(nid)
            _creator.set(fr.caller)
        elif nid is not None:
            self.output_ids.append(nid)

    # -- hook entry points (called through ModuleHooks) -------------------------------------------
    def on_statement(self, mod, sid, value, pyframe):
        self._statement_node(self.frame(mod, mod.table.statements[sid].fid, pyframe), sid, value)

    def on_control(self, mod, sid, value, pyframe):
        fr = self.frame(mod, mod.table.statements[sid].fid, pyframe)
        fr.ctrl[sid] = self._statement_node(fr, sid, value)

    def on_return(self, mod, sid, value, pyframe):
        fr = self.frame(mod, mod.table.statements[sid].fid, pyframe)
        self._close(fr, self._statement_node(fr, sid, value))

    def on_yield(self, mod, sid, value, pyframe):
        fr = self.frame(mod, mod.table.statements[sid].fid, pyframe)
        nid = self._statement_node(fr, sid, value)
        if nid is None:
            return
        if fr.caller is not None and not fr.caller.done:
            fr.caller.pending.append(nid)
        else:
            self.output_ids.append(nid)

    def on_enter(self, mod, fid, arguments, pyframe):
        self._enter(mod, fid, pyframe, arguments)

    def on_param(self, mod, site_id, pyframe):
        nid = self.param_node(mod, site_id)
        fr = self._frames.get(id(pyframe))
        if fr is not None and fr.code is pyframe.f_code:
            fr.pending.append(nid)

    def on_handler(self, mod, sid, pyframe):
        exc = sys.exc_info()[1]   # observed first: the callees it ended must not look like returns
        err = self.observe_exception(exc, handling=pyframe) if exc is not None else None
        fr = self.frame(mod, mod.table.statements[sid].fid, pyframe)
        fr.ctrl[sid] = self._statement_node(fr, sid, exc, extra=(err,))

    # -- exceptions -------------------------------------------------------------------------------
    def on_unwind(self, exc: BaseException, pyframe) -> None:
        """`exc` leaves `pyframe` (sys.monitoring, 3.12+). Only a frame this recording traces matters; its
        traceback then runs from this frame to where `exc` was raised, so observing it now records the
        real error in every traced frame on the way, whoever catches it later."""
        fr = self._frames.get(id(pyframe))
        if fr is not None and fr.code is pyframe.f_code and not fr.done:
            self.observe_exception(exc)

    def observe_exception(self, exc: BaseException, handling=None):
        """Record error nodes along the exception's traceback, innermost first, and close the traced
        frames it ended (all but `handling`, the frame catching it). Returns the outermost error node.
        Idempotent per (exception, frame), so a re-raised exception is not recorded twice."""
        if not issubclass(type(exc), Exception):
            return None
        chain = []
        tb = exc.__traceback__
        origin: tuple = (type(exc),)
        while tb is not None:
            fr = self._frames.get(id(tb.tb_frame))
            if fr is not None and fr.code is tb.tb_frame.f_code and not fr.done:
                chain.append((fr, tb.tb_lineno, tb.tb_frame))
            origin = (type(exc), id(tb.tb_frame.f_code), tb.tb_lineno)   # the innermost entry wins
            tb = tb.tb_next
        # remembered by id and origin, never by reference: holding the exception would keep its
        # traceback's frames and their locals alive (weakref callbacks, finalizers would change)
        entry = self._errors.get(id(exc))
        if entry is None or entry[0] != origin:
            if len(self._errors) > 1000:
                self._errors.clear()
            entry = self._errors[id(exc)] = (origin, {})
        recorded = entry[1]
        below = None
        for depth, (fr, line, pyframe) in enumerate(reversed(chain)):
            if fr.key in recorded:
                below = recorded[fr.key]
            else:
                sid = fr.table.line_to_statement.get((fr.fid, line))
                st = fr.table.statements[sid] if sid is not None else None
                parents = [self._read(fr, n) for n in st.reads] if st else []
                parents += [*fr.pending, *fr.base, below]
                control = (fr.ctrl.get(st.control),) if st and st.control >= 0 else ()
                error: dict[str, str | list[str]] = {"type": type(exc).__name__, "message": _message(exc)}
                if depth == 0:
                    error["traceback"] = _traceback_summary(exc, _project_root(fr))
                below = self._add("error", type(exc).__name__, st.code if st else "", exc, fr.table.file,
                                  line, fr.function, parents, control, error)
                recorded[fr.key] = below
                fr.pending = []
                fr.last = below
            if pyframe is not handling:
                fr.pending = []
                self._close(fr, below)
        return below

    def finish(self) -> None:
        """End of recording: outermost frames still open fell off their end."""
        for frames in self._open_top.values():
            for fr in frames:
                if not fr.done and not fr.suspends:
                    self._implicit_return(fr)
        self._open_top.clear()


def _edges(ids) -> tuple:
    """Sorted distinct node ids, without the None of names no node wrote. A tuple of ints is one
    object the garbage collector soon stops tracking, which keeps big recordings from slowing down."""
    ids = [i for i in ids if i is not None]
    return tuple(sorted(set(ids)) if len(ids) > 1 else ids)


class _Text(str):
    """A value already rendered as text (a function's source line): stored as is, not repr'd."""


_NOT_SEEN = _Text("<not seen>")


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"
    return text if len(text) <= 500 else text[:497] + "..."


def _project_root(fr: Frame) -> str:
    """The folder the graph's relative `file` paths start from: the traced file's path minus them."""
    filename = fr.code.co_filename.replace("\\", "/")
    return filename[: -len(fr.table.file)] if filename.endswith("/" + fr.table.file) else ""


def _traceback_summary(exc: BaseException, root: str) -> list[str]:
    out = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename.replace("\\", "/")
        if root and filename.startswith(root):
            filename = filename[len(root):]
        out.append(f"{filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return out[-20:]

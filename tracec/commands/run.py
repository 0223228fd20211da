"""`tracec run`: run a program like `python` does, instrumented and recorded.

The program's stdout, stderr and exit status pass through unchanged: SystemExit is translated
the way the interpreter does it, and an uncaught exception prints the traceback Python would
print (tracec's own frames removed) and exits 1.  The graph is written in every case.
"""

from __future__ import annotations

import argparse
import builtins
import importlib.machinery
import os
import runpy
import sys
import traceback
import types
from pathlib import Path

from tracec import importhook, project

_HIDDEN_FILENAMES = ("<frozen runpy>", "<frozen importlib._bootstrap>",
                     "<frozen importlib._bootstrap_external>")


def exit_status(exc: SystemExit) -> int:
    """The status the interpreter exits with for an uncaught SystemExit (printing like it)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _hidden_frame(filename: str, tracec_dirs: tuple[str, ...]) -> bool:
    """A frame of tracec itself, or of the runpy/importlib machinery it drives."""
    if filename in _HIDDEN_FILENAMES:
        return True
    real = os.path.realpath(filename) if os.path.isabs(filename) else filename
    return any(real == d or real.startswith(d + os.sep) for d in tracec_dirs)


def _drop_outer_tracec_frames(exc: BaseException) -> None:
    """Start the traceback at the program's first frame (runner and runpy frames are tracec's)."""
    tracec_dirs = importhook.tracec_frame_dirs()
    tb = exc.__traceback__
    while tb is not None and _hidden_frame(tb.tb_frame.f_code.co_filename, tracec_dirs):
        tb = tb.tb_next
    exc.__traceback__ = tb


def format_user_exception(exc: BaseException) -> str:
    """The traceback text `python` would print, minus tracec's frames.

    Column carets are dropped on lines the transform rewrote: their code positions refer to the
    instrumented text, so they would underline the wrong part of the user's line.
    """
    tracec_dirs = importhook.tracec_frame_dirs()
    top = traceback.TracebackException.from_exception(exc)
    pending, seen = [top], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = []
        for frame in current.stack:
            if _hidden_frame(frame.filename, tracec_dirs):
                continue
            changed = importhook.CHANGED_LINES.get(frame.filename, ())
            if frame.lineno in changed and hasattr(frame, "colno"):  # carets exist from 3.11 on
                frame.colno = frame.end_colno = None
            frames.append(frame)
        current.stack = traceback.StackSummary.from_list(frames)
        for linked in (current.__cause__, current.__context__, *(getattr(current, "exceptions", None) or ())):
            if linked is not None:
                pending.append(linked)
    return "".join(top.format())


def _exec_script(script: str, args: list[str], root: Path, all_functions: bool) -> None:
    """Run SCRIPT as __main__, instrumented, the way `python SCRIPT ARGS...` sets things up."""
    filename = os.path.abspath(script)
    with open(filename, "rb") as handle:
        source = handle.read()
    code = importhook.compile_project_source(
        source,
        filename,
        path=project.relative_posix(filename, root),
        module=project.module_name_for_file(filename),
        all_functions=all_functions,
    )
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=filename,
        __cached__=None,
        __builtins__=builtins,
        __loader__=importlib.machinery.SourceFileLoader("__main__", filename),
        __spec__=None,
    )
    previous = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    sys.argv[:] = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(filename))
    try:
        exec(code, main.__dict__)
    finally:
        if previous is not None:
            sys.modules["__main__"] = previous


def _exec_module(module: str, args: list[str]) -> None:
    """Run MODULE as __main__ like `python -m MODULE ARGS...` (argv[0] becomes its path)."""
    sys.argv[:] = [module, *args]
    sys.path[0] = os.getcwd()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(options: argparse.Namespace) -> int:
    """`tracec run`; returns the program's exit status."""
    script, module, args, graph = options.script, options.module, options.args, options.graph
    all_functions, verbose = options.all_functions, options.verbose
    import tracec.runtime as rt

    root = project.find_project_root()
    graph_path = Path(graph).resolve() if graph else root / ".tracec" / "graph.json"
    if script is not None and not os.path.isfile(script):
        # Same wording and status as the interpreter for a missing script.
        print(f"tracec run: can't open file {os.path.abspath(script)!r}: "
              "[Errno 2] No such file or directory", file=sys.stderr)
        return 2
    importhook.install(root, all_functions=all_functions)
    recording = rt.start()
    status, escaped = 0, None
    try:
        if module is not None:
            _exec_module(module, args)
        else:
            _exec_script(script, args, root, all_functions)
    except SystemExit as exc:
        status = exit_status(exc)
    except BaseException as exc:  # the program's own error: report it like Python does
        escaped = exc
        status = 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        importhook.uninstall()
    if escaped is not None:
        _drop_outer_tracec_frames(escaped)
        sys.stderr.write(format_user_exception(escaped))
    # From here on a failure is tracec's, never allowed to hide the program's own status.
    try:
        if escaped is not None:
            rt.observe_exception(escaped)
        run = rt.stop(recording) or recording
        rt.write_graph(run, graph_path)
    except Exception as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        print(f"tracec run: cannot write graph {graph_path}: {reason}", file=sys.stderr)
        return status or 123
    if verbose or sys.stderr.isatty():
        shown = project.display_path(graph_path)
        print(f"tracec: graph {shown} ({len(run.nodes)} nodes)", file=sys.stderr)
    return status

"""The last word on an instrumented module before anyone writes or runs it: Python's own compiler.

`check_output` compiles the output and checks that every statement of the original is still there, of
the same kind, on the same line, once the statements the pass adds (hook calls after a `;`, the header)
are set aside. A failure here is a bug in the pass: the caller then uses the original source instead.
"""

from __future__ import annotations

import ast
from typing import cast

from .instrument import HOOK_PREFIX

_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def compiled_tree(source: str, path: str) -> ast.Module:
    """The syntax tree of `source`, once Python has compiled it all the way to bytecode (some errors,
    like `return` outside a function, only show there). From the text both times: rebuilding bytecode
    from a tree object recurses more, and fails on deep code that compiles from text."""
    compile(source, path, "exec", dont_inherit=True)
    return cast(ast.Module, compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True))   # "exec": a Module


def check_output(source_tree: ast.Module, code: str, path: str) -> tuple[int, str] | None:
    """(line, problem) if `code` does not compile or does not keep the statements of `source_tree` on
    their lines, else None."""
    try:
        tree = compiled_tree(code, path)
    except SyntaxError as exc:
        return exc.lineno or 1, f"instrumented code does not compile: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return 1, f"instrumented code does not compile: {type(exc).__name__}: {exc}"
    return _moved(source_tree.body, tree.body)


def _moved(before: list, after: list) -> tuple[int, str] | None:
    after = [new for i, new in enumerate(after) if not _added(new, after[i - 1] if i else None)]
    for old, new in zip(before, after):
        if type(old) is not type(new) or _line(old) != _line(new):
            return _line(old), (f"instrumented code moved or changed the {type(old).__name__} statement of "
                                f"line {_line(old)} (found {type(new).__name__} at line {_line(new)})")
        for field in _BODIES:
            inner = _moved(getattr(old, field, None) or [], getattr(new, field, None) or [])
            if inner is not None:
                return inner
    if len(before) != len(after):
        extra = before[len(after)] if len(before) > len(after) else after[len(before)]
        return _line(extra), f"instrumented code has a different number of statements in the block of line {_line(extra)}"
    return None


def _line(node: ast.stmt | ast.excepthandler | ast.match_case) -> int:
    return node.pattern.lineno if isinstance(node, ast.match_case) else node.lineno


def _added(node: ast.stmt, previous: ast.stmt | None) -> bool:
    """A statement the pass adds (as opposed to a user statement it wraps, `f(x)` -> `_tracec_v(3, f(x))`):
    a function's entry or a handler's hook, a bare return's hook, the value read back after `x += ...`,
    and the header's import and assignment."""
    if isinstance(node, ast.Expr):
        call = node.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            return False
        hook, args = call.func.id, call.args
        if hook in (HOOK_PREFIX + "e", HOOK_PREFIX + "h", HOOK_PREFIX + "r"):   # user expressions get `_v`
            return True
        return (hook == HOOK_PREFIX + "v" and isinstance(previous, ast.AugAssign) and len(args) == 2
                and isinstance(args[1], ast.Name) and isinstance(previous.target, ast.Name)
                and previous.target.id == args[1].id)
    if isinstance(node, ast.Import):
        return [(a.name, a.asname) for a in node.names] == [("tracec.runtime", HOOK_PREFIX + "rt")]
    if isinstance(node, ast.Assign):
        return [getattr(t, "id", None) for t in node.targets] == [HOOK_PREFIX + "m"]
    return False


__all__ = ["check_output"]

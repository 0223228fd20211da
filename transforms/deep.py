"""Code nested deeper than LibCST's recursive visitors and code generator can follow.

CPython compiles expressions thousands of levels deep (a 5 000-term sum on 3.13); LibCST recurses once
or more per level, in Python (raise the recursion limit, on a big stack) and, on 3.12+, through C calls
whose own limit is fixed. So the pass is tried as is, then on a big stack, and last with every expression
nested more than MASK_HEIGHT levels masked: cut out of the source (a placeholder with the same lines
stands in for it), left as written, and put back into the output. Expressions over SLOW_HEIGHT levels are
masked from the start (LibCST would take minutes to parse them only to fail). A masked expression records
as one opaque value: its names are not read edges and param sites inside it are not seen.
"""

from __future__ import annotations

import ast
import re
import sys
import threading

DEEP_RECURSION_LIMIT = 200_000
DEEP_STACK_BYTES = 1 << 30    # virtual: only the pages a deep recursion touches are ever committed
MASK_HEIGHT = 100             # expressions taller than this are masked on the last attempt
SLOW_HEIGHT = 1_000           # ... and masked at once when this tall: LibCST parses them in seconds to minutes
# A call, not a parenthesised name: the pass may move an expression's own parentheses (and the line
# breaks in them), never a call's
_PLACEHOLDER = "_tracec_deep_{}_"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_LEFTOVER = re.compile(r"_tracec_deep_\d+_(\([^()]*\))?")


def instrument_deep(instrument, source: str, tree: ast.Module):
    """`instrument(source)` (an InstrumentResult), with the fallbacks above; the result's code holds the
    masked expressions as written."""
    from dataclasses import replace

    masked_source, masked = mask_deep_expressions(source, tree, SLOW_HEIGHT)
    try:
        result = deep_call(instrument, masked_source)
    except Exception:   # too deep for LibCST (RecursionError, or metadata left half-built by one)
        masked_source, masked = mask_deep_expressions(source, tree, MASK_HEIGHT)
        if not masked:
            raise
        result = deep_call(instrument, masked_source)
    if not masked or result.code is None:
        return result
    return replace(result, source=source, code=unmask(result.code, masked))


def deep_call(function, *args):
    """`function(*args)`; if it runs out of recursion depth, once more in a thread with a large stack
    and a raised recursion limit (process-wide while it runs, so only for the file that needs it)."""
    try:
        return function(*args)
    except Exception as exc:
        if not _out_of_depth(exc):
            raise
    outcome: list = []

    def run() -> None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, DEEP_RECURSION_LIMIT))
        try:
            outcome.append((True, function(*args)))
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            sys.setrecursionlimit(limit)

    size = threading.stack_size(DEEP_STACK_BYTES)
    try:
        worker = threading.Thread(target=run, name="tracec-deep-transform")
        worker.start()
    finally:
        threading.stack_size(size)
    worker.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _out_of_depth(exc: BaseException | None) -> bool:
    """A RecursionError, or an error raised while one was unwinding: LibCST's position provider looks the
    unfinished node up in a `finally` and raises KeyError in its place."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, RecursionError):
            return True
        seen.add(id(exc))
        exc = exc.__context__
    return False


def python_lines(text: str) -> list[str]:
    """`text` cut into lines as Python numbers them, each with its line end (str.splitlines also cuts
    at form feeds and other separators Python's tokenizer treats as whitespace)."""
    return _LINE.findall(text)


def mask_deep_expressions(source: str, tree: ast.Module, height: int = MASK_HEIGHT) -> tuple[str, list[str]]:
    """(source with each outermost expression taller than `height` replaced by a placeholder of the
    same lines, the replaced texts in placeholder order). Nothing is masked inside f-strings or targets."""
    return cut_out(source, _tall_expressions(tree, height), _deep_placeholder)


def unmask(code: str, masked: list[str]) -> str:
    """Put the masked expressions back (ValueError if one cannot be found as it was placed)."""
    for index, text in enumerate(masked):
        placeholder = _deep_placeholder(index, text)
        if placeholder not in code:
            raise ValueError(f"a masked expression ({_PLACEHOLDER.format(index)}) was rewritten")
        code = code.replace(placeholder, "(" + text + ")", 1)
    return code


def _deep_placeholder(index: int, text: str) -> str:
    return _PLACEHOLDER.format(index) + "(" + "\n" * text.count("\n") + ")"


def cut_out(source: str, nodes, placeholder) -> tuple[str, list[str]]:
    """(source with each ast node's text replaced by `placeholder(index, text)`, the texts in source
    order): the masking both this module and libcst_limits do."""
    lines = python_lines(source)
    spans = sorted((offset_of(lines, n.lineno, n.col_offset), offset_of(lines, n.end_lineno, n.end_col_offset))
                   for n in nodes)
    texts = [source[start:end] for start, end in spans]
    for index in reversed(range(len(spans))):   # from the end, so earlier offsets stay valid
        start, end = spans[index]
        source = source[:start] + placeholder(index, texts[index]) + source[end:]
    return source, texts


def unmask_text(text: str) -> str:
    """A placeholder in the header's tables (a statement's code, a name it reads) reads `...` there."""
    return _LEFTOVER.sub("...", text)


def _tall_expressions(tree: ast.Module, limit: int) -> list[ast.expr]:
    """The outermost expressions taller than `limit` (iteratively: they are too deep to recurse)."""
    height: dict[int, int] = {}
    order: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(ast.iter_child_nodes(node))
    for node in reversed(order):   # children before parents
        height[id(node)] = 1 + max((height[id(c)] for c in ast.iter_child_nodes(node)), default=0)
    found: list[ast.expr] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.JoinedStr) or isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            continue
        if isinstance(node, ast.expr) and height[id(node)] > limit:
            found.append(node)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def offset_of(lines: list[str], lineno: int, col: int) -> int:
    """Character offset of an ast position (1-based line, UTF-8 byte column) in the joined lines."""
    before = sum(len(line) for line in lines[: lineno - 1])
    return before + len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", "replace"))

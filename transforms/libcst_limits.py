"""Code Python compiles that LibCST cannot parse, or does not print back unchanged, and the workarounds.

Found by grammar fuzzing and by building CPython's standard library; every workaround keeps each line
where it is and each statement as Python runs it:

- Continuation lines between an `except` clause's type and its `:` (`except T \\` then `:` on the next
  line) are dropped when LibCST prints its tree. The type is parenthesised before parsing, so the break
  sits inside the parentheses, which LibCST keeps: `except (T \\` then `):`. Same exception, same lines.
- A parenthesised annotated target, `(x): int`, is outside LibCST's grammar. Such a statement is masked:
  cut out of the source, replaced by an inert literal statement with the same lines (the pass leaves
  literal statements alone), and put back as written. A masked statement records nothing.

What no workaround covers is caught by the output check; `not_reproduced` then names the line LibCST
loses, so the message blames LibCST and not the user's code.
"""

from __future__ import annotations

import ast
import re
from typing import cast

from .deep import cut_out, offset_of, python_lines

MAX_MASKED_LINES = 20
# an integer statement is never instrumented, and is not a docstring where a string would be one
_MARK = "0x7AC3C"
_PLACEHOLDER = "(" + _MARK + "{:04X}"
_ERROR_AT = re.compile(r"error at (\d+):(\d+)")
_CONTINUED_COLON = re.compile(r"\\(?:\r\n|\r|\n)[ \t\f]*:")
_COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
             ast.With, ast.AsyncWith, ast.Try, ast.Match) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())
# statements the pass must see for its own bookkeeping (returns, generators, scopes): never masked
_NEEDED = (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)


def parse(source: str):
    """(LibCST's tree, masked statements): the tree of `source` with the workarounds above applied, its
    code `source` with handler types parenthesised and placeholders for the masked statements
    (`unmask_statements` puts them back). Raises libcst.ParserSyntaxError when masking does not help."""
    import libcst as cst

    text = parenthesize_handler_types(source)
    attempt = text
    masked: list[str] = []
    lines: set[int] = set()
    while True:
        try:
            return cst.parse_module(attempt), masked
        except cst.ParserSyntaxError as exc:
            untried = [line for line in _error_lines(exc) if line not in lines]
            if not untried or len(lines) >= MAX_MASKED_LINES:
                raise
            lines.add(untried[0])
            attempt, masked = mask_statements(text, lines)
            if not masked:
                raise


def error_line(exc) -> int:
    """The line a libcst.ParserSyntaxError is about, as near as LibCST says."""
    return _error_lines(exc)[0]


def _error_lines(exc) -> list[int]:
    """The lines a libcst.ParserSyntaxError may be about, likeliest first: its message's line (its
    raw_line is often the next statement's), then raw_line."""
    found = _ERROR_AT.search(exc.message)
    return ([int(found[1])] if found else []) + [exc.raw_line]


def parenthesize_handler_types(source: str) -> str:
    """`source` with every `except T` whose `:` follows a line continuation written `except (T ... ):`.
    Positions come from Python's own parser: the tokenize module misreads a line that is only a `\\`."""
    if not _CONTINUED_COLON.search(source):
        return source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    lines = python_lines(source)
    inserts: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None and node.name is None:
            # (end positions are None only on nodes built by hand, never on ast.parse's)
            end_lineno, end_col = cast(int, node.type.end_lineno), cast(int, node.type.end_col_offset)
            colon = _colon_after(source, offset_of(lines, end_lineno, end_col))
            if colon is not None:
                inserts += [(offset_of(lines, node.type.lineno, node.type.col_offset), "("), (colon, ")")]
    for offset, text in sorted(inserts, reverse=True):   # from the end, so earlier offsets stay valid
        source = source[:offset] + text + source[offset:]
    return source


def _colon_after(source: str, index: int) -> int | None:
    """Where the handler's `:` is, when a line continuation comes between the type's end (`index`) and it;
    else None. Only blanks, comments, line breaks and the type's closing parentheses can lie between."""
    continued = False
    while index < len(source):
        char = source[index]
        if char == ":":
            return index if continued else None
        if char == "\\":
            continued = True
            index += 1
        elif char == "#":
            while index < len(source) and source[index] not in "\r\n":
                index += 1
            continue
        elif char not in " \t\f\r\n)":
            return None
        index += 1
    return None


def mask_statements(source: str, lines: set[int]) -> tuple[str, list[str]]:
    """(source with each simple statement on one of `lines` replaced by a placeholder of the same lines,
    the replaced texts in placeholder order); nothing is masked when a statement on those lines is one
    the pass needs, or the source already holds a placeholder's text."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source, []
    found = [node for node in _simple_statements(tree)
             if any(node.lineno <= line <= cast(int, node.end_lineno) for line in lines)]   # (ast.parse's: set)
    if not found or _MARK in source or \
            any(isinstance(part, _NEEDED) for node in found for part in ast.walk(node)):
        return source, []
    return cut_out(source, found, _placeholder)


def unmask_statements(code: str, masked: list[str]) -> str:
    """Put the masked statements back (ValueError if one cannot be found as it was placed)."""
    for index, text in enumerate(masked):
        placeholder = _placeholder(index, text)
        if code.count(placeholder) != 1:
            raise ValueError(f"a masked statement ({placeholder.strip()}...) was rewritten")
        code = code.replace(placeholder, text, 1)
    return code


def _placeholder(index: int, text: str) -> str:
    # the line ends of the statement's own, so a \r\n file stays one
    ends = re.findall(r"\r\n|\r|\n", text)
    return _PLACEHOLDER.format(index) + "".join(ends) + ")"


def _simple_statements(tree: ast.Module) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.stmt) and not isinstance(node, _COMPOUND):
            found.append(node)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(getattr(node, field, ()))
    return found


def not_reproduced(source: str) -> int | None:
    """The first line LibCST's round trip (parse, then print unchanged) gets wrong, or None. Run only
    when an output failed verification, so the common path pays nothing for it."""
    import libcst as cst

    from .deep import deep_call

    try:
        text = deep_call(lambda: cst.parse_module(source).code)
    except Exception:
        return None
    if text == source:
        return None
    mine, theirs = python_lines(source), python_lines(text)
    return next((n for n, (a, b) in enumerate(zip(mine, theirs), 1) if a != b), min(len(mine), len(theirs)))

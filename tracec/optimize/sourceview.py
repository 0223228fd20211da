"""Read-only views of the project's source files for the optimizer's prompt: numbered lines, function
headers with docstrings, and statement spans (parsed once per file, never written)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text)} chars, the first {limit} shown]"


_CONTEXT_LINES = ("else:", "try:", "finally:")   # shown inside a gap: they say which branch a line is in
_STATEMENT_LINES = 8                              # a longer statement is shown cut


class SourceView:
    """Lines, function headers and statement spans of the project's files (read once, never written)."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[str, tuple] = {}

    def _load(self, file: str) -> tuple:
        if file not in self._files:
            lines, functions, spans = None, {}, {}
            try:
                text = (self.root / file).read_text(encoding="utf-8")
                lines = text.splitlines()
                tree = ast.parse(text)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                tree = None
            if tree is not None:
                _index(tree, "", functions, spans)
            self._files[file] = (lines, functions, spans)
        return self._files[file]

    def qualname(self, file: str, function: str) -> str | None:
        """The qualname in `file` that a recorded "module.qualname" names (the longest that fits)."""
        fits = [q for q in self._load(file)[1] if function == q or function.endswith("." + q)]
        return max(fits, key=len) if fits else None

    def _header(self, file: str, qualname: str | None) -> tuple[int, int, int]:
        """(first line, last line, indent) of a def's header, or zeros when unknown."""
        lines, functions, spans = self._load(file)
        fn = functions.get(qualname) if qualname else None
        if fn is None or lines is None:
            return 0, 0, 0
        first = lines[fn.lineno - 1]
        return fn.lineno, spans.get(fn.lineno, fn.lineno), len(first) - len(first.lstrip())

    def listing(self, file: str, qualname: str | None, shown: Sequence[int], fallback: dict[int, str]) -> str:
        lines = self._load(file)[0]
        spans = self._load(file)[2]
        start, end, indent = self._header(file, qualname)
        if lines is None:
            return "\n".join(f"{n:>4} | {fallback[n]}" for n in sorted(fallback))
        out = [_numbered(lines, n, indent) for n in range(start, end + 1)] if start else []
        last = end if start else (shown[0] - 1 if shown else 0)
        for n in shown:
            if n <= last or n > len(lines):
                continue
            skipped = range(last + 1, n)
            gap = False
            for k in skipped:
                text = lines[k - 1].split("#", 1)[0].strip()
                if text in _CONTEXT_LINES:
                    out.append(_numbered(lines, k, indent))
                    gap = False
                elif text and not gap:
                    out.append("     | ...")
                    gap = True
            stop = spans.get(n, n)
            for k in range(n, min(stop, n + _STATEMENT_LINES - 1) + 1):
                out.append(_numbered(lines, k, indent))
            if stop >= n + _STATEMENT_LINES:
                out.append("     | ... (statement continues)")
            last = stop
        return "\n".join(out)

    def definition(self, file: str, qualname: str | None) -> str:
        """The def header and docstring of a function, as the user wrote them."""
        lines, functions, _ = self._load(file)
        start, end, indent = self._header(file, qualname)
        if not start:
            return ""
        header = "\n".join(lines[k - 1][indent:] for k in range(start, end + 1))
        doc = ast.get_docstring(functions[qualname])
        return header + (f'\n    """{truncate(doc, 400)}"""' if doc else "")

    @staticmethod
    def signature_of(code: str) -> str | None:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            return None
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return f"{node.name}({ast.unparse(node.args)})"
        return None


def _index(tree, prefix: str, functions: dict, spans: dict) -> None:
    """qualname -> def node (Python's own qualname rules), and the last line of each statement's header."""
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and not isinstance(node, ast.ClassDef):
                spans[node.lineno] = max(node.lineno, body[0].lineno - 1)
            elif not isinstance(node, ast.ClassDef):
                spans[node.lineno] = max(spans.get(node.lineno, node.lineno), node.end_lineno or node.lineno)
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.setdefault(prefix + child.name, child)
                walk(child, f"{prefix}{child.name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            elif not isinstance(child, ast.Lambda):
                walk(child, prefix)
    walk(tree, prefix)


def _numbered(lines: list[str], n: int, indent: int) -> str:
    text = lines[n - 1]
    if indent:
        text = text[indent:] if text[:indent].isspace() else text.lstrip()
    return f"{n:>4} | {text}".rstrip()

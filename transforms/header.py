"""Where the runtime header goes: on a line the module already has, before any traced code can run.

The header binds the module's hooks, so it must run before the first hook call, and it must not add a
line in front of user code (every later line would move). In order of preference, at the first place
that runs early enough:
- the line of the last `from __future__` import (they must stay first), or of the module's first simple
  statement (after its docstring);
- a blank or comment line between module-level statements;
- an expression the module evaluates once on the way: the test of an `if`, a `for` iterable, a `with`
  item, a `match` subject, the first decorator, a class's first base (`class A:` -> `class A(HDR and
  object):`), a function's first default, as `(_tracec_m := ...) and (EXPR)`; the body of a `try`;
- past definitions that run nothing when executed (a `def` without decorators whose defaults and
  annotations call nothing), which may precede it;
- after the last statement, when everything before is such a definition (a new last line moves nothing).
Only a module whose first statement that runs code offers none of these (a generic class `class A[T]:`
without bases) is reported as not placed.
"""

from __future__ import annotations

import ast
import re
from typing import cast

import libcst as cst

from .deep import python_lines
from .embedding import CONDITION, parenthesize, spaced

_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")   # PEP 263


def place_header(module: cst.Module, header: str, expression: str) -> tuple[cst.Module, bool]:
    """(module with the header statement `header` or the assignment expression `expression`, placed)."""
    header_line = cast(cst.SimpleStatementLine, cst.parse_statement(header))   # the header is simple statements
    body = list(module.body)
    if not body:
        return module, False
    future = [i for i, stmt in enumerate(body) if _is_future_import(stmt)]
    if future or isinstance(body[0], cst.SimpleStatementLine):
        i = future[-1] if future else 0
        line = cast(cst.SimpleStatementLine, body[i])   # a `from __future__` line, or the line just tested
        small = list(line.body)
        insert_at = len(small) if future else int(_is_docstring(small[0]))
        body[i] = line.with_changes(body=small[:insert_at] + list(header_line.body) + small[insert_at:])
        return module.with_changes(body=body), True
    # the file's leading blank and comment lines count as the first statement's
    original = module
    body[0] = body[0].with_changes(leading_lines=[*module.header, *body[0].leading_lines])
    module = module.with_changes(header=[])
    placed = _place_in_block(body, header_line, cst.parse_expression(expression))
    if placed is not None:
        return module.with_changes(body=placed), True
    if not all(_runs_nothing(stmt) for stmt in body):
        return original, False   # as it was: its leading lines are still the file's
    footer = list(module.footer)
    at = _spare_line(footer, protected=0)
    if at is None:
        return module.with_changes(body=[*body[:-1], body[-1], header_line]), True
    return module.with_changes(body=[*body, _on_line(header_line, footer[at], footer[:at])],
                               footer=footer[at + 1:]), True


def _place_in_block(body: list, header_line, hdr, protected: int = 2) -> list | None:
    """The statements of a block with the header placed in front of everything that may run code, or
    None. `protected`: leading lines of the first statement that must keep their place if they are a
    shebang or encoding line (the file's first two)."""
    for i, stmt in enumerate(body):
        lines = list(stmt.leading_lines)
        at = _spare_line(lines, protected if i == 0 else 0)
        if at is not None:
            body[i] = stmt.with_changes(leading_lines=lines[at + 1:])
            body.insert(i, _on_line(header_line, lines[at], lines[:at]))
            return body
        if isinstance(stmt, cst.SimpleStatementLine):
            body[i] = stmt.with_changes(body=[*header_line.body, *stmt.body])
            return body
        if isinstance(stmt, (cst.Try, cst.TryStar)):   # its body runs first, in the module's scope
            if not isinstance(stmt.body, cst.IndentedBlock):
                return None
            inner = _place_in_block(list(stmt.body.body), header_line, hdr, protected=0)
            if inner is None:
                return None
            body[i] = stmt.with_changes(body=stmt.body.with_changes(body=inner))
            return body
        if _runs_nothing(stmt):
            continue
        placed = _in_expression(stmt, hdr)
        if placed is None:
            return None
        body[i] = placed
        return body
    return None


def _in_expression(stmt: cst.BaseStatement, hdr: cst.BaseExpression):
    """`stmt` with `(_tracec_m := ...) and (EXPR)` in the first expression it evaluates (the hooks
    object is truthy, so EXPR's value is what the statement sees), or None where there is none."""
    def first(expr):
        return cst.BooleanOperation(hdr, cst.And(), expr.with_changes(
            lpar=expr.lpar or [cst.LeftParen()], rpar=expr.rpar or [cst.RightParen()]))

    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.decorators:
        decorators = list(stmt.decorators)
        decorators[0] = decorators[0].with_changes(decorator=first(decorators[0].decorator))
        return stmt.with_changes(decorators=decorators)
    if isinstance(stmt, cst.If):   # `True if test else False`: the test is evaluated for truth once
        test = cst.IfExp(test=parenthesize(stmt.test, CONDITION), body=cst.Name("True"), orelse=cst.Name("False"),
                         lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return stmt.with_changes(test=first(test), whitespace_before_test=spaced(stmt.whitespace_before_test))
    if isinstance(stmt, cst.While):   # the test runs again on every iteration: bind the hooks only once
        once = cst.parse_expression("'_tracec_m' in globals()")
        guard = cst.BooleanOperation(once, cst.Or(), hdr, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return stmt.with_changes(test=cst.BooleanOperation(guard, cst.And(), first(stmt.test).right),
                                 whitespace_after_while=spaced(stmt.whitespace_after_while))
    if isinstance(stmt, cst.For):
        return stmt.with_changes(iter=first(stmt.iter), whitespace_after_in=spaced(stmt.whitespace_after_in))
    if isinstance(stmt, cst.With):
        items = list(stmt.items)
        items[0] = items[0].with_changes(item=first(items[0].item))
        return stmt.with_changes(items=items, whitespace_after_with=spaced(stmt.whitespace_after_with))
    if isinstance(stmt, cst.Match):
        return stmt.with_changes(subject=first(stmt.subject), whitespace_after_match=spaced(stmt.whitespace_after_match))
    if isinstance(stmt, cst.ClassDef):
        if not stmt.bases and not stmt.keywords:
            if getattr(stmt, "type_parameters", None) is not None:
                return None   # `class A[T](object)` would list object before Generic: a different MRO
            return stmt.with_changes(bases=[cst.Arg(first(cst.Name("object")))],
                                     lpar=cst.LeftParen(), rpar=cst.RightParen())
        which = "bases" if stmt.bases else "keywords"   # bases are evaluated first
        args = list(getattr(stmt, which))
        args[0] = args[0].with_changes(value=first(args[0].value))
        return stmt.with_changes(**{which: args})
    if isinstance(stmt, cst.FunctionDef):
        return _in_first_default(stmt, first)
    return None


def _in_first_default(stmt: cst.FunctionDef, first):
    """Defaults are evaluated when the `def` runs (annotations may not be: PEP 649)."""
    params = stmt.params
    for field in ("posonly_params", "params", "kwonly_params"):
        group = list(getattr(params, field))
        for i, param in enumerate(group):
            if param.default is not None:
                group[i] = param.with_changes(default=first(param.default))
                return stmt.with_changes(params=params.with_changes(**{field: group}))
    return None


def _runs_nothing(stmt: cst.BaseStatement) -> bool:
    """A `def` whose execution only creates the function: no decorators, and nothing in its defaults
    or annotations that could call code of this module (no call, comprehension or lambda)."""
    if not isinstance(stmt, cst.FunctionDef) or stmt.decorators:
        return False
    expressions = [e for p in _params(stmt.params) for e in (p.default, p.annotation and p.annotation.annotation)
                   if e is not None]
    if stmt.returns is not None:
        expressions.append(stmt.returns.annotation)
    return not any(_may_call(e) for e in expressions)


def _params(params: cst.Parameters):
    yield from params.posonly_params
    yield from params.params
    yield from params.kwonly_params
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            yield star


def _may_call(expr: cst.CSTNode) -> bool:
    found = []

    class Calls(cst.CSTVisitor):
        def on_visit(self, node) -> bool:
            if isinstance(node, (cst.Call, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp,
                                 cst.GeneratorExp, cst.Await, cst.Yield, cst.NamedExpr)):
                found.append(node)
            return not found

    expr.visit(Calls())
    return bool(found)


def _spare_line(lines: list, protected: int) -> int | None:
    """Index of the last blank or comment line in `lines`; the first `protected` ones may not be taken
    if they are a shebang or an encoding declaration (those must stay the file's first lines)."""
    for at in range(len(lines) - 1, -1, -1):
        if at >= protected or not _special(lines[at]):
            return at
    return None


def _on_line(header_line: cst.SimpleStatementLine, spare: cst.EmptyLine, before: list) -> cst.SimpleStatementLine:
    """The header statement on the spare line's place, keeping its comment."""
    return header_line.with_changes(
        leading_lines=before,
        trailing_whitespace=cst.TrailingWhitespace(
            whitespace=cst.SimpleWhitespace("  " if spare.comment else ""), comment=spare.comment))


def _special(line: cst.EmptyLine) -> bool:
    # (`is not None` is what bool() tests: a Comment node is always true)
    return line.comment is not None and (line.comment.value.startswith("#!") or "coding" in line.comment.value)


def _is_docstring(small: cst.BaseSmallStatement) -> bool:
    return isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))


def _is_future_import(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, cst.ImportFrom) and s.module is not None and not s.relative
        and cst.helpers.get_full_name_for_node(s.module) == "__future__" for s in stmt.body)


# -- when place_header placed nothing ------------------------------------------------------------
# Then the module's first statement is compound and runs code (see the module docstring): nothing precedes
# it but blank and comment lines, which place_header already tried. The header goes in front of it.

def header_on_new_line(code: str, header: str) -> str:
    """`code` with `header` as a new line after its shebang and encoding lines (`tracec instrument`
    says so: every later line of the build copy moves down by one)."""
    lines = python_lines(code)
    keep = 0   # a shebang and an encoding line must stay first
    for index, line in enumerate(lines[:2]):
        if (index == 0 and line.startswith("#!")) or _CODING_COOKIE.match(line):
            keep = index + 1
    ending = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    lines.insert(keep, header + ending)
    return "".join(lines)


def header_in_tree(tree: ast.Module, header: str, filename: str) -> ast.Module:
    """`tree` with the header's statements spliced in front of its first (the import hook compiles the
    tree, so no line moves)."""
    tree.body[0:0] = ast.parse(header, filename).body
    return tree


__all__ = ["header_in_tree", "header_on_new_line", "place_header"]

"""How the pass embeds a user expression inside an expression it builds, without changing what it means.

Three rules, each the grammar's, applied wherever a hook wraps user code:
- an expression placed where the grammar needs a tighter-binding one gets parentheses, decided by the
  precedence table below (`if (m := f()):` -> the walrus inside `_c(...) if (m := f()) else _c(...)`);
- a wrapper that replaces a parenthesised expression takes over its parentheses, so `in(x)`, `not(x)` and
  `await(x)` stay valid when `x` becomes `_tracec_c(1, x)`;
- a keyword left without a space before its operand (`while(n):`, `if"x":`) gets one when the operand it
  was glued to is replaced.
"""

from __future__ import annotations

import libcst as cst

# Binding strength, loosest first (the order of the Python grammar's expression rules). A parenthesised
# expression is an atom. 0 is for forms that need parentheses in any expression position.
LOOSEST, LAMBDA, CONDITIONAL, OR, AND, NOT, COMPARISON = 0, 1, 2, 3, 4, 5, 6
BIT_OR, BIT_XOR, BIT_AND, SHIFT, SUM, TERM, UNARY, POWER, AWAIT, ATOM = 7, 8, 9, 10, 11, 12, 13, 14, 15, 16

_BINARY = {
    cst.BitOr: BIT_OR, cst.BitXor: BIT_XOR, cst.BitAnd: BIT_AND, cst.LeftShift: SHIFT, cst.RightShift: SHIFT,
    cst.Add: SUM, cst.Subtract: SUM, cst.Multiply: TERM, cst.MatrixMultiply: TERM, cst.Divide: TERM,
    cst.FloorDivide: TERM, cst.Modulo: TERM, cst.Power: POWER,
}

# What each place the pass builds accepts without parentheses
CALL_ARGUMENT = LAMBDA      # `_tracec_v(7, lambda: x)`; a walrus or bare generator needs its own parentheses
OR_OPERAND = AND            # `hook() and None or EXPR`
CONDITION = OR              # the test of `A if TEST else B`


def binding(expr: cst.BaseExpression) -> int:
    """How tightly `expr` binds as written, parentheses included."""
    if expr.lpar:
        return ATOM
    if isinstance(expr, (cst.NamedExpr, cst.Yield, cst.Tuple, cst.StarredElement)):
        return LOOSEST
    if isinstance(expr, cst.Lambda):
        return LAMBDA
    if isinstance(expr, cst.IfExp):
        return CONDITIONAL
    if isinstance(expr, cst.BooleanOperation):
        return OR if isinstance(expr.operator, cst.Or) else AND
    if isinstance(expr, cst.UnaryOperation):
        return NOT if isinstance(expr.operator, cst.Not) else UNARY
    if isinstance(expr, cst.Comparison):
        return COMPARISON
    if isinstance(expr, cst.BinaryOperation):
        return _BINARY[type(expr.operator)]
    if isinstance(expr, cst.Await):
        return AWAIT
    return ATOM


def parenthesize(expr: cst.BaseExpression, place: int) -> cst.BaseExpression:
    """`expr` with parentheses if it binds more loosely than `place` accepts. A bare generator
    expression counts as loose: it may stand without its own parentheses only as a sole argument."""
    loose = binding(expr) < place or isinstance(expr, cst.NamedExpr) or (
        isinstance(expr, cst.GeneratorExp) and not expr.lpar)
    if loose and not expr.lpar:
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


def without_parens(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.with_changes(lpar=[], rpar=[]) if expr.lpar else expr


def replacing(original: cst.BaseExpression, wrapper: cst.BaseExpression) -> cst.BaseExpression:
    """`wrapper` standing where `original` stood: it wears `original`'s outer parentheses (and their
    whitespace and comments), so a keyword written against them (`in(`, `not(`) still touches one."""
    if not original.lpar:
        return wrapper
    return wrapper.with_changes(lpar=original.lpar, rpar=original.rpar)


def spaced(whitespace: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    """A keyword's trailing whitespace, at least one space: `while(` -> `while (` once its operand is a
    hook call that no longer starts with the parenthesis the keyword was written against. Whitespace with
    a line break in it (inside parentheses) already separates the two."""
    if isinstance(whitespace, cst.SimpleWhitespace) and not whitespace.value:
        return cst.SimpleWhitespace(" ")
    return whitespace


__all__ = ["CALL_ARGUMENT", "CONDITION", "OR_OPERAND", "binding", "parenthesize", "replacing", "spaced",
           "without_parens"]

"""The instrumenting pass: rewrites traced functions so every statement reports to the runtime.

Every rewrite wraps an expression in place (`x = f(a)` -> `x = _tracec_v(7, f(a))`) or adds a small
statement after a `;`, so no line is added or removed and tracebacks keep pointing at the user's lines.
Hooks (module globals bound by the runtime header): _tracec_e enter, _tracec_v statement, _tracec_c
condition, _tracec_r return, _tracec_y yield, _tracec_h exception handler, _tracec_p param site."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import libcst as cst

if TYPE_CHECKING:   # mypy sees the source tree's top-level `runtime` (installed: tracec.runtime, see [tool.mypy])
    from runtime.tables import FunctionRow, StatementRow
else:
    from tracec.runtime.tables import FunctionRow, StatementRow

from .deep import python_lines
from .embedding import CALL_ARGUMENT, CONDITION, OR_OPERAND, parenthesize, spaced, without_parens
from .names import analyse, param_names, pattern_captures, target_names, target_reads

HOOK_PREFIX = "_tracec_"
CODE_CHARS = 300


def hook_call(hook: str, index: int, expr: cst.BaseExpression | None = None, with_value: bool = True):
    """`_tracec_<hook>(index, expr)`. A statement keyword written against expr (`while(x):`) needs a space
    once this call replaces it: the callers give it one (`spaced`)."""
    args = [cst.Arg(cst.Integer(str(index)))]
    if with_value:
        args.append(cst.Arg(parenthesize(expr if expr is not None else cst.Name("None"), CALL_ARGUMENT)))
    return cst.Call(cst.Name(f"{HOOK_PREFIX}{hook}"), args)


def _before(call: cst.Call, expr: cst.BaseExpression) -> cst.BaseExpression:
    """`(hook() and None or expr)`: runs the hook first and evaluates to expr whatever it returns."""
    return cst.BooleanOperation(cst.BooleanOperation(call, cst.And(), cst.Name("None")), cst.Or(),
                                parenthesize(expr, OR_OPERAND), lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _is_string_statement(small: cst.BaseSmallStatement) -> bool:
    return isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))


class Scope:
    """Where a statement sits: its traced function and its enclosing condition."""

    __slots__ = ("fid", "control", "qualname", "async_generator")

    def __init__(self, fid: int, control: int, qualname: str, async_generator: bool) -> None:
        self.fid, self.control, self.qualname, self.async_generator = fid, control, qualname, async_generator

    def under(self, control: int) -> "Scope":
        return Scope(self.fid, control, self.qualname, self.async_generator)


class FunctionRewriter:
    """Rewrites one traced function (and the functions nested in it) and fills the static tables."""

    def __init__(self, module: cst.Module, positions,
                 tables: tuple[list[FunctionRow | None], list[StatementRow | None]], param_rewriter, annotation,
                 class_params: set[str] | frozenset[str] = frozenset()) -> None:
        self.module = module
        self.lines = [line.rstrip("\r\n") for line in python_lines(module.code)]   # as positions count
        self.positions = positions
        self.functions, self.statements = tables
        self.param_rewriter = param_rewriter
        # `self.PROMPT` reads a class-level `PROMPT = tracec.param(...)`: such reads are kept as ".PROMPT"
        # (the set is filled by the module pass before any function is rewritten)
        self.class_params = class_params
        self.annotation = annotation   # FunctionDef -> (traced, trainable, doc) from its decorators

    # -- tables -----------------------------------------------------------------------------------
    def _code(self, node: cst.CSTNode) -> str:
        """The node's own source text (sliced by position: cheaper than generating code), on one line."""
        where = self.positions[node]
        first, last = where.start.line - 1, where.end.line - 1
        if first == last:
            text = self.lines[first][where.start.column:where.end.column].strip()
        else:
            parts = [self.lines[first][where.start.column:], *self.lines[first + 1:last],
                     self.lines[last][:where.end.column]]
            text = " ".join(part.strip() for part in parts if part.strip())
        return text if len(text) <= CODE_CHARS else text[: CODE_CHARS - 3] + "..."

    def _line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def _statement(self, scope: Scope, kind: str, name: str, code: str, first: cst.CSTNode,
                   last: cst.CSTNode | None, reads, writes) -> int:
        """Register a statement; its lines run from `first`'s start to `last`'s end (None: one line)."""
        sid = len(self.statements)
        line = self._line(first)
        end = self.positions[last].end.line if last is not None else line
        reads = [r for r in reads if r[0] != "." or r[1:] in self.class_params]
        self.statements.append(StatementRow(scope.fid, line, end, kind, name, code, tuple(dict.fromkeys(reads)),
                                            tuple(dict.fromkeys(writes)), scope.control))
        return sid

    # -- functions --------------------------------------------------------------------------------
    def function(self, node: cst.FunctionDef, qualname: str, outer: int, trainable: bool, doc) -> cst.FunctionDef:
        fid = len(self.functions)
        self.functions.append(None)
        declared = _declarations(node.body)
        asynchronous = node.asynchronous is not None
        scope = Scope(fid, -1, qualname, asynchronous and _contains_yield(node.body))
        header = ("async " if asynchronous else "") + f"def {node.name.value}(" + \
            (self._code(node.params) if _has_params(node.params) else "") + ")" + \
            (f" -> {self._code(node.returns.annotation)}" if node.returns else "") + ":"
        body = self.block(node.body, scope)
        # the arguments are handed over as a tuple: reading them through the frame's f_locals would
        # keep every local alive for as long as the call runs (a behaviour change weakrefs can see)
        arguments = cst.Tuple([cst.Element(cst.Name(name)) for name in param_names(node.params)])
        body = prologue(body, hook_call("e", fid, arguments), allow_loop=False)
        self.functions[fid] = FunctionRow(qualname, self._line(node.name), trainable, doc, param_names(node.params),
                                          tuple(declared[0]), tuple(declared[1]), outer, header,
                                          _can_fall_off(node.body))
        return node.with_changes(body=body)

    def nested_function(self, node: cst.FunctionDef, qualname: str, scope: Scope) -> cst.FunctionDef:
        _, trainable, doc = self.annotation(node)
        return self.function(node, qualname, scope.fid, trainable, doc)

    def nested_definitions(self, node: cst.ClassDef, scope: Scope) -> cst.ClassDef:
        """Methods of a class defined inside a traced function are traced too."""
        prefix = f"{scope.qualname}.<locals>.{node.name.value}"

        def visit(stmt):
            if isinstance(stmt, cst.FunctionDef):
                return self.nested_function(stmt, f"{prefix}.{stmt.name.value}", scope)
            return stmt

        if isinstance(node.body, cst.IndentedBlock):
            return node.with_changes(body=node.body.with_changes(body=[visit(s) for s in node.body.body]))
        return node

    # -- blocks and statements --------------------------------------------------------------------
    def block(self, block: cst.BaseSuite, scope: Scope) -> cst.BaseSuite:
        if isinstance(block, cst.SimpleStatementSuite):
            return block.with_changes(body=self.small_statements(block.body, scope))
        indented = cast(cst.IndentedBlock, block)   # the one other kind of suite
        return indented.with_changes(body=[self.statement(s, scope) for s in indented.body])

    def statement(self, stmt: cst.BaseStatement, scope: Scope) -> cst.BaseStatement:
        if isinstance(stmt, cst.SimpleStatementLine):
            return stmt.with_changes(body=self.small_statements(stmt.body, scope))
        if isinstance(stmt, (cst.If, cst.While)):
            return self._conditional(stmt, scope)
        if isinstance(stmt, cst.For):
            use = analyse(stmt.iter)
            sid = self._statement(scope, "control", "for", f"for {self._code(stmt.target)} in "
                                  f"{self._code(stmt.iter)}:", stmt, stmt.iter,
                                  use.reads + target_reads(stmt.target),
                                  use.writes + target_names(stmt.target))
            return stmt.with_changes(iter=hook_call("c", sid, self.expression(stmt.iter, scope)),
                                     whitespace_after_in=spaced(stmt.whitespace_after_in),
                                     body=self.block(stmt.body, scope.under(sid)),
                                     orelse=self._else(stmt.orelse, scope.under(sid)))
        if isinstance(stmt, cst.With):
            items = list(stmt.items)
            use = analyse(*[item.item for item in items])
            writes = [n for item in items if item.asname for n in target_names(item.asname.name)]
            sid = self._statement(scope, "control", "with", "with " + ", ".join(self._code(i.item) for i in items)
                                  + ":", stmt, items[-1], use.reads, use.writes + writes)
            items[-1] = items[-1].with_changes(item=hook_call("c", sid, self.expression(items[-1].item, scope)))
            return stmt.with_changes(items=items, body=self.block(stmt.body, scope.under(sid)),
                                     whitespace_after_with=spaced(stmt.whitespace_after_with))
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            return self._try(stmt, scope)
        if isinstance(stmt, cst.Match):
            use = analyse(stmt.subject)
            captures = [n for case in stmt.cases for n in pattern_captures(case.pattern)]
            sid = self._statement(scope, "control", "match", f"match {self._code(stmt.subject)}:", stmt,
                                  stmt.subject, use.reads, use.writes + captures)
            inner = scope.under(sid)
            cases = [case.with_changes(body=self.block(case.body, inner)) for case in stmt.cases]
            return stmt.with_changes(subject=hook_call("c", sid, self.expression(stmt.subject, scope)), cases=cases,
                                     whitespace_after_match=spaced(stmt.whitespace_after_match))
        if isinstance(stmt, cst.FunctionDef):
            return self.nested_function(stmt, f"{scope.qualname}.<locals>.{stmt.name.value}", scope)
        if isinstance(stmt, cst.ClassDef):
            return self.nested_definitions(stmt, scope)
        return stmt

    def _conditional(self, stmt, scope: Scope, keyword: str = ""):
        keyword = keyword or ("while" if isinstance(stmt, cst.While) else "if")
        use = analyse(stmt.test)
        sid = self._statement(scope, "control", keyword, f"{keyword} {self._code(stmt.test)}:", stmt, stmt.test,
                              use.reads, use.writes)
        inner = scope.under(sid)
        # `if t:` -> `if (_c(sid, True) if t else _c(sid, False)):` tests t exactly once, as plain Python
        # does; passing t's value through the hook would call `__bool__` again after `a and b`
        tested = self.expression(stmt.test, scope)
        test = cst.IfExp(test=parenthesize(without_parens(tested), CONDITION),
                         body=hook_call("c", sid, cst.Name("True")), orelse=hook_call("c", sid, cst.Name("False")),
                         lpar=tested.lpar or [cst.LeftParen()], rpar=tested.rpar or [cst.RightParen()])
        body = self.block(stmt.body, inner)
        orelse = stmt.orelse
        if isinstance(orelse, cst.If):
            orelse = self._conditional(orelse, inner, "elif")
        else:
            orelse = self._else(orelse, inner)
        # (LibCST's validation ignores an IfExp's own parentheses: `while(` needs its space back)
        if isinstance(stmt, cst.While):
            return stmt.with_changes(test=test, body=body, orelse=orelse,
                                     whitespace_after_while=spaced(stmt.whitespace_after_while))
        return stmt.with_changes(test=test, body=body, orelse=orelse,
                                 whitespace_before_test=spaced(stmt.whitespace_before_test))

    def _else(self, orelse, scope: Scope):
        if orelse is None:
            return None
        return orelse.with_changes(body=self.block(orelse.body, scope))

    def _try(self, stmt, scope: Scope):
        body = self.block(stmt.body, scope)
        handlers = []
        for handler in stmt.handlers:
            names = target_names(handler.name.name) if handler.name else []
            use = analyse(handler.type)
            code = "except" + (f" {self._code(handler.type)}" if handler.type else "") + \
                (f" as {names[0]}" if names else "") + ":"
            sid = self._statement(scope, "control", "except", code, handler, handler.type, use.reads, names)
            handler_body = self.block(handler.body, scope.under(sid))
            handlers.append(handler.with_changes(body=prologue(handler_body, hook_call("h", sid, with_value=False),
                                                               allow_loop=True)))
        return stmt.with_changes(body=body, handlers=handlers,
                                 orelse=self._else(stmt.orelse, scope),
                                 finalbody=self._else(stmt.finalbody, scope))

    def small_statements(self, items, scope: Scope) -> list:
        out = []
        for small in items:
            out.extend(self._small(small, scope))
        return out

    def _small(self, small: cst.BaseSmallStatement, scope: Scope) -> list:
        if isinstance(small, cst.Assign):
            targets = [t.target for t in small.targets]
            use = analyse(small.value)
            name = " = ".join(self._code(t) for t in targets)
            sid = self._statement(scope, "op", name, self._code(small), small, small,
                                  use.reads + [n for t in targets for n in target_reads(t)],
                                  [n for t in targets for n in target_names(t)] + use.writes + use.mutated)
            value = self.expression(small.value, scope)
            return [small.with_changes(value=hook_call("v", sid, value))]
        if isinstance(small, cst.AnnAssign):
            if small.value is None:
                return [small]
            use = analyse(small.value)
            name = self._code(small.target)
            sid = self._statement(scope, "op", name, self._code(small), small, small,
                                  use.reads + target_reads(small.target),
                                  target_names(small.target) + use.writes + use.mutated)
            value = self.expression(small.value, scope)
            return [small.with_changes(value=hook_call("v", sid, value))]
        if isinstance(small, cst.AugAssign):
            use = analyse(small.value)
            target = small.target
            sid = self._statement(scope, "op", self._code(target), self._code(small), small, small,
                                  target_names(target) + target_reads(target) + use.reads,
                                  target_names(target) + use.writes + use.mutated)
            value = self.expression(small.value, scope)
            if isinstance(target, cst.Name):   # record the updated value, read back without side effects
                return [small.with_changes(value=value), cst.Expr(hook_call("v", sid, cst.Name(target.value)))]
            return [small.with_changes(value=hook_call("v", sid, value))]
        if isinstance(small, cst.Expr):
            if _is_string_statement(small) or isinstance(small.value, (cst.Ellipsis, cst.Integer)):
                return [small]
            value = small.value
            use = analyse(value)
            name = self._code(value.func) if isinstance(value, cst.Call) else (
                "yield" if isinstance(value, cst.Yield) else "expr")
            mutated = use.mutated
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
                root = target_names(value.func.value)
                mutated = mutated + root
            if isinstance(value, cst.Yield):   # a bare `yield x`: the yield hook is the statement's node
                return [small.with_changes(value=self.expression(value, scope))]
            sid = self._statement(scope, "op", name, self._code(small), small, small, use.reads,
                                  use.writes + mutated)
            return [small.with_changes(value=hook_call("v", sid, self.expression(value, scope)))]
        if isinstance(small, cst.Return):
            use = analyse(small.value)
            sid = self._statement(scope, "return", "return", self._code(small), small, small, use.reads,
                                  use.writes)
            if small.value is None and scope.async_generator:   # `return <value>` is illegal there
                return [cst.Expr(hook_call("r", sid)), small]
            value = self.expression(small.value, scope) if small.value is not None else None
            return [small.with_changes(value=hook_call("r", sid, value),
                                       whitespace_after_return=cst.SimpleWhitespace(" "))]
        if isinstance(small, (cst.Raise, cst.Assert, cst.Del)):
            # no hook: an error here is located from the traceback; the table entry gives it reads and code
            use = analyse(*[getattr(small, f, None) for f in ("exc", "cause", "test", "msg", "target")])
            self._statement(scope, "op", type(small).__name__.lower(), self._code(small), small, small,
                            use.reads, use.writes)
        return [small]

    def expression(self, expr, scope: Scope):
        """Rewrite what lives inside an expression: yields get their own nodes, param sites report."""
        if expr is None:
            return None
        rewriter = _ExpressionRewriter(self, scope)
        return expr.visit(rewriter)


class _ExpressionRewriter(cst.CSTTransformer):
    def __init__(self, owner: FunctionRewriter, scope: Scope) -> None:
        super().__init__()
        self.owner, self.scope = owner, scope

    def visit_Lambda(self, node) -> bool:
        return False

    def leave_Yield(self, original: cst.Yield, updated: cst.Yield):
        owner = self.owner
        value = original.value
        if isinstance(value, cst.From):
            use = analyse(value.item)
            sid = owner._statement(self.scope, "op", "yield from", owner._code(original), original, original,
                                   use.reads, use.writes)
            new_from = cast(cst.From, updated.value)   # still a From: this transformer replaces no From node
            return updated.with_changes(value=new_from.with_changes(
                item=hook_call("y", sid, new_from.item),
                whitespace_after_from=spaced(new_from.whitespace_after_from)))
        use = analyse(value)
        sid = owner._statement(self.scope, "op", "yield", owner._code(original), original, original,
                               use.reads, use.writes)
        yielded = cast("cst.BaseExpression | None", updated.value)   # not a From: original's is not one
        return updated.with_changes(value=hook_call("y", sid, yielded),
                                    whitespace_after_yield=cst.SimpleWhitespace(" "))

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        return self.owner.param_rewriter(original, updated, self.scope.qualname)


def prologue(block: cst.BaseSuite, call: cst.Call, allow_loop: bool) -> cst.BaseSuite:
    """Run `call` before anything else in the block, on the block's first line(s).

    A simple first statement gets `call; ` in front (after a docstring); a compound one gets its header
    expression rewritten to `(call or expr)`. A `while` header runs repeatedly, so it is used only for
    idempotent hooks (allow_loop); otherwise the runtime enters the frame lazily at its first hook."""
    if isinstance(block, cst.SimpleStatementSuite):
        return block.with_changes(body=_insert_small(list(block.body), call))
    if not block.body:
        return block
    first = block.body[0]
    new = _prologue_statement(first, call, allow_loop)
    if new is None:
        return block
    return block.with_changes(body=[new, *block.body[1:]])


def _prologue_statement(first, call, allow_loop):
    if isinstance(first, cst.SimpleStatementLine):
        return first.with_changes(body=_insert_small(list(first.body), call))
    if isinstance(first, cst.If) or (allow_loop and isinstance(first, cst.While)):
        return first.with_changes(test=_before(call, first.test))
    if isinstance(first, cst.For):
        return first.with_changes(iter=_before(call, first.iter))
    if isinstance(first, cst.With):
        items = list(first.items)
        items[0] = items[0].with_changes(item=_before(call, items[0].item))
        return first.with_changes(items=items)
    if isinstance(first, cst.Match):
        return first.with_changes(subject=_before(call, first.subject))
    if isinstance(first, (cst.Try, cst.TryStar)):
        body = prologue(first.body, call, allow_loop)
        return None if body is first.body else first.with_changes(body=body)
    return None


def _insert_small(body: list, call: cst.Call) -> list:
    index = 1 if body and _is_string_statement(body[0]) else 0
    body.insert(index, cst.Expr(call))
    return body


def _declarations(body: cst.BaseSuite) -> tuple[list[str], list[str]]:
    """`global` and `nonlocal` names of a function body (not of functions nested in it)."""
    found: tuple[list[str], list[str]] = ([], [])

    class Declarations(cst.CSTVisitor):
        def visit_FunctionDef(self, node) -> bool:
            return False

        def visit_ClassDef(self, node) -> bool:
            return False

        def visit_Global(self, node: cst.Global) -> None:
            found[0].extend(n.name.value for n in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            found[1].extend(n.name.value for n in node.names)

    body.visit(Declarations())
    return found


def _has_params(params: cst.Parameters) -> bool:
    return bool(params.params or params.posonly_params or params.kwonly_params or
                isinstance(params.star_arg, cst.Param) or params.star_kwarg)


def _can_fall_off(block: cst.BaseSuite) -> bool:
    """Conservatively: may the block finish without `return` or `raise`? A call of a function that
    cannot, which ends without its return hook, must have ended by an exception."""
    if isinstance(block, cst.SimpleStatementSuite):
        return not isinstance(block.body[-1], (cst.Return, cst.Raise))
    if not block.body:
        return True
    last = block.body[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return not isinstance(last.body[-1], (cst.Return, cst.Raise))
    if isinstance(last, cst.If):
        if last.orelse is None or _can_fall_off(last.body):
            return True
        return _can_fall_off(last.orelse.body if isinstance(last.orelse, cst.Else) else
                             cst.IndentedBlock(body=[last.orelse]))
    if isinstance(last, cst.With):
        return _can_fall_off(last.body)
    if isinstance(last, (cst.Try, cst.TryStar)):
        if last.finalbody is not None and not _can_fall_off(last.finalbody.body):
            return False
        main = last.orelse.body if last.orelse is not None else last.body
        return _can_fall_off(main) or any(_can_fall_off(h.body) for h in last.handlers)
    return True


def _contains_yield(body: cst.BaseSuite) -> bool:
    found = []

    class Yields(cst.CSTVisitor):
        def visit_FunctionDef(self, node) -> bool:
            return False

        def visit_Lambda(self, node) -> bool:
            return False

        def visit_Yield(self, node) -> None:
            found.append(node)

    body.visit(Yields())
    return bool(found)


__all__ = ["FunctionRewriter", "hook_call", "prologue"]

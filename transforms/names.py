"""Which names a statement reads and writes, computed from its syntax alone.

Reads are names in load position (not keyword-argument names, not names bound by a lambda or comprehension
inside the statement); an attribute `x.NAME` reads ".NAME". Writes are assignment targets, walrus targets, the root
name of an attribute/subscript store, and the object of a mutating method call (`msgs.append(x)`)."""

from __future__ import annotations

import libcst as cst

CONSTANTS = frozenset({"True", "False", "None", "__debug__"})
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault",
    "sort", "reverse", "popitem", "appendleft", "extendleft", "popleft", "write", "writelines",
    "__setitem__", "__delitem__", "send",
})


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}
        self.mutated: dict[str, None] = {}

    def visit_Name(self, node: cst.Name) -> bool:
        if node.value not in CONSTANTS:
            self.reads[node.value] = None
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        # ".attr": kept by the rewriter only when a class-level tracec.param has that name
        self.reads["." + node.attr.value] = None
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in MUTATING_METHODS:
            root = root_name(func.value)
            if root:
                self.mutated[root] = None
        return True

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        for name in target_names(node.target):
            self.writes[name] = None
        node.value.visit(self)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        bound = set()
        for param in _all_params(node.params):
            bound.add(param.name.value)
            if param.default is not None:
                param.default.visit(self)
        inner = _Names()
        node.body.visit(inner)
        self._merge(inner, bound)
        return False

    def _comprehension(self, node, parts) -> bool:
        inner = _Names()
        bound: set[str] = set()
        comp = node.for_in
        first = True
        while comp is not None:
            bound.update(target_names(comp.target))
            comp.iter.visit(self if first else inner)   # the first iterable runs in the enclosing scope
            for cond in comp.ifs:
                cond.test.visit(inner)
            first = False
            comp = comp.inner_for_in
        for part in parts:
            part.visit(inner)
        self._merge(inner, bound)
        self.writes.update(inner.writes)   # walrus in a comprehension binds in the enclosing scope
        return False

    def visit_ListComp(self, node) -> bool:
        return self._comprehension(node, [node.elt])

    def visit_SetComp(self, node) -> bool:
        return self._comprehension(node, [node.elt])

    def visit_GeneratorExp(self, node) -> bool:
        return self._comprehension(node, [node.elt])

    def visit_DictComp(self, node) -> bool:
        return self._comprehension(node, [node.key, node.value])

    def visit_FunctionDef(self, node) -> bool:
        return False

    def visit_ClassDef(self, node) -> bool:
        return False

    def _merge(self, inner: "_Names", bound: set[str]) -> None:
        for name in inner.reads:
            if name not in bound:
                self.reads[name] = None
        for name in inner.mutated:
            if name not in bound:
                self.mutated[name] = None


def _all_params(params: cst.Parameters):
    yield from params.posonly_params
    yield from params.params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    yield from params.kwonly_params
    if params.star_kwarg is not None:
        yield params.star_kwarg


def param_names(params: cst.Parameters) -> tuple[str, ...]:
    return tuple(p.name.value for p in _all_params(params))


def root_name(expr: cst.BaseExpression) -> str | None:
    while isinstance(expr, (cst.Attribute, cst.Subscript, cst.Call)):
        expr = expr.value if not isinstance(expr, cst.Call) else expr.func
    return expr.value if isinstance(expr, cst.Name) else None


def target_names(target: cst.BaseExpression) -> list[str]:
    """Names a target binds or mutates: `a, (b, *c)` -> a, b, c; `x.y[i]` -> x."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in target_names(el.value)]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    root = root_name(target)
    return [root] if root else []


def target_reads(target: cst.BaseExpression) -> list[str]:
    """Names a store reads: the object and index of `x.y[i] = ...`, nothing for a plain name."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in target_reads(el.value)]
    if isinstance(target, cst.StarredElement):
        return target_reads(target.value)
    if isinstance(target, (cst.Attribute, cst.Subscript)):
        return analyse(target).reads
    return []


class Usage:
    __slots__ = ("reads", "writes", "mutated")

    def __init__(self, reads, writes, mutated) -> None:
        self.reads, self.writes, self.mutated = reads, writes, mutated


def analyse(*nodes: cst.CSTNode | None) -> Usage:
    names = _Names()
    for node in nodes:
        if node is not None:
            if isinstance(node, (cst.Attribute, cst.Subscript)):
                node.value.visit(names)
                if isinstance(node, cst.Subscript):
                    for element in node.slice:
                        element.visit(names)
            else:
                node.visit(names)
    return Usage(list(names.reads), list(names.writes), list(names.mutated))


def pattern_captures(pattern: cst.MatchPattern) -> list[str]:
    """Names a match-case pattern binds."""
    found: list[str] = []

    class Captures(cst.CSTVisitor):
        def visit_MatchAs(self, node: cst.MatchAs) -> None:
            if node.name is not None:
                found.append(node.name.value)

        def visit_MatchStar(self, node: cst.MatchStar) -> None:
            if node.name is not None:
                found.append(node.name.value)

        def visit_MatchMapping(self, node: cst.MatchMapping) -> None:
            if node.rest is not None:
                found.append(node.rest.value)

    pattern.visit(Captures())
    return found

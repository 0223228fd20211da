"""Module level of the pass: finds traced functions and param sites (transforms/header.py then places the
runtime header)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

if TYPE_CHECKING:   # mypy sees the source tree's top-level `runtime` (installed: tracec.runtime, see [tool.mypy])
    from runtime.tables import FunctionRow, ParamRow, StatementRow
else:
    from tracec.runtime.tables import FunctionRow, ParamRow, StatementRow

from .annotations import api_name, function_annotation, keyword_value, literal_value, tracec_names
from .embedding import replacing, without_parens
from .instrument import FunctionRewriter, hook_call

PRAGMA = re.compile(r"#\s*tracec:\s*trace-module\b")
class ModuleInstrumenter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, module_name: str, all_functions: bool, aliases) -> None:
        super().__init__()
        self.module_name = module_name
        self.all_functions = all_functions
        self.modules, self.direct = aliases
        # table rows, ids are positions (None: a placeholder for a row of the live table, or a function's
        # row until its body is rewritten)
        self.functions: list[FunctionRow | None] = []
        self.statements: list[StatementRow | None] = []
        self.params: list[ParamRow | None] = []
        self.scopes: list[tuple[str, str]] = []   # (kind, name) of enclosing classes/functions
        self.traced_depth = 0
        self.class_params: set[str] = set()   # names bound by `NAME = tracec.param(...)` in a class body
        self.rewriter: FunctionRewriter | None = None

    # -- annotations ------------------------------------------------------------------------------
    def api_name(self, expr: cst.BaseExpression) -> str | None:
        return api_name(expr, (self.modules, self.direct))

    def annotation(self, node: cst.FunctionDef) -> tuple[bool, bool, str | None]:
        return function_annotation(node, (self.modules, self.direct), self.all_functions)

    def qualname(self, name: str) -> str:
        parts = []
        for kind, scope_name in self.scopes:
            parts.append(scope_name)
            if kind == "function":
                parts.append("<locals>")
        return ".".join([*parts, name])

    # -- traversal --------------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.scopes.append(("class", node.name.value))
        return True

    def leave_ClassDef(self, original, updated):
        self.scopes.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        traced, _, _ = self.annotation(node)
        if traced:   # the function rewriter handles everything inside, nested functions included
            return False
        self.scopes.append(("function", node.name.value))
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef):
        traced, trainable, doc = self.annotation(original)
        if not traced:
            self.scopes.pop()
            return updated
        rewriter = cast(FunctionRewriter, self.rewriter)   # set (by _instrument) before the module is visited
        return rewriter.function(original, self.qualname(original.name.value), -1, trainable, doc)

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        return self.param_site(original, updated, ".".join(n for _, n in self.scopes))

    def param_site(self, original: cst.Call, updated: cst.Call, scope_name: str):
        """`tracec.param(...)` -> `_tracec_p(site, tracec.param(...))`, keyed by the name it is bound to."""
        if self.api_name(original.func) != "param":
            return updated
        explicit = literal_value(keyword_value(original, "name"))
        target = self.assignments.get(id(original))
        key = explicit if isinstance(explicit, str) else (target or f"line{self.positions(original)}")
        if scope_name and not isinstance(explicit, str):
            key = f"{scope_name}.{key}"
        doc = literal_value(keyword_value(original, "doc"))
        # a module global is read by name; a class attribute by `obj.NAME`, which reads ".NAME"
        # (called from leave_Call with the class's own scope name; a traced function passes its qualname)
        class_level = (bool(self.scopes) and self.scopes[-1][0] == "class" and target in self.class_params
                       and scope_name == ".".join(n for _, n in self.scopes))
        # (class_level: target is in class_params, so a str)
        global_name = target if not scope_name else ("." + cast(str, target) if class_level else None)
        site = len(self.params)
        self.params.append(ParamRow(key, self.positions(original), doc if isinstance(doc, str) else None, global_name))
        # the hook call wears the site's own parentheses: `not(tracec.param(...))` stays `not(...)`
        return replacing(updated, hook_call("p", site, without_parens(updated)))

    def positions(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def visit_Module(self, node: cst.Module) -> bool:
        # map each `NAME = <call>` to NAME so a param site knows the name it is bound to
        self.assignments: dict[int, str] = {}

        scopes: list[str] = []

        class Assignments(cst.CSTVisitor):
            def bind(inner, value: cst.BaseExpression, name: str) -> None:
                self.assignments[id(value)] = name
                if scopes and scopes[-1] == "class" and self.api_name(value) == "param":
                    self.class_params.add(name)

            def visit_ClassDef(inner, node) -> None:
                scopes.append("class")

            def leave_ClassDef(inner, node) -> None:
                scopes.pop()

            def visit_FunctionDef(inner, node) -> None:
                scopes.append("function")

            def leave_FunctionDef(inner, node) -> None:
                scopes.pop()

            def visit_Assign(inner, assign: cst.Assign) -> None:
                if len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name):
                    inner.bind(assign.value, assign.targets[0].target.value)

            def visit_AnnAssign(inner, assign: cst.AnnAssign) -> None:
                if assign.value is not None and isinstance(assign.target, cst.Name):
                    inner.bind(assign.value, assign.target.value)

        node.visit(Assignments())
        return True


def wrap(module: cst.Module):
    return MetadataWrapper(module, unsafe_skip_copy=True)


__all__ = ["ModuleInstrumenter", "PRAGMA", "api_name", "tracec_names", "wrap"]

"""What tracec's annotations are, decided in one place for the instrumenting pass, the patch splice and
`tracec check`: the names under which a module sees tracec's API, which API a name or call is, and whether
a def is traced or trainable (and its doc)."""

from __future__ import annotations

import ast
from typing import cast

import libcst as cst

API_NAMES = ("trace", "trainable", "param")


def tracec_names(module: cst.Module) -> tuple[set[str], dict[str, str]]:
    """Names under which this module sees tracec: module aliases, and directly imported API names."""
    modules: set[str] = set()
    direct: dict[str, str] = {}

    class Imports(cst.CSTVisitor):
        def visit_FunctionDef(self, node) -> bool:
            return False

        def visit_Import(self, node: cst.Import) -> None:
            for alias in node.names:
                if cst.helpers.get_full_name_for_node(alias.name) == "tracec":
                    # (an import's `as` target is a Name: LibCST's ImportAlias validates it)
                    modules.add(cast(cst.Name, alias.asname.name).value if alias.asname else "tracec")

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if node.module is None or node.relative or isinstance(node.names, cst.ImportStar):
                return
            if cst.helpers.get_full_name_for_node(node.module) != "tracec":
                return
            for alias in node.names:
                name = cast(cst.Name, alias.name).value   # `from m import NAME`: the grammar has no dots here
                if name in API_NAMES:
                    direct[cast(cst.Name, alias.asname.name).value if alias.asname else name] = name

    module.visit(Imports())
    return modules, direct


def api_name(expr: cst.BaseExpression, aliases: tuple[set[str], dict[str, str]]) -> str | None:
    """"trace" / "trainable" / "param" when `expr` (or the function a call calls) names that tracec API
    under the module's aliases (from `tracec_names`), else None."""
    modules, direct = aliases
    if isinstance(expr, cst.Call):
        expr = expr.func
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        if expr.value.value in modules and expr.attr.value in API_NAMES:
            return expr.attr.value
    if isinstance(expr, cst.Name):
        return direct.get(expr.value)
    return None


def literal_value(expr: cst.BaseExpression | None):
    """The value of a literal argument (`doc="..."`), else None."""
    if expr is None:
        return None
    try:
        # parenthesised: implicitly joined strings split over lines (`"a, "\n "b"`) are one expression
        return ast.literal_eval(f"({cst.Module([]).code_for_node(expr)}\n)")
    except (ValueError, SyntaxError):
        return None


def keyword_value(call: cst.Call, name: str):
    """The expression passed as keyword `name`, or None."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def function_annotation(node: cst.FunctionDef, aliases: tuple[set[str], dict[str, str]],
                        all_functions: bool = False) -> tuple[bool, bool, str | None]:
    """(traced, trainable, doc) from the def's decorators; a def without one is traced only with --all."""
    for dec in node.decorators:
        kind = api_name(dec.decorator, aliases)
        if kind in ("trace", "trainable"):
            doc = literal_value(keyword_value(dec.decorator, "doc")) if isinstance(dec.decorator, cst.Call) else None
            return True, kind == "trainable", doc if isinstance(doc, str) else None
    return all_functions, False, None

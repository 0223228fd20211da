"""The annotation rules of `tracec check`: a read-only LibCST pass over one module's source (check.py
imports this module only when a file mentions tracec, so checking other files loads no LibCST).

Each rule names something the transform or the patch writer would silently skip or refuse, so it is
reported before `tracec optimize` runs. The decisions are the ones those modules make: tracec names are
resolved with `transforms.annotations` (`tracec_names`, `api_name`), a param value must be what
`tracec.patches.splice` can splice (its `first_argument`, then the one rule of `tracec.literals`). Rule
codes are stable (RULES below); TC203 (a nested trainable def) and TC205 (a trainable behind @property)
are retired: candidates are tried as patched files, which reach both.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from tracec.literals import require_writable, spelled_repr
from tracec.patches.splice import first_argument
from tracec.transforms import syntax_error
from tracec.transforms.annotations import api_name, tracec_names
from tracec.transforms.libcst_limits import parse as parse_with_workarounds

RULES = {
    "TC001": "the file does not parse, so tracec cannot instrument it",
    "TC101": "a tracec.param value tracec cannot write back (not a literal, or a set/bytes/complex literal)",
    "TC102": "two tracec.param calls on one line: the patch writer cannot tell them apart",
    "TC201": "tracec.trace/trainable called as a function (e.g. on a lambda) instead of decorating a def",
    "TC202": "a tracec annotation reached through a name tracec cannot see (alias, container, star import)",
    "TC204": "tracec.trace/trainable on a class: only functions are instrumented",
}



@dataclass(frozen=True)
class Problem:
    line: int
    col: int          # 1-based, in characters (like ruff)
    code: str
    message: str


def annotation_problems(source: str, path: str) -> list[Problem]:
    """Every rule's problems in one module's source, in source order. Never runs or imports the code."""
    try:
        module, _ = parse_with_workarounds(source)   # a masked statement goes unchecked
    except cst.ParserSyntaxError as exc:
        error = syntax_error(path, source, exc)
        return [Problem(error.line, max(error.col, 1), "TC001", error.message + "; fix it so tracec can "
                        "instrument the file")]
    return _Rules.run(module)


class _Rules(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, aliases) -> None:
        super().__init__()
        self.aliases = aliases
        self.parents: list[cst.CSTNode] = []
        self.locals: list[set[str]] = []   # parameter names of the enclosing defs and lambdas
        self.param_lines: set[int] = set()
        self.problems: list[Problem] = []

    @classmethod
    def run(cls, module: cst.Module) -> list[Problem]:
        rules = cls(tracec_names(module))
        MetadataWrapper(module, unsafe_skip_copy=True).visit(rules)
        return sorted(rules.problems, key=lambda p: (p.line, p.col, p.code))

    def report(self, node: cst.CSTNode, code: str, message: str) -> None:
        start = self.get_metadata(PositionProvider, node).start
        self.problems.append(Problem(start.line, start.column + 1, code, message))

    # -- traversal with a parent stack ---------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.ImportFrom):
            self.import_from(node)
            return False     # imported names are not uses
        if isinstance(node, cst.Import):
            return False
        if isinstance(node, (cst.Name, cst.Attribute)):
            self.reference(node)
        elif isinstance(node, cst.Call):
            self.call(node)
        self.parents.append(node)
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            self.locals.append(_parameter_names(node.params))
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.Import, cst.ImportFrom)):
            return super().on_leave(original_node)
        self.parents.pop()
        if isinstance(original_node, (cst.FunctionDef, cst.Lambda)):
            self.locals.pop()
        return super().on_leave(original_node)

    # -- imports -------------------------------------------------------------------------------
    def import_from(self, node: cst.ImportFrom) -> None:
        if node.module is None or node.relative:
            return
        name = cst.helpers.get_full_name_for_node(node.module)
        if name == "tracec" and isinstance(node.names, cst.ImportStar):
            self.report(node, "TC202", "tracec does not see annotations imported with `from tracec import *`; "
                        "use `import tracec` or `from tracec import param, trainable`")
        elif name == "tracec.api" and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                if alias.name.value in ("param", "trace", "trainable"):
                    self.report(alias, "TC202", f"tracec does not see `{alias.name.value}` imported from "
                                "tracec.api; import it from tracec")

    # -- references to the API -----------------------------------------------------------------
    def reference(self, node) -> None:
        kind = api_name(node, self.aliases)
        if kind is None:
            return
        if _not_read(node, self.parents) or (
                isinstance(node, cst.Name) and any(node.value in names for names in self.locals)):
            return    # not a read, or a read of a parameter that shadows the imported name
        parent = self.parents[-1] if self.parents else None
        spelled = cst.Module([]).code_for_node(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            if kind == "param":
                return
            holder = self.parents[-2] if len(self.parents) > 1 else None
            if isinstance(holder, cst.Decorator):
                self.decorated(self.parents[-3], spelled, holder)
                return
            first = next((arg.value for arg in parent.args if arg.keyword is None), None)
            if isinstance(first, cst.Lambda):
                self.report(parent, "TC201", f"{spelled}() cannot instrument a lambda; write it as a def "
                            f"decorated with @{spelled}")
            else:
                self.report(parent, "TC201", f"{spelled}(...) called as a function is invisible to tracec; "
                            f"decorate the def with @{spelled} instead")
            return
        if isinstance(parent, cst.Decorator) and kind != "param":
            self.decorated(self.parents[-2], spelled, parent)
            return
        if kind == "param":
            self.report(node, "TC202", f"{spelled} used without calling it is invisible to tracec; write "
                        f"{spelled}(<literal>) where the value is defined")
        else:
            self.report(node, "TC202", f"{spelled} used as a value (aliased, stored or passed) is invisible "
                        f"to tracec; write @{spelled} directly on the def")

    def decorated(self, owner, spelled: str, decorator) -> None:
        if isinstance(owner, cst.ClassDef):
            self.report(decorator, "TC204", f"@{spelled} on a class does nothing; put it on the methods "
                        "to trace or train")

    # -- param sites ---------------------------------------------------------------------------
    def call(self, node: cst.Call) -> None:
        if api_name(node.func, self.aliases) != "param":
            return
        line = self.get_metadata(PositionProvider, node).start.line
        if line in self.param_lines:
            self.report(node, "TC102", "more than one tracec.param on this line; put each on its own "
                        "line so tracec can patch it")
        self.param_lines.add(line)
        value = first_argument(node)
        if value is None:
            self.report(node, "TC101", "tracec.param has no value tracec can write back; pass the value "
                        "itself as its first argument (no *args/**kwargs)")
            return
        text = cst.Module([]).code_for_node(value)
        if spelled_repr(text) is None:
            self.report(value, "TC101", f"tracec.param value `{_short(text)}` is not a literal, so tracec "
                        "cannot write a new value back; write the value itself (str, number, bool, None, "
                        "or a list/tuple/dict of them)")
            return
        try:
            require_writable(ast.literal_eval(text), "its value")
        except TypeError as exc:
            self.report(value, "TC101", str(exc).replace("tracec.param: its value must",
                                                         "tracec.param value must"))

def _not_read(node: cst.CSTNode, parents: list[cst.CSTNode]) -> bool:
    """True when `node` is not a read of a value: a binding target (also inside a target tuple), or the
    name slot of a def, class, parameter, `as`, keyword argument or attribute. (Cheaper than LibCST's
    ExpressionContextProvider, which would also call a keyword argument's name a load.)"""
    child = node
    for parent in reversed(parents):
        if isinstance(parent, (cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
            child = parent
            continue
        return any(getattr(parent, slot, None) is child for slot in ("target", "name", "keyword", "attr"))
    return False


def _parameter_names(params: cst.Parameters) -> set[str]:
    names = {param.name.value for param in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            names.add(star.name.value)
    return names


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Which names a module uses for Trace (`opto.trace`), and its import statements once `tracec migrate` has
rewritten the uses: Trace imports nothing reads any more are dropped and `import tracec` is added."""

from __future__ import annotations

import libcst as cst

TRACE_MODULES = ("opto.trace", "opto.trace.nodes", "opto.trace.bundle", "opto.trace.modules")


class TraceImports:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}     # local name -> Trace API name ("node", "bundle", "model", ...)
        self.modules: set[str] = set()      # local dotted names bound to opto.trace ("trace", "opto.trace")

    def api(self, expr: cst.BaseExpression) -> str | None:
        """The Trace API name `expr` refers to (`node`, `trace.bundle`, `opto.trace.model`), else None."""
        full = cst.helpers.get_full_name_for_node(expr)
        if full is None:
            return None
        if full in self.names:
            return self.names[full]
        for prefix in self.modules:
            if full.startswith(prefix + "."):
                rest = full[len(prefix) + 1:]
                for sub in ("nodes.", "bundle.", "modules."):
                    rest = rest[len(sub):] if rest.startswith(sub) else rest
                return rest if "." not in rest else None
        return None


def dotted(node: cst.BaseExpression) -> str:
    return cst.helpers.get_full_name_for_node(node) or ""


class ImportFixer(cst.CSTTransformer):
    """Drops Trace imports nothing uses any more and adds `import tracec` where the first one was."""

    def __init__(self, imports: TraceImports, loaded: set[str]) -> None:
        super().__init__()
        self.imports = imports
        self.loaded = loaded
        self.needs_tracec = "tracec" in loaded

    def leave_ImportFrom(self, original, updated):
        module = dotted(updated.module) if updated.module is not None and not updated.relative else ""
        if module not in TRACE_MODULES + ("opto",) or isinstance(updated.names, cst.ImportStar):
            return updated
        keep = [a for a in updated.names if (a.asname.name.value if a.asname else a.name.value) in self.loaded
                or (module == "opto" and a.name.value != "trace")]
        if not keep:
            return cst.RemoveFromParent()
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=keep)

    def leave_Import(self, original, updated):
        keep = []
        for alias in updated.names:
            full = dotted(alias.name)
            bound = alias.asname.name.value if alias.asname else full.split(".")[0]
            if full in TRACE_MODULES + ("opto",) and bound not in self.loaded:
                continue
            keep.append(alias)
        if not keep:
            return cst.RemoveFromParent()
        keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=keep)

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        if not self.needs_tracec or _imports_tracec(original):
            return updated
        body = list(updated.body)
        at = 0
        for index, statement in enumerate(original.body):
            if _mentions_opto(statement):
                at = index
                break
        else:
            while at < len(body) and _is_preamble(body[at]):
                at += 1
        # `at` counts original statements; removed imports before it shift the position in the new body
        at = min(at, len(body))
        body.insert(at, cst.parse_statement("import tracec\n"))
        return updated.with_changes(body=body)


def loaded_names(module: cst.Module) -> set[str]:
    """Names read anywhere outside import statements (the import statements' own names do not count)."""
    names: set[str] = set()

    class Reads(cst.CSTVisitor):
        def visit_Import(self, node) -> bool:
            return False

        def visit_ImportFrom(self, node) -> bool:
            return False

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)   # `x.trace` reads x, not a name `trace`
            return False

        def visit_Name(self, node: cst.Name) -> None:
            names.add(node.value)

    module.visit(Reads())
    return names


def _imports_tracec(module: cst.Module) -> bool:
    return any(isinstance(s, cst.SimpleStatementLine) and any(
        isinstance(i, cst.Import) and any(dotted(a.name) == "tracec" and a.asname is None for a in i.names)
        for i in s.body) for s in module.body)


def _mentions_opto(statement: cst.CSTNode) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if isinstance(small, cst.ImportFrom) and small.module is not None and \
                dotted(small.module).split(".")[0] == "opto":
            return True
        if isinstance(small, cst.Import) and any(dotted(a.name).split(".")[0] == "opto" for a in small.names):
            return True
    return False


def _is_preamble(statement: cst.CSTNode) -> bool:
    """A docstring or `from __future__ import ...`: `import tracec` goes after these."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    return isinstance(small, cst.ImportFrom) and small.module is not None and dotted(small.module) == "__future__"

"""`tracec migrate`'s codemod: Trace (`opto.trace`) annotations rewritten as tracec ones. Source in, source
and problems out; no I/O (tracec/commands/migrate.py finds files and writes patches).

  x = node(LITERAL, trainable=True, description=D)   ->  x = tracec.param(LITERAL, doc=D)
  self.x = node(LITERAL, trainable=True) in __init__  ->  class-level x = tracec.param(LITERAL)
  @bundle(trainable=True, description=D)              ->  @tracec.trainable(doc=D)
  @bundle() / @bundle(description=D)                  ->  @tracec.trace / @tracec.trace(doc=D)
  @model / @trace.model on a class                    ->  removed (a plain class)
  X.data on a migrated param X                        ->  X (when X is bound only there)

Whatever cannot be mapped safely is left as it was and reported as `path:line:col: message`. Trace names
are resolved through the module's imports (`from opto.trace import node`, `from opto import trace`,
`import opto.trace as trace`, and the `opto.trace.nodes/bundle/modules` submodules); a local definition
that shadows an imported name is not tracked.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import cast

import libcst as cst
from libcst.metadata import ExpressionContext, ExpressionContextProvider, MetadataWrapper, PositionProvider

from . import SourceError
from .trace_imports import TRACE_MODULES, ImportFixer, TraceImports, dotted, loaded_names

PARAM_MAKERS = {"node", "ParameterNode"}
_OP_TAG = re.compile(r"^\s*\[[^\[\]]*\]\s*")   # Trace descriptions start with an "[operator name]" tag


@dataclass(frozen=True)
class MigrateResult:
    path: str
    source: str
    code: str | None                       # migrated source; None on a syntax error
    problems: tuple[SourceError, ...]      # what was left unchanged, and why
    migrated: tuple[str, ...]              # names of the params and functions that became tracec ones
    error: SourceError | None = None

    @property
    def changed(self) -> bool:
        return self.code is not None and self.code != self.source


def migrate_source(source: str, *, path: str) -> MigrateResult:
    """Rewrite one module's Trace annotations. Never raises for bad input: syntax errors come back in
    `.error`."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        error = SourceError(path, exc.raw_line, exc.raw_column + 1, "syntax error: " + exc.message.splitlines()[0])
        return MigrateResult(path, source, None, (), (), error)
    wrapper = MetadataWrapper(module)
    survey = _Survey(path)
    wrapper.visit(survey)
    if not survey.imports.names and not survey.imports.modules:
        return MigrateResult(path, source, source, tuple(survey.problems), ())
    rewriter = _Rewriter(survey)
    new = wrapper.visit(rewriter)
    new = new.visit(ImportFixer(survey.imports, loaded_names(new)))
    problems = sorted(survey.problems + rewriter.problems, key=lambda p: (p.line, p.col))
    return MigrateResult(path, source, new.code, tuple(problems), tuple(rewriter.migrated))


# -- pass 1: imports, every Trace use, and which params can be migrated -------------------------------

@dataclass
class _Site:
    """One `node(..., trainable=True)` the rewriter turns into `tracec.param(...)`."""
    name: str                 # the bound name (module/class attribute)
    call: cst.Call            # the new tracec.param call
    moved_to: cst.ClassDef | None = None   # a `self.NAME = ...` in __init__ becomes a class attribute


class _Survey(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, ExpressionContextProvider)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.imports = TraceImports()
        self.problems: list[SourceError] = []
        self.sites: dict[int, _Site] = {}               # id(original Call) -> site
        self.moves: dict[int, _Site] = {}               # id(original statement line) -> site moved out
        self.stores: dict[str, int] = {}                # name -> times it is bound anywhere
        self.attr_stores: dict[str, int] = {}           # attribute name -> times `anything.NAME = ` occurs
        self._classes: list[cst.ClassDef] = []
        self._functions: list[cst.FunctionDef] = []
        self._statement: cst.SimpleStatementLine | None = None

    def report(self, node: cst.CSTNode, message: str) -> None:
        start = self.get_metadata(PositionProvider, node).start
        self.problems.append(SourceError(self.path, start.line, start.column + 1, message))

    # imports
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted(alias.name)
            if full in TRACE_MODULES or full == "opto":
                # (an import's `as` target is a Name: LibCST's ImportAlias validates it)
                self.imports.modules.add(cast(cst.Name, alias.asname.name).value if alias.asname else
                                         ("opto" if full == "opto" else full))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted(node.module) if node.module is not None and not node.relative else ""
        if module == "opto" and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                if alias.name.value == "trace":
                    self.imports.modules.add(cast(cst.Name, alias.asname.name).value if alias.asname else "trace")
        elif module in TRACE_MODULES:
            if isinstance(node.names, cst.ImportStar):
                self.report(node, f"`from {module} import *`: import the Trace names you use explicitly, then "
                                  "run tracec migrate again")
                return
            for alias in node.names:
                name = cast(cst.Name, alias.name).value   # `from m import NAME`: the grammar has no dots here
                self.imports.names[cast(cst.Name, alias.asname.name).value if alias.asname else name] = name

    # where we are
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.pop()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement = node

    # bindings, for proving `.data` removal safe
    def visit_Name(self, node: cst.Name) -> None:
        if self.get_metadata(ExpressionContextProvider, node, None) == ExpressionContext.STORE:
            self.stores[node.value] = self.stores.get(node.value, 0) + 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self.get_metadata(ExpressionContextProvider, node, None) == ExpressionContext.STORE:
            self.attr_stores[node.attr.value] = self.attr_stores.get(node.attr.value, 0) + 1

    # node(...) / ParameterNode(...)
    def visit_Call(self, node: cst.Call) -> None:
        api = self.imports.api(node.func)
        if api not in PARAM_MAKERS:
            return
        call = self._param_call(node, api)
        if call is None:
            return
        where = self._binding(node)
        if isinstance(where, str):
            self.report(node, where)
            return
        name, moved_to = where
        site = _Site(name, call, moved_to)
        if moved_to is not None and not self._movable(node, moved_to, name):
            return
        self.sites[id(node)] = site
        if moved_to is not None:
            self.moves[id(self._statement)] = site

    def _param_call(self, node: cst.Call, api: str) -> cst.Call | None:
        """The `tracec.param(...)` call for a trainable node, or None (reported) when there is none."""
        value, options = None, {}
        for index, arg in enumerate(node.args):
            if arg.star:
                self.report(node, f"{api}(*...): spell the arguments out so tracec migrate can map them")
                return None
            key = arg.keyword.value if arg.keyword else ("value" if index == 0 else f"argument {index + 1}")
            if key in ("value", "data"):
                value = arg.value
            else:
                options[key] = arg.value
        unknown = sorted(set(options) - {"trainable", "name", "description", "constraint"})
        if unknown:
            self.report(node, f"{api}(...) with {', '.join(unknown)}: tracec.param takes a value, name= and doc=; "
                              "migrate this one by hand")
            return None
        trainable = _literal(options.get("trainable"), default=(api == "ParameterNode"))
        if trainable is not True:
            self.report(node, f"{api}(...) is not trainable: tracec needs no wrapper for plain values; replace it "
                              "with its value (and drop any .data on it)")
            return None
        if value is None or not _is_param_literal(_literal(value, default=_NOT_LITERAL)):
            self.report(node, "the value of a trainable node must be a literal (str, number, bool, None, or a "
                              "list/tuple/dict of them) to become a tracec.param; write the value out")
            return None
        texts = {}
        for key in ("name", "description", "constraint"):
            text = _literal(options.get(key), default=_NOT_LITERAL)
            if key in options and not isinstance(text, (str, type(None))):
                self.report(options[key], f"{key}= must be a string literal for tracec migrate; write it out")
                return None
            texts[key] = text if key in options else None
        args = [cst.Arg(value)]
        if texts["name"]:
            args.append(_keyword_arg("name", options["name"]))
        doc = _doc(texts["description"], texts["constraint"])
        if doc is not None:
            args.append(_keyword_arg("doc", doc))
        return cst.Call(cst.parse_expression("tracec.param"), args)

    def _binding(self, node: cst.Call):
        """(name, class to move to or None) when `node` is the whole value of `NAME = ...` at module or
        class level, or of `self.NAME = ...` directly in `__init__`; else the problem as a string."""
        statement = self._statement
        body = statement.body if statement is not None else ()
        assign = body[0] if len(body) == 1 and isinstance(body[0], cst.Assign) else None
        if assign is None or assign.value is not node or len(assign.targets) != 1:
            return ("a trainable node must be assigned to a name (`NAME = node(...)`) to become a tracec.param; "
                    "tracec links params by name")
        target = assign.targets[0].target
        if isinstance(target, cst.Name) and not self._functions:
            return target.value, None
        function = self._functions[-1] if self._functions else None
        if (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and function is not None
                and function.name.value == "__init__" and self._classes
                and len(self._functions) == 1 and statement in function.body.body
                and _first_param(function) == target.value.value):
            return target.attr.value, self._classes[-1]
        return ("tracec.param must be bound at module or class level (or as `self.NAME` directly in "
                "__init__); move this trainable node there")

    def _movable(self, node: cst.Call, cls: cst.ClassDef, name: str) -> bool:
        for statement in cls.body.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    targets = [t.target for t in getattr(small, "targets", ())]
                    if any(isinstance(t, cst.Name) and t.value == name for t in targets):
                        self.report(node, f"class {cls.name.value} already has an attribute {name}; "
                                          "move this param to class level by hand")
                        return False
        value = _literal(node.args[0].value, default=None)
        if isinstance(value, (list, dict)):
            self.report(node, f"self.{name}: a class-level list or dict would be shared by every instance; "
                              f"make it a tuple (or move it to class level by hand), then run tracec migrate again")
            return False
        return True


# -- pass 2: rewrite ----------------------------------------------------------------------------------

class _Rewriter(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, survey: _Survey) -> None:
        super().__init__()
        self.survey = survey
        self.imports = survey.imports
        self.problems: list[SourceError] = []
        self.migrated: list[str] = []
        self._params = {s.name for s in survey.sites.values() if s.moved_to is None
                        and survey.stores.get(s.name) == 1}
        self._class_params: dict[int, set[str]] = {}
        for site in survey.sites.values():
            if site.moved_to is not None and survey.attr_stores.get(site.name) == 1:
                self._class_params.setdefault(id(site.moved_to), set()).add(site.name)
        self._classes: list[cst.ClassDef] = []
        self._selves: list[str | None] = []

    def report(self, node: cst.CSTNode, message: str) -> None:
        start = self.get_metadata(PositionProvider, node).start
        self.problems.append(SourceError(self.survey.path, start.line, start.column + 1, message))

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        site = self.survey.sites.get(id(original))
        if site is None or site.moved_to is not None:
            return updated
        self.migrated.append(site.name)
        return updated.with_changes(func=site.call.func, args=site.call.args)

    def leave_SimpleStatementLine(self, original, updated):
        site = self.survey.moves.get(id(original))
        if site is None:
            return updated
        moved_to = cast(cst.ClassDef, site.moved_to)   # `moves` holds only sites moved into a class
        self.migrated.append(f"{moved_to.name.value}.{site.name}")
        return cst.RemoveFromParent()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self._classes.pop()
        moved = [s for s in self.survey.sites.values() if s.moved_to is original]
        if moved:
            new = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(s.name))], s.call)])
                   for s in moved]
            body = list(updated.body.body)
            at = 1 if body and original.get_docstring() is not None else 0
            updated = updated.with_changes(body=updated.body.with_changes(body=body[:at] + new + body[at:]))
        for base in original.bases:
            if self.imports.api(base.value) == "Module":
                self.report(base, f"class {original.name.value} subclasses Trace's Module: make it a plain class "
                                  "(tracec finds its params and decorated methods statically)")
        decorators = []
        for original_decorator, decorator in zip(original.decorators, updated.decorators):
            if self.imports.api(decorator.decorator) == "model":
                if _defines(original, "forward") and not _defines(original, "__call__"):
                    self.report(original_decorator, f"@model made {original.name.value} instances callable (calling one "
                                           "runs forward); add `__call__` or call .forward, then remove @model")
                    decorators.append(decorator)
                continue
            decorators.append(decorator)
        return updated.with_changes(decorators=decorators)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._selves.append(_first_param(node) if self._classes else None)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self._selves.pop()
        if isinstance(updated.body, cst.IndentedBlock) and not updated.body.body:   # its params moved out
            updated = updated.with_changes(body=updated.body.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])]))
        decorators = []
        for original_decorator, decorator in zip(original.decorators, updated.decorators):
            decorators.append(self._decorator(original_decorator, decorator, original.name.value))
        return updated.with_changes(decorators=decorators)

    def _decorator(self, original: cst.Decorator, decorator: cst.Decorator, function: str) -> cst.Decorator:
        expr = original.decorator
        api = self.imports.api(expr.func if isinstance(expr, cst.Call) else expr)
        if api == "model":
            self.report(original, "@model belongs on a class; remove it")
            return decorator
        if api != "bundle":
            return decorator
        if not isinstance(expr, cst.Call):
            self.report(original, "@bundle must be called (`@bundle()`); fix it, then run tracec migrate again")
            return decorator
        options = {}
        for index, arg in enumerate(expr.args):
            key = arg.keyword.value if arg.keyword else ("description" if index == 0 else f"argument {index + 1}")
            options[key] = arg.value
        unknown = sorted(set(options) - {"trainable", "description"})
        if unknown:
            self.report(original, f"@bundle(...) with {', '.join(unknown)}: tracec has no equivalent; migrate "
                                  f"{function} by hand")
            return decorator
        trainable = _literal(options.get("trainable"), default=False)
        description = _literal(options.get("description"), default=_NOT_LITERAL)
        if not isinstance(trainable, bool) or ("description" in options
                                               and not isinstance(description, (str, type(None)))):
            self.report(original, "@bundle(...) arguments must be literals for tracec migrate; write them out")
            return decorator
        name = "tracec.trainable" if trainable else "tracec.trace"
        doc = _doc(description if "description" in options else None, None)
        new = cst.parse_expression(name)
        if doc is not None:
            new = cst.Call(new, [_keyword_arg("doc", doc)])
        self.migrated.append(function)
        return decorator.with_changes(decorator=new)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if original.attr.value != "data":
            return updated
        owner = original.value
        if isinstance(owner, cst.Name) and owner.value in self._params:
            return updated.value
        if (isinstance(owner, cst.Attribute) and isinstance(owner.value, cst.Name) and self._classes
                and self._selves and owner.value.value == self._selves[-1]
                and owner.attr.value in self._class_params.get(id(self._classes[-1]), ())):
            return updated.value
        self.report(original, f"`{dotted(owner) or 'expression'}.data`: if this unwraps a Trace node, drop "
                              "`.data` (tracec values are plain); tracec migrate cannot prove it safe here")
        return updated


# -- helpers ------------------------------------------------------------------------------------------

_NOT_LITERAL = object()


def _literal(expr: cst.BaseExpression | None, default=None):
    if expr is None:
        return default
    try:
        return ast.literal_eval(cst.Module([]).code_for_node(expr))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _is_param_literal(value) -> bool:
    """What tracec.param accepts (tracec.api checks the same at run time)."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_param_literal(item) for item in value)
    if isinstance(value, dict):
        return all(_is_param_literal(k) and _is_param_literal(v) for k, v in value.items())
    return False


def _doc(description: str | None, constraint: str | None) -> str | None:
    """tracec's doc= from Trace's description (minus its "[operator]" tag) and constraint."""
    description = _OP_TAG.sub("", description or "").strip() or None
    constraint = (constraint or "").strip() or None
    if description and constraint:
        return f"{description} (constraint: {constraint})"
    return description or constraint


def _keyword_arg(name: str, value) -> cst.Arg:
    expr = value if isinstance(value, cst.BaseExpression) else cst.SimpleString(_double_quoted(value))
    return cst.Arg(expr, keyword=cst.Name(name),
                   equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))


def _double_quoted(text: str) -> str:
    """A string literal in double quotes, the way black writes it."""
    literal = repr(text)
    if literal.startswith("'"):
        literal = '"' + literal[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
    return literal


def _first_param(function: cst.FunctionDef) -> str | None:
    params = function.params.posonly_params or function.params.params
    return params[0].name.value if params else None


def _defines(cls: cst.ClassDef, name: str) -> bool:
    return any(isinstance(s, cst.FunctionDef) and s.name.value == name for s in cls.body.body)

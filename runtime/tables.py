"""Static facts about an instrumented module, as the transform wrote them into the module's header."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionInfo:
    qualname: str
    line: int
    trainable: bool
    doc: str | None
    argnames: tuple[str, ...]
    global_names: frozenset[str]
    nonlocal_names: frozenset[str]
    outer: int        # function id of the lexically enclosing traced function, -1 if none
    code: str         # the `def ...:` line, for the code parameter's preview
    falls_off: bool   # may end without `return`/`raise` (else an unreported end means an exception)


@dataclass(frozen=True)
class StatementInfo:
    fid: int
    line: int
    end_line: int
    kind: str         # "op" | "control" | "return"
    name: str
    code: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    control: int      # statement id of the enclosing condition, -1 if none


@dataclass(frozen=True)
class ParamSite:
    key: str          # "module:NAME"
    line: int
    doc: str | None
    global_name: str | None  # set when the site binds a module global, so reads of that name reach it


@dataclass(frozen=True)
class ModuleTable:
    module: str
    file: str
    functions: tuple[FunctionInfo, ...]
    statements: tuple[StatementInfo, ...]
    params: tuple[ParamSite, ...]
    line_to_statement: dict  # (fid, line) -> statement id, for locating errors from tracebacks

    @classmethod
    def from_literals(cls, module, file, functions, statements, params) -> "ModuleTable":
        funcs = tuple(FunctionInfo(q, ln, tr, doc, tuple(args), frozenset(gl), frozenset(nl), outer, code, falls)
                      for q, ln, tr, doc, args, gl, nl, outer, code, falls in functions)
        stmts = tuple(StatementInfo(fid, ln, end, kind, name, code, tuple(reads), tuple(writes), ctl)
                      for fid, ln, end, kind, name, code, reads, writes, ctl in statements)
        sites = tuple(ParamSite(f"{module}:{key}", ln, doc, gname) for key, ln, doc, gname in params)
        lines: dict = {}
        for sid, st in enumerate(stmts):
            # statements are listed outer before inner, so an inner statement wins a shared line
            for ln in range(st.line, st.end_line + 1):
                lines[(st.fid, ln)] = sid
        return cls(module, file, funcs, stmts, sites, lines)

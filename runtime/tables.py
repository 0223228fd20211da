"""Static facts about an instrumented module, as the transform wrote them into the module's header.

The rows below are the contract between the two: the transform builds them and writes them as plain
tuples into the header, the runtime reads them back here. A change of their shape bumps TABLE_FORMAT, and
the runtime refuses a module built for another one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

TABLE_FORMAT = 2


class FunctionRow(NamedTuple):
    qualname: str
    line: int
    trainable: bool
    doc: str | None
    argnames: tuple[str, ...]
    global_names: tuple[str, ...]
    nonlocal_names: tuple[str, ...]
    outer: int        # function id of the lexically enclosing traced function, -1 if none
    code: str         # the `def ...:` line, for the code parameter's preview
    falls_off: bool   # may end without `return`/`raise` (else an unreported end means an exception)


class StatementRow(NamedTuple):
    fid: int
    line: int
    end_line: int
    kind: str         # "op" | "control" | "return"
    name: str
    code: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    control: int      # statement id of the enclosing condition, -1 if none


class ParamRow(NamedTuple):
    key: str          # the site's name inside its module: "NAME", "function.NAME", "Class.NAME"
    line: int
    doc: str | None
    global_name: str | None  # set when the site binds a module global, so reads of that name reach it


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
class ModuleTable:
    module: str
    file: str
    functions: tuple[FunctionInfo, ...]
    statements: tuple[StatementRow, ...]   # as written: the runtime reads them as they are
    params: tuple[ParamRow, ...]            # keys qualified by the module: "module:NAME"
    line_to_statement: dict  # (fid, line) -> statement id, for locating errors from tracebacks

    @classmethod
    def from_literals(cls, module, file, functions, statements, params) -> "ModuleTable":
        rows = [FunctionRow(*row) for row in functions]
        funcs = tuple(FunctionInfo(r.qualname, r.line, r.trainable, r.doc, tuple(r.argnames), frozenset(r.global_names),
                                   frozenset(r.nonlocal_names), r.outer, r.code, r.falls_off) for r in rows)
        stmts = tuple(map(StatementRow._make, statements))
        sites = tuple(ParamRow._make(row)._replace(key=f"{module}:{row[0]}") for row in params)
        lines: dict = {}
        for sid, st in enumerate(stmts):
            # statements are listed outer before inner, so an inner statement wins a shared line
            for ln in range(st.line, st.end_line + 1):
                lines[(st.fid, ln)] = sid
        return cls(module, file, funcs, stmts, sites, lines)

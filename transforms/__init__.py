"""tracec.transforms: LibCST passes, source in, instrumented source out. No file I/O here."""

from __future__ import annotations

from dataclasses import dataclass


__all__ = ["InstrumentResult", "SourceError", "instrument_source", "wants_instrumentation"]

TABLE_FORMAT = 2   # bump when the header's tables change shape; the runtime refuses other formats
_TABLES = "_tracec_tables_"   # stand-in for the header's table literal while LibCST places it


@dataclass(frozen=True)
class SourceError:
    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


@dataclass(frozen=True)
class InstrumentResult:
    path: str
    source: str
    code: str | None
    error: SourceError | None
    functions: int
    header: str
    header_placed: bool
    tables: tuple = ((), (), ())   # (functions, statements, params) as the header passes them to the runtime

    @property
    def changed(self) -> bool:
        return self.code is not None and self.code != self.source


def wants_instrumentation(source: str, all_functions: bool = False) -> bool:
    """Cheap textual pre-check: False means instrument_source would return the source unchanged."""
    return all_functions or "tracec" in source


def instrument_source(source: str, *, path: str, module: str, all_functions: bool = False,
                      first_ids: tuple[int, int, int] = (0, 0, 0)) -> InstrumentResult:
    """Instrument one module's source. Never raises for bad input: syntax errors come back in `.error`.

    `first_ids` numbers functions, statements and param sites from where a live module's table ends, so
    code recompiled from a changed source (an optimizer candidate) can extend that table."""
    if not wants_instrumentation(source, all_functions):
        return InstrumentResult(path, source, source, None, 0, "", False)
    # imported here so that loading this package (the import hook's cache hits) costs no LibCST import
    import libcst as cst
    from libcst.metadata import PositionProvider

    from .instrument import FunctionRewriter
    from .module import PRAGMA, ModuleInstrumenter, place_header, tracec_names, wrap

    try:
        tree = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        return InstrumentResult(path, source, None, _syntax_error(path, source, exc), 0, "", False)
    wrapper = wrap(tree)
    positions = wrapper.resolve(PositionProvider)
    visitor = ModuleInstrumenter(module, all_functions or bool(PRAGMA.search(source)), tracec_names(tree))
    # placeholders stand for the entries the live table already has: ids are positions in these lists
    first_function, first_statement, first_param = first_ids
    visitor.functions[:0] = [None] * first_function
    visitor.statements[:0] = [None] * first_statement
    visitor.params[:0] = [None] * first_param
    tables = (visitor.functions, visitor.statements)
    visitor.rewriter = FunctionRewriter(tree, positions, tables, visitor.param_site, visitor.annotation,
                                        visitor.class_params)
    new_tree = wrapper.visit(visitor)
    functions = tuple(visitor.functions[first_function:])
    raw = (functions, tuple(visitor.statements[first_statement:]), tuple(visitor.params[first_param:]))
    if not raw[0] and not raw[2]:
        return InstrumentResult(path, source, source, None, 0, "", False)
    tables = f"{TABLE_FORMAT}, {module!r}, {path!r}, globals(), {raw[0]!r}, {raw[1]!r}, {raw[2]!r}"
    # LibCST places a short stand-in; the table (often longer than the source) is spliced into the text
    header = f"import tracec.runtime as _tracec_rt; _tracec_m = _tracec_rt.module({_TABLES})"
    expression = f"(_tracec_m := __import__('tracec.runtime', fromlist=['module']).module({_TABLES}))"
    new_tree, placed = place_header(new_tree, header, expression)
    code = new_tree.code
    if placed:
        code = code.replace(_TABLES, tables, 1)
    return InstrumentResult(path, source, code, None, len(functions), header.replace(_TABLES, tables),
                            placed, raw)


def _syntax_error(path: str, source: str, exc) -> SourceError:
    """CPython's own message and position when it agrees the code is invalid; LibCST's otherwise."""
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as err:
        return SourceError(path, err.lineno or 1, err.offset or 1, f"syntax error: {err.msg}")
    except ValueError as err:   # e.g. null bytes
        return SourceError(path, 1, 1, f"cannot parse: {err}")
    return SourceError(path, exc.raw_line, exc.raw_column + 1,
                       "syntax LibCST cannot parse: " + (exc.message.splitlines() or ["invalid syntax"])[0])

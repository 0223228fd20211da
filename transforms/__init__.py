"""tracec.transforms: LibCST passes, source in, instrumented source out. No file I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:   # mypy sees the source tree's top-level `runtime` (installed: tracec.runtime, see [tool.mypy])
    from runtime.tables import TABLE_FORMAT, FunctionRow, ParamRow, StatementRow
else:
    from tracec.runtime.tables import TABLE_FORMAT

__all__ = ["InstrumentResult", "SourceError", "instrument_source", "wants_instrumentation"]

_TABLES = "_tracec_tables_"   # stand-in for the header's table literal while LibCST places it


@dataclass(frozen=True)
class SourceError:
    path: str
    line: int
    col: int       # 1-based; 0 when the problem has a line but no column
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.col else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


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
    internal: SourceError | None = None   # the pass failed on this file: use the original source

    @property
    def changed(self) -> bool:
        return self.code is not None and self.code != self.source


def wants_instrumentation(source: str, all_functions: bool = False) -> bool:
    """Cheap textual pre-check: False means instrument_source would return the source unchanged."""
    return all_functions or "tracec" in source


def instrument_source(source: str, *, path: str, module: str, all_functions: bool = False,
                      first_ids: tuple[int, int, int] = (0, 0, 0)) -> InstrumentResult:
    """Instrument one module's source. Never raises: code Python rejects comes back in `.error`; a
    failure of the pass itself (a crash, or output that would not compile or would move a line) comes
    back in `.internal`, with `.code` None, so the caller uses the original source.

    `first_ids` numbers functions, statements and param sites from where a live module's table ends, so
    code recompiled from a changed source (an optimizer candidate) can extend that table."""
    if not wants_instrumentation(source, all_functions):
        return InstrumentResult(path, source, source, None, 0, "", False)
    from .deep import deep_call, instrument_deep
    from .verify import compiled_tree

    # Python decides what is valid code, and what the output is checked against
    try:
        tree = deep_call(compiled_tree, source, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return InstrumentResult(path, source, None, _python_error(path, exc), 0, "", False)

    try:
        result = instrument_deep(lambda text: _instrument(text, path, module, all_functions, first_ids), source, tree)
    except Exception as exc:   # a bug or limit of the pass must never reach the caller as a crash
        return _internal(path, source, 1, _describe(exc))
    if result.error is not None or not result.changed:
        return result
    from .libcst_limits import not_reproduced, parenthesize_handler_types
    from .verify import check_output

    try:
        problem = deep_call(check_output, tree, result.code, path)
    except Exception as exc:
        problem = (1, f"checking the output failed: {_describe(exc)}")
    if problem is not None:
        line = not_reproduced(parenthesize_handler_types(source))
        if line is not None:   # the pass is not to blame: LibCST's own tree already lost some of the text
            problem = (line, "LibCST does not reproduce this line unchanged (a LibCST limit)")
        return _internal(path, source, *problem)
    return result


def _instrument(source: str, path: str, module: str, all_functions: bool,
                first_ids: tuple[int, int, int]) -> InstrumentResult:
    # imported here so that loading this package (the import hook's cache hits) costs no LibCST import
    import libcst as cst
    from libcst.metadata import PositionProvider

    from .deep import unmask_text
    from .header import place_header
    from .instrument import FunctionRewriter
    from .libcst_limits import error_line, parse, unmask_statements
    from .module import PRAGMA, ModuleInstrumenter, tracec_names, wrap

    try:
        tree, masked = parse(source)
    except cst.ParserSyntaxError as exc:   # Python compiled it: a limit of LibCST's grammar, not the user's error
        message = (exc.message.splitlines() or ["invalid syntax"])[0]
        return _internal(path, source, error_line(exc), f"LibCST cannot parse this: {message}")
    wrapper = wrap(tree)
    positions = wrapper.resolve(PositionProvider)
    visitor = ModuleInstrumenter(module, all_functions or bool(PRAGMA.search(source)), tracec_names(tree))
    # placeholders stand for the entries the live table already has: ids are positions in these lists
    first_function, first_statement, first_param = first_ids
    visitor.functions[:0] = [None] * first_function
    visitor.statements[:0] = [None] * first_statement
    visitor.params[:0] = [None] * first_param
    to_fill = (visitor.functions, visitor.statements)
    visitor.rewriter = FunctionRewriter(tree, positions, to_fill, visitor.param_site, visitor.annotation,
                                        visitor.class_params)
    new_tree = wrapper.visit(visitor)
    functions = tuple(visitor.functions[first_function:])
    # past the placeholders every row is filled once the visit is done (a function's when its body is)
    raw = cast("tuple[tuple[FunctionRow, ...], tuple[StatementRow, ...], tuple[ParamRow, ...]]",
               (functions, tuple(visitor.statements[first_statement:]), tuple(visitor.params[first_param:])))
    if not raw[0] and not raw[2]:
        return InstrumentResult(path, source, source, None, 0, "", False)
    # plain tuples in the header: a row's repr would name a class the module cannot see
    plain = tuple(tuple(tuple(row) for row in rows) for rows in raw)
    tables = unmask_text(f"{TABLE_FORMAT}, {module!r}, {path!r}, globals(), {plain[0]!r}, {plain[1]!r}, {plain[2]!r}")
    # LibCST places a short stand-in; the table (often longer than the source) is spliced into the text
    header = f"import tracec.runtime as _tracec_rt; _tracec_m = _tracec_rt.module({_TABLES})"
    expression = f"(_tracec_m := __import__('tracec.runtime', fromlist=['module']).module({_TABLES}))"
    new_tree, placed = place_header(new_tree, header, expression)
    code = new_tree.code
    if placed:
        code = code.replace(_TABLES, tables, 1)
    code = unmask_statements(code, masked)
    return InstrumentResult(path, source, code, None, len(functions), header.replace(_TABLES, tables),
                            placed, raw)


def _internal(path: str, source: str, line: int, message: str) -> InstrumentResult:
    return InstrumentResult(path, source, None, None, 0, "", False,
                            internal=SourceError(path, line, 0, f"internal error: {message}; file left uninstrumented"))


def syntax_error(path: str, source: str, exc) -> SourceError:
    """Where LibCST failed to parse `source`: Python's own message and position when it agrees the code
    is invalid, LibCST's otherwise (tracec check's TC001)."""
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        return _python_error(path, err)
    return SourceError(path, exc.raw_line, exc.raw_column + 1,
                       "syntax LibCST cannot parse: " + (exc.message.splitlines() or ["invalid syntax"])[0])


def _python_error(path: str, exc: BaseException) -> SourceError:
    if isinstance(exc, SyntaxError):
        return SourceError(path, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")
    if isinstance(exc, ValueError):   # e.g. null bytes
        return SourceError(path, 1, 1, f"cannot parse: {exc}")
    return SourceError(path, 1, 1, f"Python cannot compile this file: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """`Type: first line of the message`, short, and safe even when str(exc) fails (a LibCST KeyError
    holding a node too deep to repr)."""
    try:
        text = (str(exc).strip().splitlines() or [""])[0]
    except Exception:
        text = "(message unavailable)"
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

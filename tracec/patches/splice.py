"""Write-back: edit a source file's trainable parts with LibCST and record the edit as a reviewable patch.

Only the parameter's literal (the first argument of its `tracec.param(` call) or the trainable function's
definition is replaced; decorators, comments and every other byte stay as they were. Only the new code goes
through black, with the project's [tool.black] settings. The result is spliced in as text at the positions
LibCST reports, so nothing outside the replaced spans is ever re-rendered.

libcst and black are imported lazily. The patch files themselves are `tracec.patches.patch_file`.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from tracec.errors import TracecError
from tracec.literals import require_writable, spelled_repr

if TYPE_CHECKING:
    import black
    import libcst as cst

_LINE_BREAK = re.compile(r"\r\n|\r|\n")   # how Python (and LibCST positions) count lines


class PatchError(TracecError):
    """One line: "path:line: what happened; what to do"."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Change:
    key: str          # param key, "module:NAME" or "module:qualname"
    kind: str         # "value" | "code"
    line: int         # Param.line in the current file: the `tracec.param(` line, or the `def` line
    new: object       # value: the new literal value; code: full source of the new def


# -- black ------------------------------------------------------------------------------------------

def black_mode(root: Path) -> "black.Mode":
    """black.Mode from [tool.black] in root/pyproject.toml (black's defaults when absent)."""
    import black

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    pyproject = Path(root) / "pyproject.toml"
    try:
        with open(pyproject, "rb") as fh:
            config = tomllib.load(fh).get("tool", {}).get("black", {})
    except FileNotFoundError:
        return black.Mode()
    except tomllib.TOMLDecodeError as exc:
        raise PatchError(f"{pyproject}: not valid TOML ({exc}); fix it so tracec can read [tool.black]")
    options = {key.replace("-", "_"): value for key, value in config.items()}
    try:
        versions = {black.TargetVersion[str(v).upper()] for v in options.get("target_version", [])}
    except KeyError as exc:
        raise PatchError(f"{pyproject}: [tool.black] target-version {exc} is unknown to black "
                         f"{black.__version__}; fix or remove it")
    return black.Mode(
        target_versions=versions,
        line_length=int(options.get("line_length", black.DEFAULT_LINE_LENGTH)),
        string_normalization=not options.get("skip_string_normalization", False),
        magic_trailing_comma=not options.get("skip_magic_trailing_comma", False),
        preview=bool(options.get("preview", False)),
    )


def _black(code: str, mode, where: str) -> str:
    import black

    try:
        return black.format_str(code, mode=mode)
    except Exception as exc:  # black.InvalidInput and black's internal errors: both mean "not usable"
        raise PatchError(f"{where}: black cannot format the new code ({exc}); the proposal is not used")


# -- locating the targets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Edit:
    start: int        # character offsets into the source
    end: int
    text: str
    line: int
    key: str


def _line_offsets(source: str) -> list[int]:
    offsets = [0, 0]  # 1-based lines
    offsets.extend(match.end() for match in _LINE_BREAK.finditer(source))
    return offsets


def _multiline_string_lines(module: "cst.Module") -> set[int]:
    """Lines that begin inside a string literal: re-indenting them would change the string's value."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    inside: set[int] = set()
    kinds = tuple(getattr(cst, name) for name in ("SimpleString", "FormattedString", "TemplatedString")
                  if hasattr(cst, name))
    for node, where in positions.items():
        if isinstance(node, kinds) and where.end.line > where.start.line:
            inside.update(range(where.start.line + 1, where.end.line + 1))
    return inside


def _reindent(code: str, old_prefix: str, new_prefix: str) -> list[str]:
    """Lines of `code` with `old_prefix` swapped for `new_prefix`, except lines inside string literals."""
    import libcst as cst

    in_strings = _multiline_string_lines(cst.parse_module(code))
    out = []
    for number, line in enumerate(code.split("\n"), start=1):
        if number not in in_strings and line.startswith(old_prefix) and line.strip():
            line = new_prefix + line[len(old_prefix):]
        out.append(line)
    return out


def first_argument(call: "cst.Call"):
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            return arg.value
        if arg.keyword is not None and arg.keyword.value == "value":
            return arg.value
    return None


def _value_text(value: object, current: "cst.BaseExpression", mode, where: str, column: int) -> str:
    """The new literal's source, black-formatted as if it stood at `column`."""
    import libcst as cst

    try:
        require_writable(value, "the new value")
    except TypeError as exc:
        raise PatchError(f"{where}: {exc}")
    text = repr(value)
    printable = isinstance(value, str) and all(ch in "\n\t" or ch.isprintable() for ch in value)
    if printable and "\n" in value and isinstance(current, cst.SimpleString) \
            and current.value.endswith(('"""', "'''")):
        # keep a multi-line prompt readable: triple quotes like the original, if that spells the same value
        quote = current.value[-3:]
        body = value.replace("\\", "\\\\").replace(quote[0] * 3, "\\" + quote[0] * 3)
        candidate = quote + body + quote
        if not body.endswith(quote[0]) and spelled_repr(candidate) == repr(value):
            text = candidate
    width = max(20, mode.line_length - column + len("_ = "))
    formatted = _black(f"_ = {text}\n", dataclasses.replace(mode, line_length=width), where)
    text = formatted[len("_ = "):].rstrip("\n")
    if spelled_repr(text) != repr(value):
        raise PatchError(f"{where}: {value!r} cannot be written back as a Python literal; "
                         "use str, numbers, bool, None or lists/tuples/dicts of them")
    return text


def _new_def(change: Change, old: "cst.FunctionDef", indent: str, mode, where: str) -> str:
    """The new def, black-formatted, every line (the first too) indented by `indent`."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    if not isinstance(change.new, str):
        raise PatchError(f"{where}: the new code for {change.key} is a {type(change.new).__name__}, "
                         "not source text")
    source = change.new.strip("\n") + "\n"
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        try:
            module = cst.parse_module(textwrap.dedent(source))
        except cst.ParserSyntaxError as exc:
            raise PatchError(f"{where}: the new code for {change.key} does not parse "
                             f"(line {exc.raw_line}: {exc.message}); the proposal is not used")
    defs = [stmt for stmt in module.body if isinstance(stmt, cst.FunctionDef)]
    if len(defs) != 1 or len(module.body) != 1:
        raise PatchError(f"{where}: the new code for {change.key} must be exactly one def and nothing else")
    new = defs[0]
    if new.name.value != old.name.value:
        raise PatchError(f"{where}: the new code renames {old.name.value} to {new.name.value}; "
                         "a trainable function keeps its name")
    # the user's decorators and comments stay where they are; the reply's are dropped
    node: cst.BaseStatement = new.with_changes(decorators=(), leading_lines=(), lines_after_decorators=())
    # format at the right depth (nested in dummy classes) so black counts the indentation and
    # re-indents docstrings the way it would in place
    levels = indent.count("\t") + indent.count(" ") // 4
    for _ in range(levels):
        node = cst.ClassDef(name=cst.Name("_tracec_nest"), body=cst.IndentedBlock(body=[node]))
    formatted = _black(cst.Module(body=[node]).code, mode, where)
    wrapper = MetadataWrapper(cst.parse_module(formatted))
    positions = wrapper.resolve(PositionProvider)
    # the outermost def: a helper nested in the new function is a FunctionDef too, and may come first here
    span = min((positions[n] for n in positions if isinstance(n, cst.FunctionDef)), key=lambda p: p.start.line)
    lines = _reindent(formatted, "    " * levels, indent)
    return "\n".join(lines[span.start.line - 1:span.end.line])


class _Targets:
    """Param calls and function defs of one module, by line (a def by its `def` line and first decorator's)."""

    def __init__(self, source: str, path: str) -> None:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        from tracec.transforms.annotations import api_name, tracec_names

        try:
            self.module = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            raise PatchError(f"{path}:{exc.raw_line}: the file does not parse ({exc.message}); fix it first")
        self.path = path
        self.offsets = _line_offsets(source)
        self.lines = _LINE_BREAK.split(source)
        self.positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        aliases = tracec_names(self.module)
        self.params: dict[int, list[cst.Call]] = {}
        self.functions: dict[int, list[cst.FunctionDef]] = {}
        for node, where in self.positions.items():
            if isinstance(node, cst.Call) and api_name(node.func, aliases) == "param":
                self.params.setdefault(where.start.line, []).append(node)
            elif isinstance(node, cst.FunctionDef):
                lines = {self.positions[node.name].start.line}
                lines.update(self.positions[dec].start.line for dec in node.decorators[:1])
                for line in lines:
                    self.functions.setdefault(line, []).append(node)

    def offset(self, position) -> int:
        return self.offsets[position.line] + position.column

    def value_edit(self, change: Change, mode) -> _Edit:
        where = f"{self.path}:{change.line}"
        calls = self.params.get(change.line, [])
        if not calls:
            raise PatchError(f"{where}: no tracec.param( call on this line for {change.key}; the file changed "
                             "since it was recorded, rerun tracec optimize")
        if len(calls) > 1:
            raise PatchError(f"{where}: more than one tracec.param( call on this line; put each on its own "
                             f"line so {change.key} can be patched")
        current = first_argument(calls[0])
        if current is None or spelled_repr(self.module.code_for_node(current)) is None:
            raise PatchError(f"{where}: the value of {change.key} is not written as a literal; write it as one "
                             "so tracec can patch it")
        span = self.positions[current]
        text = _value_text(change.new, current, mode, where, span.start.column)
        if "\n" in text:   # continuation lines follow the indentation of the line the call is on
            line_indent = re.match(r"[ \t]*", self.lines[span.start.line - 1]).group()
            text = "\n".join([text.split("\n", 1)[0], *_reindent(text, "", line_indent)[1:]])
        return _Edit(self.offset(span.start), self.offset(span.end), text, change.line, change.key)

    def code_edit(self, change: Change, mode) -> _Edit:
        where = f"{self.path}:{change.line}"
        functions = self.functions.get(change.line, [])
        name = change.key.rpartition(":")[2].rpartition(".")[2]
        if len(functions) != 1 or functions[0].name.value != name:
            raise PatchError(f"{where}: no def of {change.key} on this line; the file changed since it was "
                             "recorded, rerun tracec optimize")
        span = self.positions[functions[0]]
        indent = self.lines[span.start.line - 1][:span.start.column]
        if indent.strip():
            raise PatchError(f"{where}: {change.key} does not start its own line; cannot replace it")
        text = _new_def(change, functions[0], indent, mode, where)
        end = self.offsets[span.end.line] + len(self.lines[span.end.line - 1])   # through a trailing comment
        return _Edit(self.offsets[span.start.line], end, text, change.line, change.key)


def rewrite_source(source: str, path: str, changes: Sequence[Change], mode) -> str:
    """`source` with each change's literal or def replaced; every other byte identical."""
    if not changes:
        return source
    targets = _Targets(source, path)
    edits = []
    for change in changes:
        if change.kind not in ("value", "code"):
            raise PatchError(f"{path}:{change.line}: unknown change kind {change.kind!r} for {change.key}")
        edits.append(targets.value_edit(change, mode) if change.kind == "value" else targets.code_edit(change, mode))
    edits.sort(key=lambda edit: edit.start)
    for before, after in zip(edits, edits[1:]):
        if after.start < before.end:
            raise PatchError(f"{path}:{after.line}: {after.key} lies inside {before.key}, which is also "
                             "changed; change one of them at a time")
    result = source
    for edit in reversed(edits):   # last first: earlier offsets stay valid
        result = result[:edit.start] + edit.text.replace("\n", targets.module.default_newline) + result[edit.end:]
    try:
        compile(result, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise PatchError(f"{path}:{exc.lineno}: the patched file would not compile ({exc.msg}); "
                         "the proposal is not used")
    return result

"""Reading the optimizer LLM's reply: never raises, never guesses a value it cannot justify.

OptoPrime converts a suggestion with `type(old)(new)` (so "False" becomes True and "[1, 2]" a list of
characters) and falls back to regexes that cut strings at the first `}`. Here the JSON is found with
the JSON decoder itself, each value is converted by its parameter's current type with `ast.literal_eval`
for strings that should not be strings, and code must parse and keep the function's name and
parameters. Whatever cannot be used becomes a one-line problem that is shown to the model on retry."""

from __future__ import annotations

import ast
import json
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from tracec.literals import unwritable
from tracec.optimize.bounds import parse_bounds
from tracec.optimize.prompt import Variable, display_names

MAX_REPLY_CHARS = 2_000_000   # a reply longer than this is not searched past this point
_SCAN_STARTS = 500            # `{` positions tried when the reply is not pure JSON
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_NAME_CHARS = 60              # how much of an unknown name a problem quotes
# json decodes "\ud800" (half of a UTF-16 pair, alone) to a str no UTF-8 file can hold; a pair decodes
# to one character, so any surrogate left in a decoded string is a lone one
SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Proposal:
    reasoning: str
    values: dict[str, object]      # key -> converted value, or validated def source for code
    problems: tuple[str, ...]      # one line per unusable entry or reply


class _Duplicate:
    """Marks a JSON name given twice with different values (json keeps only the last one)."""

    def __init__(self, values):
        self.values = values


def _pairs(pairs):
    out: dict = {}
    for name, value in pairs:
        if name in out and out[name] != value:
            previous = out[name]
            out[name] = _Duplicate([*(previous.values if isinstance(previous, _Duplicate) else [previous]), value])
        elif name not in out:
            out[name] = value
    return out


def _loads(text: str):
    return json.loads(text, object_pairs_hook=_pairs)


def _find_object(text: str):
    """The reply's JSON object: the whole text, a fenced block, or the first `{...}` in prose that
    decodes (the decoder, not a regex, decides where it ends, so braces in strings are fine)."""
    stripped = text.strip()
    try:
        return _loads(stripped)
    except (ValueError, RecursionError):
        pass
    for match in _FENCE.finditer(text):
        try:
            return _loads(match.group(2).strip())
        except (ValueError, RecursionError):
            continue
    decoder = json.JSONDecoder(object_pairs_hook=_pairs)
    found = None
    start = text.find("{")
    for _ in range(_SCAN_STARTS):
        if start < 0:
            break
        try:
            obj, _end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict) and ("suggestion" in obj or "reasoning" in obj):
            return obj
        found = found if found is not None else obj
        start = text.find("{", _end)
    return found


def _quote(name: object) -> str:
    text = name if isinstance(name, str) else json.dumps(name)
    return repr(text if len(text) <= _NAME_CHARS else text[:_NAME_CHARS] + "...")


def _kind(value: object) -> str:
    return {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def parse_reply(text: str, variables: Sequence[Variable]) -> Proposal:
    """The reasoning, the usable values by key, and one problem line for everything else."""
    if not isinstance(text, str) or not text.strip():
        return Proposal("", {}, ("the reply is empty: answer with one JSON object "
                                 '{"reasoning": ..., "suggestion": {name: value}}',))
    text = text[:MAX_REPLY_CHARS]
    reply = _find_object(text)
    if not isinstance(reply, dict):
        if "TERMINATE" in text:
            return Proposal(text.strip()[:2000], {}, (
                "the reply says TERMINATE instead of suggesting a change: always reply with one JSON object "
                "whose suggestion changes at least one variable",))
        what = "no JSON object" if reply is None else f"{_kind(reply)} instead of a JSON object"
        return Proposal(text.strip()[:2000], {}, (
            f"the reply contains {what}: answer with one JSON object "
            '{"reasoning": "...", "suggestion": {name: value}}',))
    reasoning = reply.get("reasoning", "")
    if isinstance(reasoning, _Duplicate):
        reasoning = reasoning.values[-1]
    if not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning, default=str)
    names = display_names(v.key for v in variables)
    by_name = {**{v.key: v for v in variables}, **{names[v.key]: v for v in variables}}
    suggestion, problems = _suggestion(reply, by_name)
    values: dict[str, object] = {}
    if suggestion is None:
        return Proposal(reasoning, values, tuple(problems))
    for name, raw in suggestion.items():
        variable = by_name.get(name.strip().strip("`'\"") if isinstance(name, str) else name)
        if variable is None:
            problems.append(f"unknown name {_quote(name)} in suggestion: the names you can change are "
                            + ", ".join(names[v.key] for v in variables))
            continue
        label = names[variable.key]
        if isinstance(raw, _Duplicate):
            problems.append(f"{label}: given more than once with different values; give it once")
            continue
        if variable.key in values:
            if values[variable.key] != _convert(variable, raw)[0]:
                problems.append(f"{label}: given more than once with different values; give it once")
                del values[variable.key]
            continue
        surrogate = lone_surrogate(raw)   # first: no file downstream (run state, patch) could hold it
        if surrogate:
            value, problem = None, (f"the value holds {surrogate}, a lone UTF-16 surrogate, which is not valid "
                                    "Unicode; write the character itself (or both halves of its surrogate pair)")
        else:
            value, problem = _convert(variable, raw)
        if problem:
            problems.append(f"{label}: {problem}")
        else:
            values[variable.key] = value
    return Proposal(reasoning, values, tuple(problems))


def lone_surrogate(value: object) -> str | None:
    """The first lone surrogate in a JSON value's strings (keys too), as `\\udXXX`, or None."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=lambda o: getattr(o, "values", None))
    except RecursionError:   # nested deeper than json itself decodes: _convert refuses it anyway
        return None
    found = SURROGATES.search(text)
    return f"\\u{ord(found.group()):04x}" if found else None


def _suggestion(reply: dict, by_name: dict) -> tuple[dict | None, list[str]]:
    """The name -> value mapping of the reply (also nested as a JSON string, or names at the top level)."""
    raw = reply.get("suggestion", reply.get("suggestions"))
    if raw is None and ("suggestion" not in reply and "suggestions" not in reply):
        top = {k: v for k, v in reply.items() if isinstance(k, str) and k.strip() in by_name}
        if top:   # the names at the top level: unambiguous, so accepted
            return top, []
        return None, ['the reply has no "suggestion": put the changed values in '
                      '"suggestion": {name: value}']
    if isinstance(raw, str):
        try:
            nested = _loads(raw)
        except (ValueError, RecursionError):
            nested = None
        if isinstance(nested, dict):
            raw = nested
        elif raw.strip().upper().startswith("TERMINATE"):
            return None, ["the suggestion says TERMINATE instead of changing a variable: always suggest a change"]
    if isinstance(raw, _Duplicate):
        return None, ['"suggestion" is given more than once; give one object']
    if not isinstance(raw, dict):
        return None, [f'"suggestion" must be a JSON object {{name: value}}, got {_kind(raw)}']
    if not raw:
        return None, ['"suggestion" is empty: change at least one variable']
    return raw, []


# -- values ---------------------------------------------------------------------------------------


def _size(value: object) -> int:
    return len(value) if isinstance(value, str) else len(repr(value))


def _convert(variable: Variable, raw: object) -> tuple[object, str | None]:
    if isinstance(raw, _Duplicate):
        return None, "given more than once with different values; give it once"
    if variable.kind == "code":
        return _code(variable, raw)
    old = variable.value
    limit = max(8000, 4 * _size(old))
    if isinstance(raw, str) and len(raw) > limit:
        return None, f"the new value has {len(raw)} characters, more than the limit of {limit}; make it shorter"
    value, problem = _typed(old, raw)
    if problem:
        return None, problem
    if unwritable(value) is not None:
        return None, "the value must be a literal (string, number, boolean, null, or lists/objects of those)"
    if _size(value) > limit:
        return None, f"the new value has {_size(value)} characters, more than the limit of {limit}; make it shorter"
    bounds = parse_bounds(variable.doc)   # "min 0, max 2" in the doc is a constraint, not a hint
    problem = bounds.problem(value) if bounds is not None else None
    return (None, problem) if problem else (value, None)


def _typed(old: object, raw: object) -> tuple[object, str | None]:
    """`raw` as a value of old's type; a string is read as a Python/JSON literal when old is not a string."""
    want = type(old)
    if old is None:
        return raw, None   # no type to keep
    if want is str:
        if isinstance(raw, str):
            return raw, None
        return None, f"expected a string, got {_kind(raw)}; write the new text as a JSON string"
    value = raw
    if isinstance(raw, str):
        value = _literal(raw, want)
        if value is _NOT_LITERAL:
            return None, f"expected {_name(want)}, got the string {_quote(raw)}; write a JSON {_json_name(want)}"
    if want is bool:
        if type(value) is bool:
            return value, None
        return None, f"expected a boolean (true or false), got {_kind(value)}"
    if want is int:
        if type(value) is int:
            return value, None
        if type(value) is float and math.isfinite(value) and value.is_integer():
            return int(value), None
        if type(value) is float:
            return None, f"expected an integer, got {value!r}; round it"
        return None, f"expected an integer, got {_kind(value)}"
    if want is float:
        if type(value) in (int, float) and math.isfinite(value):
            return float(value), None
        if type(value) is float:
            return None, "expected a finite number, got NaN or infinity"
        return None, f"expected a number, got {_kind(value)}"
    if want in (list, tuple):
        if isinstance(value, (list, tuple)):
            return want(value), None
        return None, f"expected {_name(want)} (a JSON array), got {_kind(value)}"
    if want is dict:
        if isinstance(value, dict):
            return value, None
        return None, f"expected a dict (a JSON object), got {_kind(value)}"
    if type(value) is want:
        return value, None
    return None, f"expected {_name(want)}, got {_kind(value)}"


class _NotLiteral:
    pass


_NOT_LITERAL = _NotLiteral()
_JSON_WORDS = {"true": True, "false": False, "null": None}


def _literal(text: str, want: type):
    """A string that spells a literal: Python (`False`, `[1, 2]`) or JSON (`false`, `null`)."""
    stripped = text.strip()
    if want is bool and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if stripped in _JSON_WORDS:
        return _JSON_WORDS[stripped]
    if len(stripped) > 100_000:
        return _NOT_LITERAL
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return _NOT_LITERAL


def _name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "a boolean", list: "a list", tuple: "a tuple",
            dict: "a dict"}.get(kind, kind.__name__)


def _json_name(kind: type) -> str:
    return {int: "integer", float: "number", bool: "true/false", list: "array", tuple: "array",
            dict: "object"}.get(kind, "value")


# -- code -----------------------------------------------------------------------------------------
def _code(variable: Variable, raw: object) -> tuple[object, str | None]:
    """A def that parses and keeps the original's name, async-ness and parameters; decorators dropped."""
    if not isinstance(raw, str):
        return None, f"expected the complete new function definition as a string, got {_kind(raw)}"
    old = str(variable.value)
    limit = max(8000, 4 * len(old))
    if len(raw) > limit:
        return None, f"the new code has {len(raw)} characters, more than the limit of {limit}; make it shorter"
    source = _unfence(raw)
    if not source.strip():
        return None, "the new code is empty; write the complete function definition"
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return None, f"the new code does not parse: {exc.msg} at line {exc.lineno}; send valid Python"
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, f"the new code does not parse ({type(exc).__name__}); send valid Python"
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    others = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
              and not _is_docstring(n)]
    want_name = variable.key.partition(":")[2].rsplit(".", 1)[-1]
    if len(defs) != 1 or others:
        return None, (f"the new code must be exactly one function definition `def {want_name}(...)` (put imports "
                      f"and helpers inside it), got {len(defs)} def(s) and {len(others)} other statement(s)")
    new = defs[0]
    if new.name != want_name:
        return None, f"the function must keep its name `{want_name}`, got `{new.name}`"
    original = _original_def(old, want_name)
    if original is not None:
        if isinstance(original, ast.AsyncFunctionDef) != isinstance(new, ast.AsyncFunctionDef):
            kind = "async def" if isinstance(original, ast.AsyncFunctionDef) else "def"
            return None, f"the function must stay `{kind} {want_name}`"
        if _shape(original.args) != _shape(new.args):
            return None, (f"the function must keep its parameters ({ast.unparse(original.args)}), got "
                          f"({ast.unparse(new.args)})")
        if _same_code(original, new):
            return old, None   # the same code, however it was formatted: no change
    lines = source.splitlines()
    return "\n".join(lines[new.lineno - 1:new.end_lineno]).rstrip(), None


def _unfence(text: str) -> str:
    match = _FENCE.search(text)
    if match and not text[:match.start()].strip() and not text[match.end():].strip():
        text = match.group(2)
    return textwrap.dedent(text.replace("\r\n", "\n")).strip("\n")


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _original_def(source: str, name: str):
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _shape(args: ast.arguments) -> tuple:
    """What callers depend on: parameter names and kinds, which have defaults, *args/**kwargs."""
    return (tuple(a.arg for a in args.posonlyargs), tuple(a.arg for a in args.args),
            args.vararg.arg if args.vararg else None, tuple(a.arg for a in args.kwonlyargs),
            tuple(d is not None for d in args.kw_defaults), len(args.defaults),
            args.kwarg.arg if args.kwarg else None)


def _same_code(original, new) -> bool:
    """Equal up to formatting, comments and decorators."""
    decorators = new.decorator_list
    original.decorator_list, new.decorator_list = [], []
    try:
        return ast.dump(original) == ast.dump(new)
    finally:
        new.decorator_list = decorators


REASONING_CHARS = 300   # a schema-constrained model must close its reasoning and get to the suggestion


def _value_schema(value: object) -> dict:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        same = len(kinds) == 1 and kinds <= {str, int, float, bool}
        bounds = {"maxItems": max(2 * len(value), 10)}
        return {"type": "array", "items": _value_schema(value[0]), **bounds} if same else {"type": "array", **bounds}
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


def reply_schema(variables: Sequence[Variable]) -> dict:
    """The JSON schema of a reply, for models that can be constrained to one (structured output): each
    name with its type, code as a string, and a bounded reasoning so a small model cannot ramble forever."""
    names = display_names(v.key for v in variables)
    # only the reasoning gets a maxLength: llama.cpp spells one out as nested optional characters, so a
    # long bound on a code string makes a grammar of megabytes
    properties = {names[v.key]: {"type": "string"} if v.kind == "code" else _value_schema(v.value)
                  for v in variables}
    return {"type": "object", "additionalProperties": False, "required": ["reasoning", "suggestion"],
            "properties": {"reasoning": {"type": "string", "maxLength": REASONING_CHARS},
                           "suggestion": {"type": "object", "properties": properties,
                                          "additionalProperties": False}}}

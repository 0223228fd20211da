"""The optimizer's prompt, built from recorded subgraphs.

Like OptoPrime's problem instance (#Instruction, #Code, #Variables, ... #Feedback) but from a statement-level
recording: #Code is the user's real source lines that ran between the trainable variables and the fed-back
outputs, the names are the user's own, and a variable that reaches an output only through an `if` says so
(Trace cannot: its `Node.__bool__` is untraced)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracec.optimize.sourceview import SourceView, truncate

SYSTEM = """You improve a Python program by changing its trainable variables so that its outputs get better feedback.
The problem has these parts:
#Instruction: what to do.
#Code: the source lines that ran between the variables and the outputs, by file and function (`NN |` is the line number; `...` marks lines that did not run or do not matter).
#Definitions: signatures and docstrings of other traced functions the code calls.
#Variables: what you may change: `(type) name = current value`, or for `(code)` the current source of a function.
#Constraints: what each variable must stay.
#Inputs: values the code read that you cannot change, per example.
#Others: intermediate values, per example (`line N: code -> value`; a condition shows which way it went).
#Outputs: the outputs the feedback is about, per example.
#Feedback: the feedback and score per example (higher scores are better), and the mean score.
#Memory: what earlier steps tried and how it scored (when present).

Reply with ONE JSON object and nothing else:
{"reasoning": "<what the feedback means for the variables, and the change that fixes it>", "suggestion": {"<name>": <new value>}}
Rules: use the names exactly as in #Variables; include only variables you change; keep each value's type (a JSON number for int/float, true/false for bool, a JSON array for list/tuple, a JSON object for dict, a JSON string for str). For a (code) variable the value is a JSON string holding the complete new function definition: same function name, same parameters, no decorators. Always propose a change; never answer TERMINATE."""


@dataclass(frozen=True)
class Variable:
    key: str
    kind: str            # "value" | "code"
    value: object        # current value, or the current full source of the def
    doc: str | None
    file: str
    line: int


@dataclass(frozen=True)
class Example:
    graph: object        # tracec.runtime.Graph with feedback attached, or None when not recorded
    input: str
    output: str          # preview of the output, or "ValueError: ..." when run() raised
    score: float
    feedback: str


def display_names(keys: Iterable[str]) -> dict[str, str]:
    """key -> the user's own name (`ESCALATE_AT`, `Agent.act`); module-qualified only where two keys share it."""
    keys = list(dict.fromkeys(keys))
    short = {k: k.partition(":")[2] or k for k in keys}
    counts: dict[str, int] = {}
    for name in short.values():
        counts[name] = counts.get(name, 0) + 1
    names = {k: (n if counts[n] == 1 else k.replace(":", ".", 1)) for k, n in short.items()}
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    # "a.b:c" and "a:b.c" both qualify to "a.b.c": only the full key tells them apart
    return {k: (n if taken[n] == 1 else k) for k, n in names.items()}


def value_text(value: object) -> str:
    """How a value is shown: JSON when it is JSON (that is how the reply must write it), else Python repr."""
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            pass
    return repr(value)


def type_label(variable: Variable) -> str:
    return "code" if variable.kind == "code" else type(variable.value).__name__


# -- what one example's recording contributes ----------------------------------------------------
@dataclass
class _View:
    """The nodes of one example that the prompt shows."""
    members: list     # nodes on a path from some variable to a fed-back node, in run order
    inputs: list      # nodes outside that set that members read (values the variables cannot change)
    outputs: list     # fed-back nodes
    reach: dict       # key -> ParamFeedback


def _view(example: Example, keys: set[str]) -> _View:
    graph = example.graph
    if graph is None:
        return _View([], [], [], {})
    reach = {k: pf for k, pf in graph.backward().items() if k in keys}
    ids = sorted({n for pf in reach.values() for n in pf.nodes})
    member_set = set(ids)
    fed = [fb.node for fb in graph.feedbacks]
    border = sorted({p for n in ids for p in (*graph.nodes[n].parents, *graph.nodes[n].control)} - member_set)
    outputs = [graph.nodes[i] for i in dict.fromkeys(fed)]
    return _View([graph.nodes[i] for i in ids], [graph.nodes[i] for i in border], outputs, reach)


def _data_reach(graph, members: Sequence[int], start: int) -> set[int]:
    """Members that depend on `start` through data edges alone (not through a condition)."""
    reached = {start}
    for nid in members:
        if nid != start and any(p in reached for p in graph.nodes[nid].parents):
            reached.add(nid)
    return reached


# -- sections -------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, variables, examples, root: Path, value_chars: int):
        self.variables, self.examples, self.value_chars = list(variables), list(examples), value_chars
        self.names = display_names(v.key for v in self.variables)
        self.keys = {v.key for v in self.variables}
        self.trainable = {(v.file, v.key.partition(":")[2]) for v in self.variables if v.kind == "code"}
        self.source = SourceView(root)
        self.views = [_view(ex, self.keys) for ex in self.examples]
        files = {n.file for view in self.views for n in view.members + view.inputs + view.outputs}
        self.many_files = len(files) > 1

    def where(self, node) -> str:
        return f"{node.file}:{node.line}" if self.many_files else f"line {node.line}"

    def node_line(self, node, count: int = 1) -> str:
        """`line N: code -> value` for one recorded statement (loops: how often it ran, the last value)."""
        value = node.value if isinstance(node.value, str) else str(node.value)
        times = count + (node.repeats or 0)
        ran = f" (ran {times} times, last value)" if times > 1 else ""
        if node.kind == "error":
            err = node.error or {}
            return f"{self.where(node)}: {node.code or node.name} raised {err.get('type', node.name)}: " \
                   f"{err.get('message', '')}"
        if node.kind == "param":
            return f"{node.name} = {value}"
        if node.kind in ("input", "op") and node.code.endswith(")") and "(argument of " in node.code:
            return f"{self.where(node)}: {node.code} = {value}{ran}"
        return f"{self.where(node)}: {node.code.splitlines()[0] if node.code else node.name} -> {value}{ran}"

    def deduped(self, nodes) -> list[str]:
        """One line per statement: a loop's or a repeated call's nodes collapse into the last one."""
        last: dict[tuple, list] = {}
        for node in nodes:
            key = (node.file, node.line, node.function, node.kind, node.code)
            entry = last.setdefault(key, [node, 0])
            entry[0] = node
            entry[1] += 1
        return [self.node_line(node, count) for node, count in last.values()]

    # #Code: the real lines, per function, functions in the order they were first entered
    def code(self) -> tuple[str, list]:
        blocks: dict[tuple[str, str], set[int]] = {}
        first_seen: dict[tuple[str, str], tuple[int, int]] = {}
        callees: dict[tuple[str, str], None] = {}
        for x, view in enumerate(self.views):
            graph = self.examples[x].graph
            mine = {(n.file, n.function) for n in view.members if n.kind != "param"}
            # lines the members read from are shown too, but only in functions that have members: a callee
            # whose result is an input goes to #Definitions
            for node in view.members + [n for n in view.inputs if (n.file, n.function) in mine]:
                if node.kind == "param" or not node.function:
                    continue
                fkey = (node.file, node.function)
                lines = blocks.setdefault(fkey, set())
                if "(argument of " not in (node.code or ""):
                    lines.add(node.line)
                first_seen.setdefault(fkey, (x, _first_node_of(graph, node.function)))
            for node in view.members + view.inputs:   # traced functions whose returns feed a shown line
                if (node.file, node.function) not in mine:
                    continue
                for p in node.parents:
                    parent = graph.nodes[p]
                    if parent.kind == "return" and parent.function != node.function:
                        callees[(parent.file, parent.function)] = None
        parts = []
        for fkey in sorted(blocks, key=lambda k: first_seen[k]):
            file, function = fkey
            qualname = self.source.qualname(file, function)
            mark = "  (trainable: current source in #Variables)" if (file, qualname) in self.trainable else ""
            parts.append(f"# {file}, {qualname or function}{mark}")
            parts.append(self.source.listing(file, qualname, sorted(blocks[fkey]), self._fallback(fkey)))
        definitions = [k for k in callees if k not in blocks]
        return "\n".join(parts) or "(no recorded line connects the variables to the outputs)", definitions

    def _fallback(self, fkey) -> dict[int, str]:
        """Line -> recorded code, for when the file cannot be read."""
        out: dict[int, str] = {}
        for x, view in enumerate(self.views):
            for node in view.members + view.inputs:
                if (node.file, node.function) == fkey and node.code and "(argument of " not in node.code:
                    out.setdefault(node.line, node.code)
        return out

    def definitions(self, called: list) -> str:
        out = []
        for file, function in called:
            qualname = self.source.qualname(file, function)
            if (file, qualname) in self.trainable:
                continue
            text = self.source.definition(file, qualname)
            if text:
                out.append(text)
        return "\n".join(out)

    def variable(self, v: Variable) -> str:
        name = self.names[v.key]
        if v.kind == "code":
            text = f"(code) {name}:\n{str(v.value).rstrip()}"
        else:
            text = f"({type_label(v)}) {name} = {truncate(value_text(v.value), self.value_chars)}"
        return text + "".join(f"\n  # {note}" for note in self.reach_notes(v))

    def reach_notes(self, v: Variable) -> list[str]:
        """Where a value variable is read, and whether it reaches the outputs only through conditions."""
        reached_in, by_data, conditions, uses = 0, 0, {}, {}
        for x, view in enumerate(self.views):
            pf = view.reach.get(v.key)
            if pf is None:
                continue
            reached_in += 1
            graph = self.examples[x].graph
            data = _data_reach(graph, pf.nodes, pf.param.node)
            if v.kind == "value":
                for nid in pf.nodes:
                    node = graph.nodes[nid]
                    if pf.param.node in node.parents:
                        uses.setdefault(self.where(node), node.code.splitlines()[0] if node.code else node.name)
                    if node.kind == "control" and nid in data:
                        conditions.setdefault(self.where(node), node.code.splitlines()[0])
            if any(fb.node in data for fb in pf.feedback):
                by_data += 1
        if not reached_in:
            return ["the feedback of these examples does not reach it"]
        notes = [f"read at {w}: `{c}`" for w, c in list(uses.items())[:4]]
        if conditions and not by_data:
            notes.append(f"reaches the outputs ONLY through control flow: it decides {_conditions(conditions)}, "
                         f"which changes the branch that runs")
        elif conditions:
            notes.append(f"also decides {_conditions(conditions)}")
        return notes

    def constraint(self, v: Variable) -> str:
        name = self.names[v.key]
        doc = f" {v.doc.strip()}" if v.doc and v.doc.strip() else ""
        if v.kind == "code":
            signature = self.source.signature_of(str(v.value))
            keep = f"keep the name and parameters: {signature}" if signature else "keep the name and parameters"
            return f"{name}: a Python function ({keep}).{doc}"
        return f"{name}: {type_label(v)}.{doc}"

    def per_example(self, render) -> str:
        lines = []
        for x, (ex, view) in enumerate(zip(self.examples, self.views), 1):
            body = render(ex, view)
            if body:
                lines.append(f"[example {x}]" + ("\n" + body if "\n" in body or len(body) > 60 else " " + body))
        return "\n".join(lines)

    def inputs(self, ex: Example, view: _View) -> str:
        shown = [n for n in view.inputs if n.id not in {o.id for o in view.outputs}]
        return "\n".join([f"input = {ex.input}", *self.deduped(shown)])

    def others(self, ex: Example, view: _View) -> str:
        skip = {o.id for o in view.outputs} | {pf.param.node for pf in view.reach.values()}
        return "\n".join(self.deduped([n for n in view.members if n.id not in skip]))

    def outputs(self, ex: Example, view: _View) -> str:
        return "\n".join([f"output = {ex.output}", *self.deduped(view.outputs)])


def _conditions(conditions: dict) -> str:
    shown = [f"`{code}` ({where})" for where, code in list(conditions.items())[:3]]
    more = f" and {len(conditions) - 3} more" if len(conditions) > 3 else ""
    return ("the condition " if len(conditions) == 1 else "the conditions ") + ", ".join(shown) + more


def _first_node_of(graph, function: str) -> int:
    for node in graph.nodes:
        if node.function == function:
            return node.id
    return len(graph.nodes)


def build_messages(variables: Sequence[Variable], examples: Sequence[Example], *, root: Path,
                   memory: Sequence[str] = (), value_chars: int = 1000, problems: Sequence[str] = ()) -> list[dict]:
    """[system, user] chat messages asking for {"reasoning", "suggestion"} for these variables."""
    b = _Builder(variables, examples, Path(root), value_chars)
    names = ", ".join(b.names[v.key] for v in b.variables)
    code, called = b.code()
    sections = [
        ("#Instruction", f"Change the values of the variables in #Variables ({names}) so that the outputs get "
                         f"better #Feedback on these {len(b.examples)} example(s) and on similar ones. Values longer "
                         f"than {value_chars} characters are shown cut ([truncated ...]); a new value you write must "
                         f"be complete."),
        ("#Code", code),
        ("#Definitions", b.definitions(called)),
        ("#Variables", "\n".join(b.variable(v) for v in b.variables)),
        ("#Constraints", "\n".join(b.constraint(v) for v in b.variables)),
        ("#Inputs", b.per_example(b.inputs)),
        ("#Others", b.per_example(b.others)),
        ("#Outputs", b.per_example(b.outputs)),
        ("#Feedback", _feedback(b.examples)),
    ]
    if memory:
        sections.append(("#Memory", "\n".join(f"- {m}" for m in memory)))
    if problems:
        sections.append(("#Problems with your previous reply",
                         "It could not be used:\n" + "\n".join(f"- {p}" for p in problems)
                         + "\nAnswer again with one JSON object that fixes these problems."))
    user = "\n\n".join(f"{title}\n{body if body else '(none)'}" for title, body in sections)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user + "\n\nYour reply (JSON):"}]


def _feedback(examples: Sequence[Example]) -> str:
    lines = [f"[example {x}] score {ex.score:g}: {ex.feedback}" for x, ex in enumerate(examples, 1)]
    if examples:
        lines.append(f"mean score {statistics.fmean(ex.score for ex in examples):.3g} over {len(examples)} "
                     f"example(s)")
    return "\n".join(lines)

"""`tracec show`: one self-contained HTML page (inline SVG, CSS and JS, nothing fetched) of a recorded graph.

Layout: one vertical lane per function; nodes keep their id order inside a lane. Ids are topological
(parents have smaller ids), so giving each node the first row below all of its parents and below the
previous node of its lane makes every edge point downward while lanes share rows. Every piece of
recorded text (values, code, names) is user data and goes through `html.escape`; the script never
builds markup from it."""

from __future__ import annotations

import argparse
import functools
import html
import importlib.resources
import json
import os
import string
from pathlib import Path

from tracec.errors import TracecError, UsageError
from tracec.fileio import write_atomic

MAX_DRAWN_NODES = 1500  # a browser stays responsive well past this; beyond it nobody reads the picture

LANE_W, BOX_X, BOX_W = 290, 22, 240       # lane width, box offset inside the lane, box width
BOX_H, ROW_H, TOP, LEFT = 66, 92, 14, 12  # box height, row pitch, space above the first row, page margin
HEADER_H = 18                              # coloured band at the top of a box
CODE_CHARS, HEAD_CHARS = 34, 30            # what fits a line of the box at the fonts below
FAR_ROWS = 4                               # edges spanning more rows are drawn faint until hovered

KINDS = {  # kind -> (band colour, box fill, label in the legend)
    "param": ("#c77c02", "#fff6dc", "param (trainable)"),
    "input": ("#2e7d32", "#eaf5ea", "input"),
    "op": ("#546e7a", "#ffffff", "operation"),
    "control": ("#7b1fa2", "#f5eafa", "control (condition)"),
    "return": ("#1565c0", "#e8f0fc", "return"),
    "error": ("#d32f2f", "#ffe5e5", "error"),
}
UNKNOWN_KIND = ("#757575", "#f4f4f4", "other")
DATA_COLOUR, CONTROL_COLOUR = "#37474f", "#8e24aa"


class GraphFileError(TracecError, ValueError):
    """A graph file that cannot be shown; the message is one line naming the file."""


def main(args: argparse.Namespace) -> int:
    """`tracec show FILE [-o OUT.html]`: prints the page's path."""
    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"{args.file}: no such file")
    target = Path(args.output) if args.output else source.with_suffix(".html")
    write_html(str(source), str(target))   # a GraphFileError names the file, on one line
    print(target)
    return 0


def write_html(graph_path: str, out_path: str) -> None:
    """Read a graph JSON written by `tracec run --graph` and write its HTML view atomically."""
    hint = "pass a file written by `tracec run --graph FILE`"
    try:
        with open(graph_path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise GraphFileError(f"{graph_path}: cannot read graph file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GraphFileError(f"{graph_path}: not a tracec graph (not UTF-8 text); {hint}") from None
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"{graph_path}:{exc.lineno}: not a tracec graph (invalid JSON: {exc.msg}); "
                             f"{hint}") from None
    try:
        page = render_html(graph, title=os.path.basename(graph_path))
    except ValueError as exc:
        raise GraphFileError(f"{graph_path}: {exc}; {hint}") from None
    write_atomic(out_path, page)


def render_html(graph: dict, *, title: str | None = None, max_nodes: int = MAX_DRAWN_NODES) -> str:
    """The whole page as a string. Raises ValueError when `graph` is not a version-1 tracec graph."""
    nodes = _checked_nodes(graph)
    drawn = nodes[:max_nodes]  # a prefix in id order is closed under parents: no dangling edges
    lanes, places = _layout(drawn)
    params = {p["node"]: p for p in _list(graph, "params") if isinstance(p, dict) and isinstance(p.get("node"), int)}
    outputs = {o for o in _list(graph, "outputs") if isinstance(o, int)}
    feedback: dict[object, list[dict]] = {}
    for fb in _list(graph, "feedback"):
        if isinstance(fb, dict) and isinstance(fb.get("node"), int):
            feedback.setdefault(fb["node"], []).append(fb)

    edges = _edges_svg(drawn, places)
    boxes = [_node_svg(n, places[n["id"]], params.get(n["id"]), n["id"] in outputs, feedback.get(n["id"], []))
             for n in drawn]
    rows = max((row for _, row in places.values()), default=-1) + 1
    width = LEFT * 2 + max(len(lanes), 1) * LANE_W
    height = TOP + rows * ROW_H
    lane_svg = [_lane_svg(i, height) for i in range(len(lanes))]
    # Lane titles are HTML so they can stick to the top of the scrolling canvas.
    titles = "".join(f'<div title="{_esc(name)}">{_esc(_short(name, 38))}</div>' for name in lanes)

    page_title = f"tracec graph — {title}" if title else "tracec graph"
    svg = (f'<svg id="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="execution graph">{_MARKERS}<g class="lanes">{"".join(lane_svg)}</g>'
           f'<g class="edges">{"".join(edges)}</g><g class="nodes">{"".join(boxes)}</g></svg>')
    css = string.Template(_asset("graph.css")).substitute(
        left=LEFT, lane_inner=LANE_W - 8, data_colour=DATA_COLOUR, control_colour=CONTROL_COLOUR)
    return string.Template(_asset("graph.html")).substitute(
        title=_esc(page_title), stats=_esc(_summary(nodes)), legend=_legend(), lanes=titles, width=width,
        notes="".join(f'<p class="note">{_esc(n)}</p>' for n in _notes(graph, nodes, len(drawn))),
        svg=svg, css=css, js=_asset("graph.js"))


@functools.lru_cache(maxsize=None)
def _asset(name: str) -> str:
    """The page's template, style and script: package data in tracec/assets/."""
    return importlib.resources.files("tracec").joinpath("assets", name).read_text(encoding="utf-8")


def _summary(nodes: list[dict]) -> str:
    """Counts over the whole graph, drawn or not."""
    functions = len({str(n.get("function") or "?") for n in nodes})
    data = sum(len(_links(n, "parents")) for n in nodes)
    control = sum(len(_links(n, "control")) for n in nodes)
    errors = sum(1 for n in nodes if n.get("kind") == "error")
    return (f"{len(nodes)} nodes · {functions} function(s) · {data} data edges · {control} control edges · "
            f"{errors} error(s)")


def _notes(graph: dict, nodes: list[dict], drawn: int) -> list[str]:
    notes = []
    if len(nodes) > drawn:
        hidden_errors = [n for n in nodes[drawn:] if n.get("kind") == "error"]
        extra = ""
        if hidden_errors:  # the usual reason to open a graph: say where the errors are even if not drawn
            first = "; ".join(f"#{n['id']} {_error_label(n)} at {n.get('file') or '?'}:{n.get('line') or '?'}"
                              for n in hidden_errors[:3])
            more = "; …" if len(hidden_errors) > 3 else ""
            extra = f", including {len(hidden_errors)} error node(s): {first}{more}"
        notes.append(f"Showing the first {drawn} of {len(nodes)} nodes; {len(nodes) - drawn} later nodes are "
                     f"not drawn{extra}.")
    if graph.get("truncated"):
        notes.append("The recording itself was truncated (node cap reached): later statements were not recorded.")
    if not nodes:
        notes.append("This graph has no nodes: nothing traced ran while recording.")
    return notes


def _checked_nodes(graph: object) -> list[dict]:
    if not isinstance(graph, dict):
        raise ValueError(f"not a tracec graph (top level is a JSON {type(graph).__name__}, expected an object)")
    if type(graph.get("version")) is not int or graph["version"] != 1:  # `true == 1` in Python
        raise ValueError(f"not a version-1 tracec graph (version is {_short(repr(graph.get('version')), 40)})")
    nodes = graph.get("nodes")
    if not isinstance(nodes, list):
        raise ValueError("not a version-1 tracec graph ('nodes' is missing or not a list)")
    seen = set()
    for i, node in enumerate(nodes):
        nid = node.get("id") if isinstance(node, dict) else None
        if not isinstance(nid, int) or isinstance(nid, bool) or nid in seen:
            raise ValueError(f"not a version-1 tracec graph (nodes[{i}] has no unique integer 'id')")
        seen.add(nid)
    return sorted(nodes, key=lambda n: n["id"])


def _list(record: dict, key: str) -> list:
    """An optional list field; anything else (missing, null, wrong type) reads as empty."""
    value = record.get(key)
    return value if isinstance(value, list) else []


def _links(node: dict, key: str) -> list[int]:
    return [p for p in _list(node, key) if isinstance(p, int) and not isinstance(p, bool)]


def _layout(nodes: list[dict]) -> tuple[list[str], dict[int, tuple[int, int]]]:
    """Lanes in order of first appearance; node id -> (lane index, row)."""
    lanes: dict[str, int] = {}
    lane_next_row: list[int] = []
    places: dict[int, tuple[int, int]] = {}
    for node in nodes:
        function = str(node.get("function") or "?")
        if function not in lanes:
            lanes[function] = len(lanes)
            lane_next_row.append(0)
        lane = lanes[function]
        row = lane_next_row[lane]
        for pid in _links(node, "parents") + _links(node, "control"):
            if pid in places:
                row = max(row, places[pid][1] + 1)
        places[node["id"]] = (lane, row)
        lane_next_row[lane] = row + 1
    # Lanes holding only parameters (module-level constants) go first: they feed everything else.
    only_params = {lane for lane in range(len(lanes))}
    for node in nodes:
        if node.get("kind") != "param":
            only_params.discard(places[node["id"]][0])
    order = sorted(range(len(lanes)), key=lambda lane: (lane not in only_params, lane))
    new_index = {old: new for new, old in enumerate(order)}
    names = list(lanes)
    return [names[old] for old in order], {nid: (new_index[lane], row) for nid, (lane, row) in places.items()}


def _box_xy(place: tuple[int, int]) -> tuple[int, int]:
    lane, row = place
    return LEFT + lane * LANE_W + BOX_X, TOP + row * ROW_H


def _edge_path(src: tuple[int, int], dst: tuple[int, int], kind: str, slot: int) -> str:
    """Routes stay out of boxes: rows of boxes are separated by empty bands and lanes by empty gutters.
    Next-row edges cross the band between the rows; same-lane edges skipping rows bend around the boxes
    in between (control on the left, data on the right); longer cross-lane edges leave by the side, run
    down the gutter and along the band above the child. `slot` (the parent's id) picks one of a few parallel tracks."""
    (sx, sy), (dx, dy) = _box_xy(src), _box_xy(dst)
    shift = 16 if kind == "control" else 0  # control edges meet boxes off-centre: no overlap with data
    gap = dst[1] - src[1]
    if src[0] == dst[0] and (kind == "control" or gap > 1):
        y1, y2 = sy + BOX_H / 2 + shift, dy + BOX_H / 2 - shift / 2
        if kind == "control":
            cx = sx - min(14 + 3 * gap + 2 * (slot % 3), BOX_X + 2)
            return f"M{sx},{y1} C{cx},{y1} {cx},{y2} {dx - 3},{y2}"
        cx = sx + BOX_W + min(14 + 3 * gap + 2 * (slot % 3), LANE_W - BOX_X - BOX_W + 2)
        return f"M{sx + BOX_W},{y1} C{cx},{y1} {cx},{y2} {dx + BOX_W + 3},{y2}"
    xt, yt = dx + BOX_W / 2 + shift, dy - 3
    if gap == 1:
        x1, y1 = sx + BOX_W / 2 + shift, sy + BOX_H
        bend = (yt - y1) * 0.6
        return f"M{x1},{y1} C{x1},{y1 + bend} {xt},{yt - bend} {xt},{yt}"
    # Edges from one parent share one exit and one gutter track (a trunk with branches, not a bundle of
    # parallel lines); different parents get different tracks.
    right = dst[0] > src[0]
    step = 1 if right else -1
    x1, y1 = (sx + BOX_W if right else sx), sy + BOX_H / 2 + shift
    gx = LEFT + (src[0] + (1 if right else 0)) * LANE_W + step * (4 * (slot % 4) - 6)
    ym, r = dy - (ROW_H - BOX_H) / 2 + 3 * (slot % 3) - 3, 6
    turn = 1 if xt > gx else -1
    return (f"M{x1},{y1} H{gx - step * r} Q{gx},{y1} {gx},{y1 + r} V{ym - r} Q{gx},{ym} {gx + turn * r},{ym} "
            f"H{xt - turn * r} Q{xt},{ym} {xt},{ym + r} V{yt}")


def _edges_svg(nodes: list[dict], places: dict) -> list[str]:
    out = []
    for node in nodes:
        dst = node["id"]
        for kind, key in (("data", "parents"), ("control", "control")):
            for src in _links(node, key):
                if src not in places:
                    continue  # a parent outside the drawn prefix or a malformed link: nothing to point at
                path = _edge_path(places[src], places[dst], kind, slot=src)
                far = " far" if places[dst][1] - places[src][1] > FAR_ROWS else ""
                out.append(f'<path class="edge {kind}{far}" data-from="{src}" data-to="{dst}" d="{path}" '
                           f'marker-end="url(#arrow-{kind})"/>')
    return out


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line in the box; the tooltip keeps the original
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_svg(node: dict, place: tuple[int, int], param: dict | None, is_output: bool,
              feedback: list[dict]) -> str:
    nid, kind = node["id"], str(node.get("kind") or "?")
    band, fill, _ = KINDS.get(kind, UNKNOWN_KIND)
    x, y = _box_xy(place)
    name, code = str(node.get("name") or ""), str(node.get("code") or "")
    value, where = str(node.get("value", "")), f"{node.get('file') or '?'}:{node.get('line') or '?'}"
    error = node.get("error") if isinstance(node.get("error"), dict) else None
    head = kind if name in ("", kind) else f"{kind} {name}"
    if error:
        head = _error_label(node)
    if param:
        head = f"param {param.get('key') or name}"
    repeats = node.get("repeats") if isinstance(node.get("repeats"), int) else 0
    badges = (" · output" if is_output else "") + (f" ×{repeats + 1}" if repeats > 0 else "")
    value_line = str(error.get("message", "")) if error else f"= {value}"

    tip = [f"#{nid} {kind} {name}".rstrip() + (" (output)" if is_output else ""),
           f"function: {node.get('function') or '?'}", f"at {where}", f"code: {code}", f"value: {value}"]
    if param:
        tip.append(f"trainable: {param.get('key')} ({param.get('kind')})")
    if error:
        tip.append(f"error: {error.get('type')}: {error.get('message')}")
        tip.extend(f"  {frame}" for frame in _list(error, "traceback"))
    if repeats > 0:
        tip.append(f"repeated {repeats} more time(s); later iterations summarised")
    tip.append("data parents: " + (", ".join(map(str, _links(node, "parents"))) or "none"))
    tip.append("control parents: " + (", ".join(map(str, _links(node, "control"))) or "none"))
    for fb in feedback:
        score = "" if fb.get("score") is None else f" (score {fb.get('score')})"
        tip.append(f"feedback{score}: {fb.get('text')}")

    classes = (f"node kind-{kind if kind in KINDS else 'other'}" + (" output" if is_output else "")
               + (" trainable" if param else ""))
    return (f'<g class="{classes}" data-id="{nid}" tabindex="0"><title>{_esc(chr(10).join(tip))}</title>'
            f'<rect class="box" x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="{band}"/>'
            f'<path d="M{x},{y + HEADER_H} v{6 - HEADER_H} a6,6 0 0 1 6,-6 h{BOX_W - 12} a6,6 0 0 1 6,6 '
            f'v{HEADER_H - 6} z" fill="{band}"/>'
            f'<text class="head" x="{x + 7}" y="{y + 13}">{_esc(_short(head, HEAD_CHARS - len(badges)))}'
            f'<tspan class="badge">{_esc(badges)}</tspan></text>'
            f'<text class="nid" x="{x + BOX_W - 6}" y="{y + 13}">#{nid}</text>'
            f'<text class="code" x="{x + 7}" y="{y + 32}">{_esc(_short(code, CODE_CHARS))}</text>'
            f'<text class="value" x="{x + 7}" y="{y + 47}">{_esc(_short(value_line, CODE_CHARS))}</text>'
            f'<text class="where" x="{x + 7}" y="{y + 61}">{_esc(_short(where, CODE_CHARS + 4))}</text></g>')


def _error_label(node: dict) -> str:
    error = node.get("error") if isinstance(node.get("error"), dict) else {}
    etype, name = str(error.get("type") or ""), str(node.get("name") or "")
    return f"error {etype}".rstrip() + (f" in {name}" if name and name != etype else "")


def _lane_svg(index: int, height: int) -> str:
    return f'<rect class="lane" x="{LEFT + index * LANE_W + 4}" y="-8" width="{LANE_W - 8}" height="{height}" rx="8"/>'


def _legend() -> str:
    kinds = "".join(f'<span class="key"><i style="background:{band}"></i>{label}</span>'
                    for band, _, label in KINDS.values())
    edges = "".join(f'<span class="key"><svg width="34" height="10"><line x1="1" y1="5" x2="33" y2="5" '
                    f'class="edge {k}"/></svg>{label}</span>'
                    for k, label in (("data", "data edge (value used)"), ("control", "control edge (ran under)")))
    return kinds + edges


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


_MARKERS = "<defs>" + "".join(
    f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    f'orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" fill="{colour}"/></marker>'
    for kind, colour in (("data", DATA_COLOUR), ("control", CONTROL_COLOUR))) + "</defs>"


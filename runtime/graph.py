"""The recorded graph: nodes, parameters, feedback and the backward pass. No recording logic here."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass


class Node:
    __slots__ = ("id", "kind", "name", "code", "value", "file", "line", "function", "parents", "control",
                 "error", "repeats")

    def __init__(self, id, kind, name, code, value, file, line, function, parents, control, error=None):
        self.id, self.kind, self.name, self.code, self.value = id, kind, name, code, value
        self.file, self.line, self.function = file, line, function
        self.parents, self.control, self.error, self.repeats = parents, control, error, 0

    def to_json(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "name": self.name, "code": self.code, "value": self.value,
               "file": self.file, "line": self.line, "function": self.function,
               "parents": list(self.parents), "control": list(self.control)}
        if self.error is not None:
            out["error"] = self.error
        if self.repeats:
            out["repeats"] = self.repeats
        return out

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.kind}, {self.name!r}, line={self.line}, value={self.value})"


@dataclass(frozen=True)
class Param:
    key: str        # "module:NAME" for values, "module:qualname" for trainable code
    kind: str       # "value" | "code"
    node: int
    file: str
    line: int


@dataclass(frozen=True)
class Feedback:
    node: int
    text: str
    score: float | None


@dataclass(frozen=True)
class ParamFeedback:
    """What backward() hands the optimizer for one parameter."""
    param: Param
    nodes: tuple[int, ...]          # minimal subgraph: on some path from the parameter to a fed-back node
    feedback: tuple[Feedback, ...]  # the feedback this parameter reaches


class Graph:
    """Nodes in creation order; a node's parents always have smaller ids, so id order is topological."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.params: list[Param] = []
        self.output_ids: list[int] = []
        self.feedbacks: list[Feedback] = []
        self.truncated = False

    @property
    def outputs(self) -> list[Node]:
        return [self.nodes[i] for i in self.output_ids]

    def feedback(self, node_or_output_index: Node | int, text: str, score: float | None = None) -> Feedback:
        """Attach feedback to a node, or to an output by its index in `.outputs` (negative allowed)."""
        if isinstance(node_or_output_index, Node):
            nid = node_or_output_index.id
        elif isinstance(node_or_output_index, int) and not isinstance(node_or_output_index, bool):
            try:
                nid = self.output_ids[node_or_output_index]
            except IndexError:
                raise IndexError(f"feedback: output index {node_or_output_index} out of range: the "
                                 f"recording has {len(self.output_ids)} outputs") from None
        else:
            raise TypeError("feedback: pass a Node from run.nodes/run.outputs or an output index")
        if not 0 <= nid < len(self.nodes) or self.nodes[nid].id != nid:
            raise ValueError(f"feedback: node {nid} is not part of this recording")
        fb = Feedback(nid, str(text), None if score is None else float(score))
        self.feedbacks.append(fb)
        return fb

    def backward(self) -> dict[str, ParamFeedback]:
        """For each parameter the feedback reaches: the nodes on paths from it to fed-back nodes.

        Two sweeps over the nodes in id order (topological): backward marks which feedback reaches each
        node, forward marks which parameters each node depends on; bit sets keep both linear in V+E."""
        nodes = self.nodes
        reached_by = [0] * len(nodes)  # bit i: feedback i depends on this node
        for i, fb in enumerate(self.feedbacks):
            reached_by[fb.node] |= 1 << i
        for node in reversed(nodes):
            mask = reached_by[node.id]
            if mask:
                for p in node.parents:
                    reached_by[p] |= mask
                for p in node.control:
                    reached_by[p] |= mask
        depends_on = [0] * len(nodes)  # bit j: this node depends on parameter j
        for j, prm in enumerate(self.params):
            depends_on[prm.node] |= 1 << j
        for node in nodes:
            mask = depends_on[node.id]
            for p in node.parents:
                mask |= depends_on[p]
            for p in node.control:
                mask |= depends_on[p]
            depends_on[node.id] = mask
        members: dict[int, list[int]] = {}
        for nid, mask in enumerate(depends_on):
            if mask and reached_by[nid]:
                while mask:
                    low = mask & -mask
                    members.setdefault(low.bit_length() - 1, []).append(nid)
                    mask ^= low
        result = {}
        for j, nids in members.items():
            prm = self.params[j]
            fb_mask = reached_by[prm.node]
            fbs = tuple(fb for i, fb in enumerate(self.feedbacks) if fb_mask >> i & 1)
            result[prm.key] = ParamFeedback(prm, tuple(nids), fbs)
        return result

    @classmethod
    def from_json(cls, data: dict) -> "Graph":
        """The graph a `to_json()` dict describes (feedback included), e.g. one read back from another
        process; backward() works on it as on the recording itself."""
        if data.get("version") != 1:
            raise ValueError(f"graph JSON version {data.get('version')!r}: this tracec reads version 1")
        graph = cls()
        for n in data["nodes"]:
            node = Node(n["id"], n["kind"], n["name"], n["code"], n["value"], n["file"], n["line"],
                        n["function"], tuple(n["parents"]), tuple(n["control"]), n.get("error"))
            node.repeats = n.get("repeats", 0)
            graph.nodes.append(node)
        graph.params = [Param(p["key"], p["kind"], p["node"], p["file"], p["line"]) for p in data["params"]]
        graph.output_ids = list(data["outputs"])
        graph.truncated = bool(data.get("truncated", False))
        graph.feedbacks = [Feedback(f["node"], f["text"], f["score"]) for f in data.get("feedback", ())]
        return graph

    def to_json(self) -> dict:
        return {"version": 1,
                "nodes": [n.to_json() for n in self.nodes],
                "params": [{"key": p.key, "kind": p.kind, "node": p.node, "file": p.file, "line": p.line}
                           for p in self.params],
                "outputs": list(self.output_ids),
                "truncated": self.truncated,
                "feedback": [{"node": f.node, "text": f.text, "score": f.score} for f in self.feedbacks]}


def write_graph(graph: Graph, path: str) -> str:
    """Write the graph JSON atomically: a reader never sees a half-written file."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tracec-graph-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(graph.to_json(), fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path

"""Time of Recorder/Graph.backward() on graphs of 10^3 .. 10^6 nodes: is it linear?

Two kinds of graph:
  synthetic  built with the public runtime classes (tracec.runtime.Graph, Node, Param), no recording:
             "chain"  every node depends on the previous one (the longest possible paths)
             "dag"    every node has 2 data parents drawn from the previous 50 nodes and every 10th
                      a control parent; 8 parameters spread over the graph; feedback on 3 late nodes
  recorded   a real recording of instrumented code (a param threaded through a loop of traced calls),
             sized to the target by measuring nodes per loop iteration first; 10^3..10^5 by default
             because recording itself costs microseconds per node (--recorded-max 1000000 for 10^6)
Reported: median backward() time, ns per node and per edge, and ns/node relative to the smallest size
(stays near 1.0 when backward is linear).

Run: python benchmarks/bench_backward.py [--repeat 5] [--quick] [--recorded-max N]"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import textwrap

from _timing import (
    add_clock_argument,
    clock_name,
    fmt_ns,
    load_instrumented,
    measure,
    print_table,
    set_clock,
    time_once,
    write_results,
)

import tracec.runtime as rt
from tracec.runtime import Graph, Node, Param

SIZES = (1_000, 10_000, 100_000, 1_000_000)


# -- synthetic graphs -------------------------------------------------------------------------------
def _node(nid: int, parents: list[int], control: list[int]) -> Node:
    return Node(nid, "op", f"v{nid % 97}", "v = f(u)", "0", "bench/synthetic.py", 1 + nid % 500,
                "bench.synthetic", parents, control)


def chain_graph(size: int) -> Graph:
    graph = Graph()
    graph.nodes = [_node(0, [], [])] + [_node(i, [i - 1], []) for i in range(1, size)]
    graph.params = [Param("bench:START", "value", 0, "bench/synthetic.py", 1)]
    graph.feedback(graph.nodes[-1], "chain end is wrong", score=0.0)
    return graph


def dag_graph(size: int, seed: int = 1) -> Graph:
    rnd = random.Random(seed)
    graph = Graph()
    nodes = []
    for i in range(size):
        if i == 0:
            parents = []
        else:
            low = max(0, i - 50)   # a short window: the fed-back nodes reach (almost) every node
            parents = sorted({rnd.randrange(low, i), rnd.randrange(low, i)})
        control = [rnd.randrange(max(0, i - 50), i)] if i and i % 10 == 0 else []
        nodes.append(_node(i, parents, control))
    graph.nodes = nodes
    graph.params = [Param(f"bench:P{j}", "value", j * size // 8, "bench/synthetic.py", j + 1) for j in range(8)]
    for nid in (size - 1, size - 2, size * 3 // 4):
        graph.feedback(graph.nodes[nid], f"feedback on node {nid}", score=0.0)
    return graph


# -- recorded graphs --------------------------------------------------------------------------------
WORKLOAD = textwrap.dedent("""
    import tracec

    SEED = tracec.param(7)

    def step(acc, k):
        y = acc + k
        z = y * 31 % 1000003
        return z

    def block(acc, n):
        for i in range(n):
            acc = step(acc, i + SEED)
        return acc

    def run(blocks, n):
        acc = SEED
        for b in range(blocks):
            acc = block(acc, n)
        return acc
    """)
BLOCK = 500   # iterations per traced `block` call: below the runtime's per-frame loop summary limit


def load_workload():
    return load_instrumented(WORKLOAD, path="bench/backward_workload.py", module="backward_workload")["run"]


def recorded_graph(run, size: int) -> tuple[Graph, float]:
    """A recording of about `size` nodes with feedback on its output, and how long recording took."""
    with rt.record(max_nodes=10_000) as probe:
        run(1, 100)
    per_iteration = len(probe.nodes) / 100
    iterations = max(1, round(size / per_iteration))
    n = min(BLOCK, iterations)
    blocks = max(1, math.ceil(iterations / n))
    recorder = rt.start(max_nodes=2 * size + 10_000)
    try:
        elapsed, _ = time_once(lambda: run(blocks, n))
    finally:
        rt.stop(recorder)
    if recorder.truncated or not recorder.output_ids:
        raise SystemExit(f"bench_backward: the recording of ~{size} nodes was truncated")
    recorder.feedback(-1, "the result is too large", score=0.0)
    return recorder, elapsed


def time_backward(graph: Graph, repeat: int) -> dict:
    result = graph.backward()
    if not result:
        raise SystemExit("bench_backward: backward() reached no parameter; the graph is not what we meant")
    reached = max(len(pf.nodes) for pf in result.values())
    edges = sum(len(n.parents) + len(n.control) for n in graph.nodes)
    t = measure(graph.backward, repeat=repeat, min_sample_s=0.2)
    return {"nodes": len(graph.nodes), "edges": edges, "params_reached": len(result),
            "largest_subgraph": reached, "backward": t.to_json(),
            "ns_per_node": t.median / len(graph.nodes) * 1e9, "ns_per_edge": t.median / max(edges, 1) * 1e9}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per timing (median is reported)")
    parser.add_argument("--quick", action="store_true", help="3 samples, sizes up to 10^5: a smoke run")
    parser.add_argument("--recorded-max", type=int, default=100_000,
                        help="largest recorded graph (default 10^5; synthetic graphs always go to 10^6)")
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    set_clock(args.clock)
    repeat = 3 if args.quick else args.repeat
    sizes = SIZES[:-1] if args.quick else SIZES

    rows, results = [], []
    for kind, build in (("chain", chain_graph), ("dag", dag_graph)):
        base = None
        for size in sizes:
            graph = build(size)
            r = {"graph": kind, "size": size, **time_backward(graph, repeat)}
            del graph
            gc.collect()
            base = base or r["ns_per_node"]
            r["ns_per_node_vs_smallest"] = r["ns_per_node"] / base
            results.append(r)
    run = load_workload()
    base = None
    for size in [s for s in sizes if s <= args.recorded_max]:
        graph, record_s = recorded_graph(run, size)
        r = {"graph": "recorded", "size": size, "record_s": record_s,
             "record_ns_per_node": record_s / len(graph.nodes) * 1e9, **time_backward(graph, repeat)}
        del graph
        gc.collect()
        base = base or r["ns_per_node"]
        r["ns_per_node_vs_smallest"] = r["ns_per_node"] / base
        results.append(r)

    for r in results:
        rows.append([r["graph"], f"{r['nodes']:,}", f"{r['edges']:,}", r["params_reached"],
                     f"{r['largest_subgraph']:,}", fmt_ns(r["backward"]["median_s"]), f"{r['ns_per_node']:.0f}",
                     f"{r['ns_per_edge']:.0f}", f"{r['ns_per_node_vs_smallest']:.2f}"])
    print_table(f"Graph.backward() ({clock_name()} clock, median of {repeat})",
                ["graph", "nodes", "edges", "params", "subgraph", "backward", "ns/node", "ns/edge",
                 "ns/node vs smallest"], rows)
    recorded = [r for r in results if r["graph"] == "recorded"]
    if recorded:
        print("\nrecording those graphs took " + ", ".join(
            f"{r['nodes']:,} nodes: {fmt_ns(r['record_s'])} ({r['record_ns_per_node']:,.0f} ns/node)"
            for r in recorded) + "; backward is a small fraction of recording")
    write_results("bench_backward", {"repeat": repeat, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

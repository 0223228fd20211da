"""Per-statement cost of tracec's instrumentation: recording off and recording on, against plain Python.

Each workload is one small module, compiled twice from the same source: plain, and instrumented with
`instrument_source(..., all_functions=True)`. Three timings per workload, all in this process:
  plain      the original code
  off        the instrumented code with no recording active (the hooks are pass-through functions)
  recording  the instrumented code inside `tracec.runtime.record()` (a fresh recording per call, so the
             cost of starting and stopping one is included; it is also reported on its own)
Statements are counted independently of tracec: `sys.settrace` line events while the plain code runs once
(every simple statement and every compound-statement header is one event). Node counts come from the
recording (a node summarised as a loop repeat counts once per repeat).

Run: python benchmarks/bench_runtime.py [--repeat 7] [--quick]"""

from __future__ import annotations

import argparse
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
    write_results,
)

import tracec.runtime as rt

WORKLOADS = {
    "arithmetic": ("""
        def arithmetic(n):
            total = 0
            for i in range(n):
                a = i * 3
                b = a + 7
                c = b % 11
                total = total + c
            return total
        """, "arithmetic", 200),
    "strings": ("""
        def strings(words):
            out = ""
            for w in words:
                upper = w.upper()
                out = out + upper + ","
            text = out.strip(",")
            return text
        """, "strings", [f"word{i}" for i in range(200)]),
    "calls": ("""
        def add(a, b):
            return a + b

        def calls(n):
            acc = 0
            for i in range(n):
                acc = add(acc, i)
            return acc
        """, "calls", 200),
    "agent": ("""
        import tracec

        PROMPT = tracec.param("Answer briefly.")

        def fake_llm(prompt, question):
            if "capital" in question:
                return "The answer is Paris"
            return "sorry, I cannot answer " + question

        def parse(reply):
            words = reply.strip().split()
            return words[-1].lower()

        def solve(question):
            reply = fake_llm(PROMPT, question)
            if reply.startswith("sorry"):
                reply = fake_llm(PROMPT + " Never apologise.", "capital " + question)
            answer = parse(reply)
            return answer

        def agent(questions):
            answers = []
            for q in questions:
                answers.append(solve(q))
            return answers
        """, "agent", [("capital of France?" if i % 2 else f"question {i}") for i in range(50)]),
}


def compile_plain(name: str, source: str) -> dict:
    namespace = {"__name__": f"bench_{name}"}
    exec(compile(source, f"<plain {name}>", "exec"), namespace)
    return namespace


def compile_instrumented(name: str, source: str) -> dict:
    return load_instrumented(source, path=f"bench/{name}.py", module=f"bench_{name}")


def count_statements(func, arg, filename: str) -> int:
    """Line events inside the workload's own code objects while it runs once (plain version)."""
    count = 0

    def tracer(frame, event, _arg):
        nonlocal count
        if frame.f_code.co_filename != filename:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        func(arg)
    finally:
        sys.settrace(None)
    return count


def recorded_nodes(func, arg) -> tuple[int, int]:
    """(nodes stored, statement executions recorded incl. summarised loop repeats) for one call."""
    with rt.record() as run:
        func(arg)
    return len(run.nodes), sum(1 + n.repeats for n in run.nodes)


def bench_workload(name: str, repeat: int) -> dict:
    source, entry, arg = WORKLOADS[name]
    source = textwrap.dedent(source)
    plain = compile_plain(name, source)[entry]
    instrumented = compile_instrumented(name, source)[entry]
    expected = plain(arg)
    if instrumented(arg) != expected:
        raise SystemExit(f"bench_runtime: instrumented {name} returned a different result")
    statements = count_statements(plain, arg, f"<plain {name}>")
    nodes, node_events = recorded_nodes(instrumented, arg)

    def recording():
        with rt.record():
            instrumented(arg)

    t_plain = measure(lambda: plain(arg), repeat=repeat)
    t_off = measure(lambda: instrumented(arg), repeat=repeat)
    t_rec = measure(recording, repeat=repeat)
    return {
        "workload": name, "statements": statements, "nodes": nodes, "node_events": node_events,
        "plain": t_plain.to_json(), "off": t_off.to_json(), "recording": t_rec.to_json(),
        "ns_per_statement": {"plain": t_plain.median / statements * 1e9,
                             "off": t_off.median / statements * 1e9,
                             "recording": t_rec.median / statements * 1e9},
        "added_ns_per_statement": {"off": (t_off.median - t_plain.median) / statements * 1e9,
                                   "recording": (t_rec.median - t_plain.median) / statements * 1e9},
        "ratio_off_vs_plain": t_off.median / t_plain.median,
        "ratio_recording_vs_plain": t_rec.median / t_plain.median,
        "spread": {"plain": t_plain.spread, "off": t_off.spread, "recording": t_rec.spread},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="samples per timing (median is reported)")
    parser.add_argument("--quick", action="store_true", help="3 samples: a smoke run, not a measurement")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS),
                        help="run only this workload (repeatable)")
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    set_clock(args.clock)
    repeat = 3 if args.quick else args.repeat

    empty = measure(lambda: rt.stop(rt.start()), repeat=repeat)
    results = [bench_workload(name, repeat) for name in (args.workload or WORKLOADS)]

    rows = []
    for r in results:
        ns = r["ns_per_statement"]
        rows.append([r["workload"], r["statements"], r["nodes"], f"{ns['plain']:.0f}", f"{ns['off']:.0f}",
                     f"{ns['recording']:.0f}", f"{r['added_ns_per_statement']['recording']:.0f}",
                     f"{r['ratio_off_vs_plain']:.2f}x", f"{r['ratio_recording_vs_plain']:.1f}x"])
    print_table(f"tracec runtime cost per executed statement ({clock_name()} clock, median of {repeat})",
                ["workload", "stmts", "nodes", "plain ns/st", "off ns/st", "rec ns/st", "rec +ns/st",
                 "off/plain", "rec/plain"], rows)
    print(f"\nstarting + stopping an empty recording: {fmt_ns(empty.median)} (included in 'rec')")
    write_results("bench_runtime", {"repeat": repeat, "empty_recording_s": empty.median, "workloads": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

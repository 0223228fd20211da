"""tracec against Microsoft Trace (trace-opt, `import opto`) on the same small workflow.

The workflow: a trainable prompt, a deterministic fake "LLM", an `if` that retries with a longer prompt
when the reply apologises, a split/index on the reply, and a trainable helper that cleans the answer.
It exists three times below, with the same logic:
  PLAIN   ordinary Python: the baseline, measured in each process that measures a framework
  TRACEC  tracec annotations (`tracec.param`, `@tracec.trace`, `@tracec.trainable`), instrumented
  TRACE   Trace primitives (`node(..., trainable=True)`, `@bundle`), nodes flow through the code
One "run" answers all QUESTIONS under recording (tracec: inside `record()`; Trace records always, its
global graph is cleared first). Reported per framework: median time per run, ratio to plain in the same
process, time for run + feedback + backward, nodes created, nodes the output depends on, and whether the
output's recorded dependencies include the `if` condition (control dependence) and the prompt.

trace-opt is a benchmark-only dependency (benchmarks/requirements.txt). When `opto` is not importable
here, the Trace side runs in the interpreter named by $TRACE_OPT_PYTHON or benchmarks/.work/venv-trace
(create it with: python -m venv --system-site-packages benchmarks/.work/venv-trace &&
benchmarks/.work/venv-trace/bin/pip install -r benchmarks/requirements.txt); if neither works the
reason is reported and only the tracec side is measured.

Run: python benchmarks/bench_trace_compare.py [--repeat 7] [--quick]"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

from _timing import (
    HERE,
    add_clock_argument,
    clock_name,
    fmt_ns,
    load_instrumented,
    measure,
    print_table,
    set_clock,
    write_results,
)

WORK_DIR = os.path.join(HERE, ".work")
QUESTIONS = ["What is the capital of France?", "Which is the largest planet?",
             "Capital of Italy?", "Who wrote Hamlet?"]
BRANCH_QUESTION = 1          # QUESTIONS[1] makes the fake LLM apologise, so the `if` branch runs
IF_CODE = 'if "sorry" in reply:'

FAKE_LLM_BODY = '''
    """A deterministic stand-in for an LLM call: apologises unless told not to or asked a capital."""
    if "Never apologise" not in prompt and "capital" not in question.lower():
        return "sorry, I am not sure."
    return "The answer is " + question.split()[-1].strip("?") + "."
'''
CLEAN_BODY = '''
    """The reply's last word, lower case, without punctuation."""
    return reply.strip().strip(".").lower()
'''
SOLVE_BODY = '''
    reply = fake_llm(PROMPT, question)
    if "sorry" in reply:
        reply = fake_llm(PROMPT + " Never apologise.", question)
    words = reply.split()
    answer = clean(words[-1])
    return answer
'''

PLAIN = f'''
PROMPT = "Answer in one word."

def fake_llm(prompt, question):{FAKE_LLM_BODY}
def clean(reply):{CLEAN_BODY}
def solve(question):{SOLVE_BODY}'''

TRACEC = f'''import tracec

PROMPT = tracec.param("Answer in one word.", doc="system prompt")

def fake_llm(prompt, question):{FAKE_LLM_BODY}
@tracec.trainable
def clean(reply):{CLEAN_BODY}
@tracec.trace
def solve(question):{SOLVE_BODY}'''

TRACE = f'''from opto.trace import bundle, node

PROMPT = node("Answer in one word.", trainable=True, description="system prompt")

@bundle()
def fake_llm(prompt, question):{FAKE_LLM_BODY}
@bundle(trainable=True)
def clean(reply):{CLEAN_BODY}
def solve(question):
    question = node(question)  # the input, one node shared by both calls{SOLVE_BODY}'''


def load_module(name: str, source: str):
    """Import `source` from a real file: Trace's @bundle reads its function's source with inspect."""
    os.makedirs(WORK_DIR, exist_ok=True)
    path = os.path.join(WORK_DIR, f"{name}.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plain_answers(repeat: int) -> tuple[list, object]:
    solve = load_module("workflow_plain", PLAIN).solve
    return [solve(q) for q in QUESTIONS], measure(lambda: [solve(q) for q in QUESTIONS], repeat=repeat)


def ancestors(start, parents_of) -> set:
    seen, stack = set(), [start]
    while stack:
        item = stack.pop()
        if item not in seen:
            seen.add(item)
            stack.extend(parents_of(item))
    return seen


# -- tracec -----------------------------------------------------------------------------------------
def tracec_side(repeat: int) -> dict:
    import tracec.runtime as rt

    expected, t_plain = plain_answers(repeat)
    namespace = load_instrumented(TRACEC, path="bench/workflow_tracec.py", module="workflow_tracec",
                                  all_functions=False)
    solve = namespace["solve"]

    def run():
        with rt.record() as rec:
            answers = [solve(q) for q in QUESTIONS]
        return rec, answers

    def run_backward():
        rec, _ = run()
        rec.feedback(-1, "expected a different answer", score=0.0)
        rec.backward()

    rec, answers = run()
    if answers != expected:
        raise SystemExit(f"bench_trace_compare: tracec workflow answered {answers}, plain {expected}")
    nodes = rec.nodes
    out = rec.output_ids[BRANCH_QUESTION]
    deps = ancestors(out, lambda i: list(nodes[i].parents) + list(nodes[i].control))
    data_deps = ancestors(out, lambda i: nodes[i].parents)
    if_nodes = {n.id for n in nodes if n.kind == "control" and n.code.strip() == IF_CODE}
    prompt_nodes = {p.node for p in rec.params if p.key.endswith(":PROMPT")}
    t_run = measure(lambda: run(), repeat=repeat)
    t_backward = measure(run_backward, repeat=repeat)
    return {"framework": "tracec", "available": True, "answers": answers,
            "plain": t_plain.to_json(), "run": t_run.to_json(), "run_backward": t_backward.to_json(),
            "ratio_vs_plain": t_run.median / t_plain.median,
            "nodes_per_run": len(nodes), "nodes_per_question": len(nodes) / len(QUESTIONS),
            "output_dependencies": len(deps), "output_data_dependencies": len(data_deps),
            "records_if_condition": bool(if_nodes), "output_depends_on_if": bool(if_nodes & deps),
            "output_depends_on_prompt": bool(prompt_nodes & deps)}


# -- Microsoft Trace ----------------------------------------------------------------------------------
def trace_side(repeat: int) -> dict:
    import opto
    from opto.trace import GRAPH

    expected, t_plain = plain_answers(repeat)
    workflow = load_module("workflow_trace", TRACE)
    trainables = [workflow.PROMPT, workflow.clean.parameter]

    def run():
        GRAPH.clear()  # Trace's graph is global and grows forever otherwise
        return [workflow.solve(q) for q in QUESTIONS]

    def run_backward():
        for p in trainables:
            p.zero_feedback()
        outputs = run()
        outputs[-1].backward("expected a different answer", visualize=False)

    outputs = run()
    answers = [o.data for o in outputs]
    if answers != expected:
        raise SystemExit(f"bench_trace_compare: Trace workflow answered {answers}, plain {expected}")
    created = len(GRAPH)   # nodes registered during the run (module-level parameters were made before)
    deps = ancestors(outputs[BRANCH_QUESTION], lambda n: n.parents)
    in_nodes = [n for n in GRAPH._nodes.get("in_", [])]  # what `"sorry" in reply` produced
    t_run = measure(run, repeat=repeat)
    t_backward = measure(run_backward, repeat=repeat)
    version = getattr(opto, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version
        version = dist_version("trace-opt")
    return {"framework": "trace-opt", "available": True, "version": version, "python": sys.executable,
            "answers": answers, "plain": t_plain.to_json(), "run": t_run.to_json(),
            "run_backward": t_backward.to_json(), "ratio_vs_plain": t_run.median / t_plain.median,
            "nodes_per_run": created, "nodes_per_question": created / len(QUESTIONS),
            "output_dependencies": len(deps), "output_data_dependencies": len(deps),
            "records_if_condition": bool(in_nodes),
            "output_depends_on_if": any(n in deps for n in in_nodes),
            "output_depends_on_prompt": workflow.PROMPT in deps}


def trace_python() -> str | None:
    explicit = os.environ.get("TRACE_OPT_PYTHON")
    if explicit:
        return explicit
    venv = os.path.join(WORK_DIR, "venv-trace", "bin", "python")
    return venv if os.path.exists(venv) else None


def measure_trace(repeat: int) -> dict:
    """In this process when opto imports here; otherwise in the trace-opt interpreter; else say why."""
    try:
        import opto.trace  # noqa: F401
        return trace_side(repeat)
    except ImportError as exc:
        local_error = f"{type(exc).__name__}: {exc}"
    python = trace_python()
    if python is None:
        return {"framework": "trace-opt", "available": False,
                "reason": f"`import opto.trace` failed here ({local_error}) and no trace-opt interpreter was "
                          f"found ($TRACE_OPT_PYTHON unset, no benchmarks/.work/venv-trace): "
                          f"pip install -r benchmarks/requirements.txt"}
    fd, out_path = tempfile.mkstemp(suffix=".json", dir=WORK_DIR)
    os.close(fd)
    try:
        proc = subprocess.run([python, os.path.abspath(__file__), "--side", "trace", "--repeat", str(repeat),
                               "--clock", clock_name(), "--side-output", out_path], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return {"framework": "trace-opt", "available": False,
                    "reason": f"the Trace side failed in {python} (exit {proc.returncode}): {tail}"}
        with open(out_path, encoding="utf-8") as fh:
            return json.load(fh)
    finally:
        os.unlink(out_path)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def report(results: list[dict], repeat: int) -> None:
    rows = []
    for r in results:
        if not r.get("available"):
            rows.append([r["framework"], "-", "-", "-", "-", "-", "-", "-"])
            continue
        rows.append([r["framework"], fmt_ns(r["plain"]["median_s"]), fmt_ns(r["run"]["median_s"]),
                     f"{r['ratio_vs_plain']:.0f}x", fmt_ns(r["run_backward"]["median_s"]),
                     r["nodes_per_run"], r["output_dependencies"], yes_no(r["output_depends_on_if"])])
    print_table(f"one run = {len(QUESTIONS)} questions through the workflow, under recording "
                f"({clock_name()} clock, median of {repeat})",
                ["framework", "plain", "recorded", "rec/plain", "+feedback+backward", "nodes",
                 "output deps", "if recorded as dependency"], rows)
    available = [r for r in results if r.get("available")]
    if len(available) == 2:
        a, b = available
        print(f"\n{b['framework']} / {a['framework']} time per recorded run: "
              f"{b['run']['median_s'] / a['run']['median_s']:.2f}x (each framework's plain baseline is "
              f"measured in its own process: {fmt_ns(a['plain']['median_s'])} vs {fmt_ns(b['plain']['median_s'])})")
    for r in results:
        if not r.get("available"):
            print(f"\n{r['framework']} not measured: {r['reason']}")
        else:
            print(f"{r['framework']}: answers {r['answers']}; output of question {BRANCH_QUESTION} depends on the "
                  f"prompt: {yes_no(r['output_depends_on_prompt'])}, on the `if` condition: "
                  f"{yes_no(r['output_depends_on_if'])} (condition recorded as a node: "
                  f"{yes_no(r['records_if_condition'])})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="samples per timing (median is reported)")
    parser.add_argument("--quick", action="store_true", help="3 samples: a smoke run, not a measurement")
    parser.add_argument("--side", choices=["trace"], help=argparse.SUPPRESS)
    parser.add_argument("--side-output", help=argparse.SUPPRESS)
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    set_clock(args.clock)
    repeat = 3 if args.quick else args.repeat
    if args.side == "trace":   # child process in the trace-opt interpreter
        data = trace_side(repeat)
        with open(args.side_output, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        return 0
    results = [tracec_side(repeat), measure_trace(repeat)]
    report(results, repeat)
    write_results("bench_trace_compare", {"repeat": repeat, "questions": QUESTIONS,
                                          "branch_question": BRANCH_QUESTION, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

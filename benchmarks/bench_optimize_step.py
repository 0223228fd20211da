"""What one `tracec optimize` step costs besides the LLM call, on the triage example (examples/triage).

Baseline, measured in the same run: evaluating the task's `val` examples plainly (run + feedback, no
recording). Then each piece of a step: recording a minibatch of 4 with feedback and backward(), building
the prompt from those recordings, parsing a reply; then what a candidate costs (a fork of the warm worker host per chunk of examples, the candidate's
patched files in a scratch copy, a second fork scoring the outputs): making its patched file, and scoring
`val` with it through TaskEvaluator with 1 and 2 workers. (The in-process trial the workers replaced,
install + score + restore, measured 114 ms here against 80 ms for 1 worker at commit 42b7782, the last
that had it.) Median of repeats; ratios against the baseline.

Run: python benchmarks/bench_optimize_step.py [--repeat 7] [--clock cpu]"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import add_clock_argument, clock_name, fmt_ns, measure, print_table, set_clock, write_results

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "triage"
NEW_URGENCY = '''def urgency(text: str) -> int:
    words = text.lower().split()
    score = sum(2 for word in words if word.strip(".,!?") in URGENT_WORDS)
    if text.isupper() or text.count("!") >= 2:
        score += 1
    return score
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    add_clock_argument(parser)
    args = parser.parse_args()
    set_clock(args.clock)

    from tracec.optimize.prompt import Example, Variable, build_messages
    from tracec.optimize.reply import parse_reply
    from tracec.optimize.task import Outcome, execute, judge, load_task
    from tracec.optimize.task_evaluator import TaskEvaluator

    root = Path(tempfile.mkdtemp(prefix="tracec-bench-step-"))
    try:
        shutil.copytree(EXAMPLE, root / "triage", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "pyproject.toml").write_text("")
        task = load_task(root / "triage" / "task.py", root)
        batch = list(task.train[:4])

        def plain_val():
            for ticket in task.val:
                task.feedback(ticket, task.run(ticket))

        def record_batch():
            outcomes = []
            for ticket in batch:
                output, error, graph = execute(task, ticket, recorded=True)
                score, text = judge(task, ticket, output, error)
                for node in graph.outputs:
                    graph.feedback(node, text, score)
                graph.backward()
                outcomes.append(Outcome(repr(ticket), repr(output), score, text, graph))
            return outcomes

        outcomes = record_batch()
        module = sys.modules["triage"]
        variables = [Variable("triage:ESCALATE_AT", "value", module.ESCALATE_AT, None, "triage/triage.py", 10),
                     Variable("triage:URGENT_WORDS", "value", module.URGENT_WORDS, None, "triage/triage.py", 9),
                     Variable("triage:urgency", "code", NEW_URGENCY, None, "triage/triage.py", 15)]
        examples = [Example(o.graph, o.example, o.output, o.score, o.text) for o in outcomes]
        reply = json.dumps({"reasoning": "escalate later; count urgent words double",
                            "suggestion": {"ESCALATE_AT": 2, "urgency": NEW_URGENCY}})

        evaluators = {n: TaskEvaluator(root / "triage" / "task.py", root, n, 60.0) for n in (1, 2)}
        candidate = {"triage:urgency": NEW_URGENCY}
        pieces = [("evaluate val plainly (baseline)", plain_val),
                  ("record 4 examples + feedback + backward", record_batch),
                  ("build the prompt (4 recordings)", lambda: build_messages(variables, examples, root=root)),
                  ("parse a reply (value + code)", lambda: parse_reply(reply, variables)),
                  ("a code candidate as its patched file (LibCST splice + black)",
                   lambda: evaluators[1].sources.files(candidate, evaluators[1].initial)),
                  ("score a code candidate on val in workers (1 worker)", lambda: evaluators[1].scores(candidate, evaluators[1].val)),
                  ("score a code candidate on val in workers (2 workers)", lambda: evaluators[2].scores(candidate, evaluators[2].val))]
        try:
            timings = {name: measure(fn, repeat=args.repeat) for name, fn in pieces}
        finally:
            for evaluator in evaluators.values():
                evaluator.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    base = timings[pieces[0][0]].median
    rows = [[name, fmt_ns(t.median), f"{t.median / base:.1f}x", f"±{t.spread:.0%}"] for name, t in timings.items()]
    print_table(f"one optimize step on examples/triage, by piece ({clock_name()} clock, median of {args.repeat})",
                ["piece", "time", "vs baseline", "spread"], rows)
    write_results("bench_optimize_step", {name: t.to_json() for name, t in timings.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

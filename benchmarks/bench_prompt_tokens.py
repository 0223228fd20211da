"""Prompt tokens per optimizer step: tracec's build_messages against trace-opt's OptoPrime.

Both optimizers see the same programs, the same minibatch of examples and the same feedback text; each
builds the messages of one step. tracec's come from a recording (`tracec.optimize.prompt.build_messages`, what
`tracec optimize` sends); OptoPrime's are captured by a fake LLM that records the messages it is sent
and answers with an empty suggestion (so nothing is called over the network). Both are counted by the
same tokenizer in this process (litellm.token_counter, model "gpt-4o", offline).

Programs:
  qa      the workflow of bench_trace_compare.py (a trainable prompt, an `if` that retries, a trainable
          helper), 4 questions
  triage  examples/triage (two trainable constants, one trainable function; the routing decision is an
          `if` on a parameter, which Trace cannot follow), its 6 training tickets
Trace's side runs in benchmarks/.work/venv-trace (see bench_trace_compare.py) when `opto` is not
importable here.

Run: python benchmarks/bench_prompt_tokens.py"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import HERE, load_instrumented, print_table, write_results
from bench_trace_compare import QUESTIONS, WORK_DIR, load_module, trace_python
from bench_trace_compare import TRACE as QA_TRACE
from bench_trace_compare import TRACEC as QA_TRACEC

ROOT = os.path.dirname(HERE)
QA_EXPECTED = {"What is the capital of France?": "paris", "Which is the largest planet?": "jupiter",
               "Capital of Italy?": "rome", "Who wrote Hamlet?": "shakespeare"}
BATCHES = (1, 4)
TOKEN_MODEL = "gpt-4o"
FAKE_REPLY = json.dumps({"reasoning": "recorded by the benchmark", "answer": "", "suggestion": {}})

TRIAGE_TRACE = '''from opto.trace import bundle, node

URGENT_WORDS = node(["refund", "broken"], trainable=True, description="words that make a ticket urgent")
ESCALATE_AT = node(1, trainable=True, description="urgency score at which a ticket goes to the escalations queue")
QUEUES = {"billing": ["invoice", "charge", "refund"], "tech": ["error", "crash", "broken", "login"]}


@bundle(trainable=True)
def urgency(text, urgent_words):
    """scores how urgent a ticket is; higher is more urgent"""
    words = text.lower().split()
    score = sum(1 for word in words if word.strip(".,!?") in urgent_words)
    if text.isupper() or text.count("!") >= 2:
        score += 1
    return score


@bundle()
def topic(text):
    """the queue whose keywords the text mentions, else general"""
    lowered = text.lower()
    for queue, keywords in QUEUES.items():
        if any(keyword in lowered for keyword in keywords):
            return queue
    return "general"


def route(ticket):
    ticket = node(ticket)
    text = ticket["subject"] + " " + ticket["body"]
    score = urgency(text, URGENT_WORDS)   # a global node read inside a bundle is invisible to Trace
    if score >= ESCALATE_AT:              # Node.__bool__ is not traced: this decision is lost
        queue = node("escalations")
    else:
        queue = topic(text)
    return queue
'''


# Trace's minibatch recipe (its tutorials): one bundle joins the batch's outputs into one node to call
# backward on with the joined feedback (OptoPrime asserts that all feedback reaching a graph is the same)
BATCHIFY = '''

@bundle()
def batchify(*items):
    """Concatenate the items into a single string"""
    return "".join(f"ID [{i}]: {item}\\n" for i, item in enumerate(items))
'''


def tickets() -> list[dict]:
    namespace: dict = {}
    with open(os.path.join(ROOT, "examples", "triage", "tickets.py"), encoding="utf-8") as fh:
        exec(fh.read(), namespace)
    return namespace["TRAIN"]


def qa_feedback(question: str, answer: str) -> tuple[float, str]:
    expected = QA_EXPECTED[question]
    return (1.0, "correct") if answer == expected else (0.0, f"expected {expected!r}, got {answer!r}")


def triage_feedback(ticket: dict, queue: str) -> tuple[float, str]:
    """The feedback of examples/triage/task.py, repeated: this file also runs in the trace-opt venv, where
    task.py cannot be imported (it imports triage, which imports tracec)."""
    expected = ticket["queue"]
    if queue == expected:
        return 1.0, f"correct: routed to {queue!r}"
    if queue == "escalations":
        return 0.0, (f"wrong: routed to 'escalations' but belongs in {expected!r}; this ticket is not urgent "
                     "enough to escalate")
    if expected == "escalations":
        return 0.0, f"wrong: routed to {queue!r} but it is urgent and belongs in 'escalations'"
    return 0.0, f"wrong: routed to {queue!r} but belongs in {expected!r}"


def programs() -> dict:
    with open(os.path.join(ROOT, "examples", "triage", "triage.py"), encoding="utf-8") as fh:
        triage_source = fh.read()
    return {"qa": {"tracec": QA_TRACEC, "trace": QA_TRACE, "entry": "solve", "examples": QUESTIONS,
                   "feedback": qa_feedback},
            "triage": {"tracec": triage_source, "trace": TRIAGE_TRACE, "entry": "route", "examples": tickets(),
                       "feedback": triage_feedback}}


# -- tracec -----------------------------------------------------------------------------------------
def tracec_messages() -> dict[str, list]:
    out: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="prompt-tokens-", dir=_work_dir()) as root:
        for name, program in programs().items():
            out.update(_tracec_program(name, program, Path(root)))
    return out


def _tracec_program(name: str, program: dict, root: Path) -> dict[str, list]:
    """One step's messages per batch size, the way `tracec optimize` builds them."""
    import tracec.runtime as rt
    from tracec.optimize.prompt import Example, Variable, build_messages
    from tracec.optimize.task import Task, run_example

    path = f"{name}_tracec.py"
    (root / path).write_text(program["tracec"], encoding="utf-8")   # the user's file: its real lines are shown
    namespace = load_instrumented(program["tracec"], path=path, module=f"{name}_tracec", all_functions=False)
    hooks, entry = namespace["_tracec_m"], namespace[program["entry"]]
    out = {}
    task = Task(root / path, (), (), entry, program["feedback"])
    for batch in BATCHES:
        examples, reached = [], set()
        for example in program["examples"][:batch]:
            outcome = run_example(task, example, recorded=True)   # what `tracec optimize` records
            reached.update(outcome.graph.backward())
            examples.append(Example(outcome.graph, rt.preview(example), rt.preview(outcome.output), outcome.score,
                                    outcome.text))
        variables = [_variable(Variable, hooks, program["tracec"], key, path) for key in sorted(reached)]
        out[f"{name}/{batch}"] = build_messages(variables, examples, root=root)
    return out


def _variable(Variable, hooks, source: str, key: str, path: str):
    table = hooks.table
    for site in table.params:
        if site.key == key:
            return Variable(key, "value", hooks.namespace[site.global_name], site.doc, path, site.line)
    for fn in table.functions:
        if f"{table.module}:{fn.qualname}" == key:
            from tracec.optimize.task_evaluator import definition_source

            return Variable(key, "code", definition_source(source, fn.line), fn.doc, path, fn.line)
    raise KeyError(key)


def _work_dir() -> str:
    os.makedirs(WORK_DIR, exist_ok=True)
    return WORK_DIR


# -- Microsoft Trace ----------------------------------------------------------------------------------
class RecordingLLM:
    """Stands in for OptoPrime's LLM: keeps every message list, answers with an empty suggestion."""

    def __init__(self):
        self.calls: list[list[dict]] = []

    def __call__(self, messages, **_options):
        self.calls.append([dict(m) for m in messages])
        message = type("Message", (), {"content": FAKE_REPLY})()
        return type("Response", (), {"choices": [type("Choice", (), {"message": message})()]})()


def trace_messages() -> dict[str, object]:
    from opto.optimizers import OptoPrime
    from opto.trace.nodes import ParameterNode

    out: dict[str, object] = {}
    for name, program in programs().items():
        module = load_module(f"{name}_trace", program["trace"] + BATCHIFY)
        params = [v for v in vars(module).values() if isinstance(v, ParameterNode)]
        params += [v.parameter for v in vars(module).values() if getattr(v, "parameter", None) is not None]
        entry = getattr(module, program["entry"])
        for batch in BATCHES:
            # no GRAPH.clear(): it restarts Trace's name counters, and a new input node would then share
            # the py_name `str0` with the prompt parameter made at import, hiding the prompt in #Variables
            llm = RecordingLLM()
            optimizer = OptoPrime(params, llm=llm)
            optimizer.zero_feedback()
            outputs, texts = [], []
            for example in program["examples"][:batch]:
                outputs.append(entry(example))
                texts.append(program["feedback"](example, outputs[-1].data)[1])
            if batch == 1:
                outputs[0].backward(texts[0])
            else:
                joined = "\n".join(f"ID [{i}]: {text}" for i, text in enumerate(texts))
                module.batchify(*outputs).backward(joined)
            try:
                optimizer.step()
            except Exception as exc:   # e.g. the feedback reached no parameter: no prompt at all
                out[f"{name}/{batch}"] = f"{type(exc).__name__}: {exc}"
                continue
            out[f"{name}/{batch}"] = llm.calls[0] if llm.calls else "OptoPrime made no LLM call"
    return out


def measure_trace() -> dict:
    try:
        import opto.optimizers  # noqa: F401
        return {"available": True, "messages": trace_messages()}
    except ImportError as exc:
        local_error = f"{type(exc).__name__}: {exc}"
    python = trace_python()
    if python is None:
        return {"available": False, "reason": f"`import opto` failed here ({local_error}) and no trace-opt "
                                              f"interpreter was found: pip install -r benchmarks/requirements.txt"}
    fd, out_path = tempfile.mkstemp(suffix=".json", dir=_work_dir())
    os.close(fd)
    try:
        proc = subprocess.run([python, os.path.abspath(__file__), "--side", "trace", "--side-output", out_path],
                              capture_output=True, text=True, timeout=600, cwd=HERE,
                              env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", **os.environ})   # no network
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return {"available": False, "reason": f"the Trace side failed in {python}: {tail}"}
        with open(out_path, encoding="utf-8") as fh:
            return {"available": True, "messages": json.load(fh)}
    finally:
        os.unlink(out_path)


# -- counting -----------------------------------------------------------------------------------------
def count(messages) -> dict | None:
    if not isinstance(messages, list):
        return None
    from tracec.llm.client import import_litellm

    litellm = import_litellm()
    return {"total": litellm.token_counter(model=TOKEN_MODEL, messages=messages),
            **{m["role"]: litellm.token_counter(model=TOKEN_MODEL, text=m["content"]) for m in messages}}


def shown_variables(messages) -> str:
    """The names the prompt's #Variables section gives the trainable parameters (`(type) name`)."""
    if not isinstance(messages, list):
        return "-"
    section = messages[-1]["content"].split("#Variables", 1)[-1].split("#Constraints", 1)[0]
    names = re.findall(r"^\((?:\w+)\) ([\w.]+)", section, re.MULTILINE)
    return ",".join(names) or "none"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["trace"], help=argparse.SUPPRESS)
    parser.add_argument("--side-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "trace":   # child process in the trace-opt interpreter
        with open(args.side_output, "w", encoding="utf-8") as fh:
            json.dump(trace_messages(), fh)
        return 0
    ours = tracec_messages()
    theirs = measure_trace()
    rows, results = [], []
    for config, messages in ours.items():
        program, batch = config.split("/")
        mine = count(messages)
        other_messages = theirs.get("messages", {}).get(config) if theirs["available"] else None
        other = count(other_messages)
        ratio = mine["total"] / other["total"] if other else None
        rows.append([config, mine["system"], mine["user"], mine["total"], shown_variables(messages),
                     other["system"] if other else "-", other["user"] if other else "-",
                     other["total"] if other else "-", shown_variables(other_messages),
                     f"{ratio:.2f}" if ratio else "-"])
        results.append({"config": config, "tracec": mine, "trace": other, "ratio_tracec_over_trace": ratio,
                        "tracec_messages": messages,
                        "trace_messages": other_messages})
    print_table(f"prompt tokens of one optimizer step ({TOKEN_MODEL} tokenizer via litellm.token_counter); "
                "program/batch size",
                ["program/batch", "tracec sys", "user", "total", "variables shown", "OptoPrime sys", "user",
                 "total", "variables shown", "tracec/OptoPrime"], rows)
    if not theirs["available"]:
        print(f"\ntrace-opt not measured: {theirs['reason']}")
    for r in results:
        if isinstance(r["trace_messages"], str):
            print(f"\n{r['config']}: OptoPrime built no prompt: {r['trace_messages']}")
    write_results("bench_prompt_tokens", {"token_model": TOKEN_MODEL, "batches": list(BATCHES), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

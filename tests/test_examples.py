"""Every example in examples/ runs end to end with the installed `tracec` command against the scripted
OpenAI-compatible server: a copy of the example is optimized, and what a user would check is asserted
(a patch that applies, a validation score that rose, sources untouched, the graph and its HTML view).

The server stands in for both models: the workflow's own `tracec.chat` calls get a crude rule-based
"model" (so a prompt change really changes the workflow's answers), the optimizer's calls get scripted
proposals. Whether a proposal scores better is computed by the example's own task file, never assumed."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from llm_server import Failure
from support import TRACEC
from test_optimize import assert_applies

from tracec.optimize.prompt import SYSTEM as OPTIMIZER_SYSTEM

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def copy_example(name: str, tmp_path: Path, settings: str = "") -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns("__pycache__", ".tracec"))
    # greedy: one proposal per step, in the order the scripted replies are listed (test_search: pareto)
    (root / "pyproject.toml").write_text(f"[tool.tracec]\nsearch = \"greedy\"\n{settings}")
    return root


def sources(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
            and ".tracec" not in p.parts and "__pycache__" not in p.parts}


def environment(server) -> dict[str, str]:
    """tracec.chat in the workflow finds the stand-in model through these (the optimizer gets flags)."""
    return {**os.environ, "TRACEC_MODEL": "openai/scripted", "TRACEC_API_BASE": server.url,
            "PYTHONDONTWRITEBYTECODE": "1"}


def optimize(root: Path, server, *args: str, what: tuple[str, ...] = ("task.py",)) -> subprocess.CompletedProcess:
    return subprocess.run([TRACEC, "optimize", *what, "--model", "openai/scripted", "--api-base", server.url,
                           *args], cwd=root, capture_output=True, text=True, env=environment(server), timeout=120)


def val_score(root: Path, server, monkeypatch) -> float:
    """The task's own mean score on `val`, run as plain Python in this process (no second litellm start-up)."""
    with monkeypatch.context() as patch:
        patch.chdir(root)
        patch.syspath_prepend(str(root))
        for name, value in environment(server).items():
            patch.setenv(name, value)
        stale = {name for name, module in sys.modules.items() if _under(module, root) or name == "task"}
        for name in stale:
            del sys.modules[name]
        try:
            task = importlib.import_module("task")
            scores = [task.feedback(example, task.run(example))[0] for example in task.val]
        finally:
            for name in [name for name, module in sys.modules.items() if _under(module, root)]:
                del sys.modules[name]
    return sum(scores) / len(scores)


def _under(module, root: Path) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(file).resolve().is_relative_to(root.resolve())


def apply_patches(root: Path) -> None:
    patches = sorted((root / ".tracec" / "patches").glob("*.patch"))
    assert patches, "no patch written"
    for patch in patches:
        assert_applies(root, patch)
    applied = subprocess.run([TRACEC, "apply"], cwd=root, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr


def assert_val_rose(root: Path, server, monkeypatch, before: float, summary: tuple[float, float]) -> None:
    """After `tracec apply`, the task's own val score is what the summary promised, and higher than before."""
    after = val_score(root, server, monkeypatch)
    assert after > before
    assert summary == (round(before, 3), round(after, 3))


def summary_scores(stdout: str) -> tuple[float, float]:
    match = re.search(r"(\d\.\d{3}) -> (\d\.\d{3})", stdout)
    assert match, stdout
    return float(match.group(1)), float(match.group(2))


def stand_in(workflow_model, proposals: list[dict]):
    """One server for both callers: optimizer requests get the next scripted proposal (or a 500 when
    there is none left), every other request is answered by workflow_model(system, user)."""
    queue = [json.dumps({"reasoning": "from the feedback", "suggestion": p}) for p in proposals]

    def reply(request: dict):
        system, user = (m["content"] for m in request["messages"][:2])
        if system == OPTIMIZER_SYSTEM:
            return queue.pop(0) if queue else Failure(500, "no scripted proposal left")
        return workflow_model(system, user)

    return reply


def optimizer_prompts(server) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests if r["messages"][0]["content"] == OPTIMIZER_SYSTEM]


# -- numerical: bounds from the doc, and memory across steps --------------------------------------------
def test_thermostat_bounds_are_enforced_and_memory_carries_scores(tmp_path, scripted_llm, monkeypatch):
    root = copy_example("thermostat", tmp_path, "batch_size = 2\n")
    before = sources(root)
    server = scripted_llm(stand_in(None, [{"GAIN": 5}, {"GAIN": 0.8}, {"INTEGRAL_GAIN": 0.002}]))
    before_score = val_score(root, server, monkeypatch)
    result = optimize(root, server, "--steps", "2")
    assert result.returncode == 0, result.stderr
    prompts = optimizer_prompts(server)
    assert len(prompts) == 3
    # the out-of-bounds proposal was refused and the retry says why, in one line naming the doc's bound
    assert "GAIN: 5.0 is above the maximum 2 stated in its doc" in prompts[1]
    assert "min 0, max 2" in prompts[0]                          # #Constraints shows the doc
    # step 2's prompt remembers what step 1 tried and how it scored
    memory = re.search(r"step 1: tried GAIN=0.8: score (\d\.\d{3})", prompts[2])
    assert memory, prompts[2]
    baseline, best = summary_scores(result.stdout)
    assert baseline < float(memory.group(1)) <= best
    assert sources(root) == before
    apply_patches(root)
    assert_val_rose(root, server, monkeypatch, before_score, (baseline, best))


# -- control flow: the decisive parameter is reached only through an `if` ----------------------------------
def ancestors(nodes: dict, start: int, control: bool) -> set[int]:
    seen, todo = set(), [start]
    while todo:
        node = nodes[todo.pop()]
        for parent in node["parents"] + (node["control"] if control else []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_control_flow_graph_shows_the_if_and_the_optimizer_fixes_the_limit(tmp_path, scripted_llm, monkeypatch):
    root = copy_example("control_flow", tmp_path)
    before = sources(root)
    ran = subprocess.run([TRACEC, "run", "main.py"], cwd=root, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "reaches refunds:AUTO_APPROVE_UP_TO through the condition(s) ['if amount <= AUTO_APPROVE_UP_TO:']" \
        in ran.stdout
    graph = json.loads((root / ".tracec" / "refunds-graph.json").read_text())
    nodes = {n["id"]: n for n in graph["nodes"]}
    param = next(p["node"] for p in graph["params"] if p["key"] == "refunds:AUTO_APPROVE_UP_TO")
    wrong = [f["node"] for f in graph["feedback"]]
    assert wrong
    for output in wrong:   # no value flows from the limit to a decision; only the `if` connects them
        assert param not in ancestors(nodes, output, control=False)
        assert param in ancestors(nodes, output, control=True)
    shown = subprocess.run([TRACEC, "show", ".tracec/refunds-graph.json", "-o", "graph.html"], cwd=root,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "AUTO_APPROVE_UP_TO" in (root / "graph.html").read_text()
    (root / "graph.html").unlink()

    server = scripted_llm(stand_in(None, [{"AUTO_APPROVE_UP_TO": 100}]))
    before_score = val_score(root, server, monkeypatch)
    result = optimize(root, server, "--steps", "1")
    assert result.returncode == 0, result.stderr
    prompt = optimizer_prompts(server)[0]
    assert "if amount <= AUTO_APPROVE_UP_TO:" in prompt and "ONLY through control flow" in prompt
    baseline, best = summary_scores(result.stdout)
    assert sources(root) == before
    apply_patches(root)
    assert_val_rose(root, server, monkeypatch, before_score, (baseline, best))


# -- greeting agent: a prompt sent to a model, a trainable helper, text feedback -----------------------
def greeting_model(system: str, user: str) -> str:
    """A stand-in chat model: rambles unless the system prompt asks for something short."""
    name = user.rstrip(".").split()[-1]
    if "short" in system.lower():
        return f"Welcome aboard, {name}."
    return f"Hello there! As a helpful assistant I am delighted to welcome you, {name}.\nLet me know how I can help."


def test_greeting_prompt_reaches_the_model_and_text_feedback_improves_it(tmp_path, scripted_llm, monkeypatch):
    root = copy_example("greeting", tmp_path, "batch_size = 2\n")
    before = sources(root)
    fixed = ("def card_text(name: str, reply: str) -> str:\n"
             "    return reply.strip().splitlines()[0].rstrip('.!') + '!'")
    new_prompt = "Answer with one short sentence."
    server = scripted_llm(stand_in(greeting_model, [{"SYSTEM_PROMPT": new_prompt}, {"card_text": fixed}]))
    before_score = val_score(root, server, monkeypatch)
    result = optimize(root, server, "--steps", "2")
    assert result.returncode == 0, result.stderr
    first = optimizer_prompts(server)[0]
    assert "it should end with an exclamation mark" in first          # the proofreader's words reached it
    assert "tracec.chat(SYSTEM_PROMPT" in first                       # and the line that sent the prompt
    asked = {r["messages"][0]["content"] for r in server.requests}
    assert new_prompt in asked                                         # the candidate prompt reached the model
    baseline, best = summary_scores(result.stdout)
    assert "SYSTEM_PROMPT" in result.stdout and "card_text" in result.stdout
    assert sources(root) == before
    apply_patches(root)
    assert_val_rose(root, server, monkeypatch, before_score, (baseline, best))


# -- prompt optimization on the shipped dataset, keep-best ---------------------------------------------
POSITIVE = {"great", "excellent", "love", "best", "perfectly", "amazing", "fantastic", "happy", "lovely"}
NEGATIVE = {"not", "never", "broke", "broken", "waste", "poor", "terrible", "too", "disappointing", "bad"}


def sentiment_model(system: str, user: str) -> str:
    """A stand-in classifier: counts a few cue words; answers in one word only when told to."""
    words = set(re.findall(r"[a-z]+", user.lower()))
    label = "negative" if len(words & NEGATIVE) > len(words & POSITIVE) else "positive"
    return label if "one word" in system.lower() else f"I would say the review is {label}."


def test_sentiment_keeps_the_best_candidate_on_val(tmp_path, scripted_llm, monkeypatch):
    root = copy_example("sentiment", tmp_path, "batch_size = 4\n")
    before = sources(root)
    always_positive = "def label_of(reply: str) -> str:\n    return 'positive'"
    server = scripted_llm(stand_in(sentiment_model, [
        {"INSTRUCTION": "Answer in one word: positive or negative."},             # better: kept
        {"label_of": always_positive}]))                                          # later, but worse than the best
    before_score = val_score(root, server, monkeypatch)
    result = optimize(root, server, "--steps", "2")
    assert result.returncode == 0, result.stderr
    assert "step 1/2: tried INSTRUCTION" in result.stderr and "(kept)" in result.stderr
    assert "step 2/2: tried label_of" in result.stderr and "(rolled back)" in result.stderr
    baseline, best = summary_scores(result.stdout)
    assert sources(root) == before
    apply_patches(root)
    assert "def label_of" in (root / "sentiment.py").read_text()
    assert "return 'positive'" not in (root / "sentiment.py").read_text()   # the later, worse one is not in it
    assert_val_rose(root, server, monkeypatch, before_score, (baseline, best))


# -- code repair: a buggy trainable function fixed from its failing tests ------------------------------------
def run_tests(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root,
                          capture_output=True, text=True, timeout=60)


def test_code_repair_from_failing_pytest_tests(tmp_path, scripted_llm):
    root = copy_example("code_repair", tmp_path)
    before = sources(root)
    assert "2 failed, 2 passed" in run_tests(root).stdout       # the example ships broken on purpose
    repaired = ("def median(values: list[float]) -> float:\n    ordered = sorted(values)\n"
                "    middle = len(ordered) // 2\n    if len(ordered) % 2:\n        return ordered[middle]\n"
                "    return (ordered[middle - 1] + ordered[middle]) / 2")
    server = scripted_llm(stand_in(None, [{"median": repaired}]))
    result = optimize(root, server, "--steps", "3", what=("--pytest", "tests"))
    assert result.returncode == 0, result.stderr
    prompts = optimizer_prompts(server)
    assert len(prompts) == 1                                    # every test passes after step 1: it stops
    assert "assert 1 == 5" in prompts[0] and "assert 3 == 2.5" in prompts[0]   # pytest's own failure lines
    assert summary_scores(result.stdout) == (0.5, 1.0)
    assert sources(root) == before
    apply_patches(root)
    assert "4 passed" in run_tests(root).stdout

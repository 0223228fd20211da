"""build_messages from real recordings: a small annotated module is instrumented, run, fed back, prompted."""

from __future__ import annotations

import ast
import itertools

import pytest
from support import load_module

import tracec
from tracec.optimize.prompt import Example, Variable, build_messages, display_names

SHOP = '''\
import tracec

LIMIT = tracec.param(3, doc="orders with more items than this need review")
GREETING = tracec.param("Hello", doc="first word of every reply")
DISCOUNT = tracec.param(1.0)
NOTE = tracec.param("x")


@tracec.trace
def count_items(order):
    """How many items an order has."""
    return len(order["items"])


@tracec.trainable(doc="the reply text")
def reply_text(name: str) -> str:
    return GREETING + ", " + name


@tracec.trace
def review(order):
    n = count_items(order)
    total = 0
    for price in order["items"]:
        total += price * DISCOUNT  # discounted price
    if n > LIMIT:
        status = "review"
    else:
        status = "ok"
    if order.get("fail"):
        raise ValueError("no such customer: " + order["name"])
    return status, reply_text(order["name"]), total
'''

_names = itertools.count()


@pytest.fixture
def shop(tmp_path):
    """(root, module, name): the user's original file under root, the instrumented copy imported."""
    name = f"shop{next(_names)}"
    root = tmp_path / "project"
    root.mkdir()
    (root / f"{name}.py").write_text(SHOP)
    module = load_module(tmp_path, name, SHOP, instrument=True, all_functions=False)
    return root, module, name


def run_example(module, order, judge) -> Example:
    error = output = None
    with tracec.record() as run:
        try:
            output = module.review(order)
        except ValueError as exc:
            error = exc
            run.observe_exception(exc)
    score, text = judge(output, error)
    for node in run.outputs:
        run.feedback(node, text, score)
    shown = f"{type(error).__name__}: {error}" if error else repr(output)
    return Example(run, repr(order), shown, score, text)


def variables(name: str, keys=("LIMIT", "GREETING", "DISCOUNT", "reply_text"), **values) -> list[Variable]:
    defs = {"LIMIT": 3, "GREETING": "Hello", "DISCOUNT": 1.0, "NOTE": "x"}
    defs.update(values)
    docs = {"LIMIT": "orders with more items than this need review", "GREETING": "first word of every reply",
            "reply_text": "the reply text"}
    out = []
    for key in keys:
        if key == "reply_text":
            source = ast.get_source_segment(SHOP, next(n for n in ast.parse(SHOP).body
                                                       if getattr(n, "name", "") == "reply_text"))
            out.append(Variable(f"{name}:reply_text", "code", source, docs[key], f"{name}.py", 16))
        else:
            out.append(Variable(f"{name}:{key}", "value", defs[key], docs.get(key), f"{name}.py", 3))
    return out


def wrong_status(output, error):
    if error:
        return 0.0, f"crashed: {error}"
    return (1.0, "correct") if output[0] == "review" else (0.0, "a big order was not sent to review")


def sections(user: str) -> dict[str, str]:
    out, title = {}, None
    for line in user.split("\n\nYour reply (JSON):")[0].splitlines():
        if line.startswith("#") and not line.startswith("# ") and not line.startswith("#!"):
            title = line
            out[title] = ""
        elif title:
            out[title] += line + "\n"
    return out


def test_messages_have_every_section_in_order_and_ask_for_json(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [5, 6, 7]}, wrong_status)
    messages = build_messages(variables(name), [ex], root=root)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert '"suggestion"' in messages[0]["content"] and "JSON" in messages[0]["content"]
    titles = list(sections(messages[1]["content"]))
    assert titles == ["#Instruction", "#Code", "#Definitions", "#Variables", "#Constraints", "#Inputs", "#Others",
                      "#Outputs", "#Feedback"]


def test_a_parameter_reached_only_through_an_if_is_shown_with_its_condition(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [5, 6, 7]}, wrong_status)
    assert f"{name}:LIMIT" in ex.graph.backward()
    part = sections(build_messages(variables(name), [ex], root=root)[1]["content"])
    limit = part["#Variables"].split("(int) LIMIT = 3\n", 1)[1].split("\n(", 1)[0]
    assert "read at line 26: `if n > LIMIT:`" in limit
    assert "ONLY through control flow" in limit and "`if n > LIMIT:` (line 26)" in limit
    # the condition, the branch that ran (the other one cut), what the condition evaluated to
    assert ('  26 |     if n > LIMIT:\n     | ...\n  28 |     else:\n  29 |         status = "ok"\n'
            in part["#Code"])
    assert "line 26: if n > LIMIT: -> False" in part["#Others"]
    assert 'line 27: status = "review"' not in part["#Others"]
    assert 'line 29: status = "ok" -> \'ok\'' in part["#Others"]
    # a value that flows as data is not called control-only
    discount = part["#Variables"].split("(float) DISCOUNT = 1.0\n", 1)[1].split("\n(", 1)[0]
    assert "ONLY through" not in discount


def test_code_shows_the_users_real_lines_once_per_loop_with_the_user_names(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": list(range(40))}, wrong_status)
    user = build_messages(variables(name), [ex], root=root)[1]["content"]
    code = sections(user)["#Code"]
    assert code.count("total += price * DISCOUNT  # discounted price") == 1   # the comment: read from the file
    assert code.index("  21 | def review(order):") < code.index("  25 |         total +=") < code.index("  32 |     return")
    assert f"# {name}.py, review" in code and f"# {name}.py, reply_text  (trainable" in code
    assert "ran 40 times" in sections(user)["#Others"]
    assert f"{name}:" not in user.replace(f"{name}.py", "")   # keys never leak; the user's names are used
    assert "(str) GREETING = \"Hello\"" in user and "(code) reply_text:\ndef reply_text(name: str) -> str:" in user


def test_definitions_give_the_def_line_and_docstring_of_called_traced_functions(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1]}, wrong_status)
    definitions = sections(build_messages(variables(name), [ex], root=root)[1]["content"])["#Definitions"]
    assert definitions.strip() == 'def count_items(order):\n    """How many items an order has."""'


def test_constraints_keep_type_doc_and_signature(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1]}, wrong_status)
    constraints = sections(build_messages(variables(name), [ex], root=root)[1]["content"])["#Constraints"]
    assert "LIMIT: int. orders with more items than this need review" in constraints
    assert "reply_text: a Python function (keep the name and parameters: reply_text(name: str)). the reply text" \
        in constraints


def test_feedback_per_example_and_mean_and_the_union_of_paths(shop):
    root, module, name = shop
    small = run_example(module, {"name": "Bo", "items": [1]}, lambda o, e: (1.0, "fine"))
    big = run_example(module, {"name": "Ann", "items": [1, 2, 3]}, wrong_status)
    part = sections(build_messages(variables(name), [small, big], root=root)[1]["content"])
    assert part["#Feedback"].strip() == ("[example 1] score 1: fine\n[example 2] score 0: a big order was not sent to "
                                 "review\nmean score 0.5 over 2 example(s)")
    assert "[example 1]" in part["#Inputs"] and "input = {'name': 'Bo', 'items': [1]}" in part["#Inputs"]
    assert "[example 2]\noutput = ('ok', 'Hello, Ann', 6.0)" in part["#Outputs"]
    assert "line 26: if n > LIMIT: -> False" in part["#Others"]


def test_an_exception_is_shown_as_the_output(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Cy", "items": [9, 9, 9, 9], "fail": True}, wrong_status)
    part = sections(build_messages(variables(name), [ex], root=root)[1]["content"])
    assert "output = ValueError: no such customer: Cy" in part["#Outputs"]
    assert "raised ValueError: no such customer: Cy" in part["#Outputs"]
    assert "score 0: crashed: no such customer: Cy" in part["#Feedback"]


def test_long_values_are_cut_to_the_budget_the_instruction_states(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1]}, wrong_status)
    long = "word " * 1000
    user = build_messages(variables(name, GREETING=long), [ex], root=root, value_chars=100)[1]["content"]
    part = sections(user)
    assert "longer than 100 characters are shown cut" in part["#Instruction"]
    shown = part["#Variables"].split("(str) GREETING = ", 1)[1].splitlines()[0]
    assert shown == '"' + long[:99] + "... [truncated: 5002 chars, the first 100 shown]"
    assert len(user) < 4000


def test_memory_and_problems_appear_only_when_given(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1]}, wrong_status)
    plain = build_messages(variables(name), [ex], root=root)[1]["content"]
    assert "#Memory" not in plain and "#Problems" not in plain
    user = build_messages(variables(name), [ex], root=root, memory=["step 1: tried LIMIT=9: score 0.2"],
                          problems=["unknown name 'LIMT' in suggestion"])[1]["content"]
    part = sections(user)
    assert part["#Memory"].strip() == "- step 1: tried LIMIT=9: score 0.2"
    assert "- unknown name 'LIMT' in suggestion" in part["#Problems with your previous reply"]


def test_a_variable_the_feedback_does_not_reach_says_so(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1]}, wrong_status)
    user = build_messages(variables(name, keys=("LIMIT", "NOTE")), [ex], root=root)[1]["content"]
    note = sections(user)["#Variables"].split('(str) NOTE = "x"\n', 1)[1]
    assert "does not reach it" in note


def test_without_the_source_file_the_recorded_code_is_shown(shop):
    root, module, name = shop
    ex = run_example(module, {"name": "Ann", "items": [1, 2]}, wrong_status)
    (root / f"{name}.py").unlink()
    code = sections(build_messages(variables(name), [ex], root=root)[1]["content"])["#Code"]
    assert "  26 | if n > LIMIT:" in code and "  27 |" not in code


def test_an_example_without_a_recording_still_shows_its_feedback(shop):
    root, module, name = shop
    ex = Example(None, "{'name': 'Ann'}", "'ok'", 0.0, "should be review")
    part = sections(build_messages(variables(name), [ex], root=root)[1]["content"])
    assert part["#Feedback"].startswith("[example 1] score 0: should be review")
    assert "no recorded line" in part["#Code"]


def test_display_names_are_the_users_names_and_qualified_only_on_a_clash():
    assert display_names(["triage:ESCALATE_AT", "pkg.mod:Agent.act"]) == {
        "triage:ESCALATE_AT": "ESCALATE_AT", "pkg.mod:Agent.act": "Agent.act"}
    assert display_names(["a:LIMIT", "b.c:LIMIT", "a:other"]) == {
        "a:LIMIT": "a.LIMIT", "b.c:LIMIT": "b.c.LIMIT", "a:other": "other"}
    assert display_names(["a.b:c", "a:b.c", "x:c", "y:b.c"]) == {   # "a.b.c" twice: only the keys differ
        "a.b:c": "a.b:c", "a:b.c": "a:b.c", "x:c": "x.c", "y:b.c": "y.b.c"}

"""parse_reply: what an optimizer LLM really sends back (good, sloppy and hostile) -> values or problems."""

from __future__ import annotations

import json
import random

import pytest

from tracec.optimize.prompt import Variable
from tracec.optimize.reply import parse_reply

PARSE = "def parse(reply: str, *, strict=False) -> int:\n    return int(reply)"
ACT = "async def act(self, obs):\n    return obs"
VARIABLES = [
    Variable("app:PROMPT", "value", "Answer in one word.", "system prompt", "app.py", 3),
    Variable("app:RETRIES", "value", 2, None, "app.py", 4),
    Variable("app:TEMPERATURE", "value", 0.5, None, "app.py", 5),
    Variable("app:VERBOSE", "value", True, None, "app.py", 6),
    Variable("app:STOP", "value", ["\n"], None, "app.py", 7),
    Variable("app:LIMITS", "value", {"low": 1}, None, "app.py", 8),
    Variable("app:PAIR", "value", (1, 2), None, "app.py", 9),
    Variable("app:parse", "code", PARSE, None, "app.py", 12),
    Variable("pkg.agent:Agent.act", "code", ACT, None, "pkg/agent.py", 20),
]


def reply(suggestion, reasoning="because") -> str:
    return json.dumps({"reasoning": reasoning, "suggestion": suggestion})


# (case id, reply text, expected values by key, substring of the expected problem or None)
REJECTED = [
    ("broken json", '{"reasoning": "x", "suggestion": {"RETRIES": 3', {}, "no JSON object"),
    ("wrong name", reply({"RETRY": 3}), {}, "unknown name 'RETRY'"),
    ("wrong case", reply({"prompt": "Hi"}), {}, "unknown name 'prompt'"),
    ("path-like name", reply({"../app:PROMPT": "x"}), {}, "unknown name '../app:PROMPT'"),
    ("absolute path name", reply({"/etc/passwd": "x"}), {}, "unknown name '/etc/passwd'"),
    ("word for int", reply({"RETRIES": "three"}), {}, "RETRIES: expected an integer, got the string 'three'"),
    ("number for str", reply({"PROMPT": 42}), {}, "PROMPT: expected a string, got an integer"),
    ("list for str", reply({"PROMPT": ["a", "b"]}), {}, "PROMPT: expected a string, got a JSON array"),
    ("huge string", reply({"PROMPT": "x" * 9000}), {}, "more than the limit of 8000"),
    ("huge list", reply({"STOP": ["x"] * 3000}), {}, "more than the limit of 8000"),
    ("null for int", reply({"RETRIES": None}), {}, "RETRIES: expected an integer, got null"),
    ("fractional float for int", reply({"RETRIES": 3.5}), {}, "RETRIES: expected an integer, got 3.5"),
    ("bool for int", reply({"RETRIES": True}), {}, "RETRIES: expected an integer, got a boolean"),
    ("int for bool", reply({"VERBOSE": 0}), {}, "VERBOSE: expected a boolean"),
    ("yes for bool", reply({"VERBOSE": "yes"}), {}, "VERBOSE: expected a boolean, got the string 'yes'"),
    ("bool for float", reply({"TEMPERATURE": False}), {}, "TEMPERATURE: expected a number, got a boolean"),
    ("NaN for float", '{"suggestion": {"TEMPERATURE": NaN}}', {}, "TEMPERATURE: expected a finite number"),
    ("set for list", reply({"STOP": "{1, 2}"}), {}, "STOP: expected a list (a JSON array), got set"),
    ("bytes for None", reply({"PROMPT": 1, "RETRIES": "b'x'"}), {}, "RETRIES: expected an integer, got bytes"),
    ("set inside a tuple", reply({"PAIR": "(1, {2})"}), {}, "PAIR: the value must be a literal"),
    ("string for list", reply({"STOP": "stop here"}), {}, "STOP: expected a list, got the string"),
    ("list for dict", reply({"LIMITS": [1]}), {}, "LIMITS: expected a dict (a JSON object), got a JSON array"),
    ("empty suggestion", reply({}), {}, '"suggestion" is empty'),
    ("list suggestion", reply(["RETRIES", 3]), {}, '"suggestion" must be a JSON object {name: value}, got a JSON '
                                                   'array'),
    ("null suggestion", reply(None), {}, '"suggestion" must be a JSON object'),
    ("no suggestion", json.dumps({"reasoning": "thinking"}), {}, 'the reply has no "suggestion"'),
    ("terminate only", "TERMINATE", {}, "the reply says TERMINATE"),
    ("terminate suggestion", reply("TERMINATE"), {}, "the suggestion says TERMINATE"),
    ("empty reply", "   \n", {}, "the reply is empty"),
    ("json array reply", "[1, 2]", {}, "a JSON array instead of a JSON object"),
    ("prose only", "I think RETRIES should be 3.", {}, "no JSON object"),
    ("duplicate keys differ", '{"suggestion": {"RETRIES": 3, "RETRIES": 4}}', {}, "RETRIES: given more than once"),
    ("name and key differ", '{"suggestion": {"RETRIES": 3, "app:RETRIES": 4}}', {}, "RETRIES: given more than once"),
    ("code syntax error", reply({"parse": "def parse(reply: str, *, strict=False) -> int:\n    return int(reply"}),
     {}, "parse: the new code does not parse"),
    ("code renamed", reply({"parse": "def parse_int(reply: str, *, strict=False) -> int:\n    return 1"}), {},
     "parse: the function must keep its name `parse`, got `parse_int`"),
    ("code signature changed", reply({"parse": "def parse(reply, strict=False):\n    return 1"}), {},
     "parse: the function must keep its parameters (reply: str, *, strict=False), got (reply, strict=False)"),
    ("code parameter dropped", reply({"parse": "def parse(reply):\n    return 1"}), {},
     "parse: the function must keep its parameters"),
    ("code default dropped", reply({"parse": "def parse(reply, *, strict):\n    return 1"}), {},
     "parse: the function must keep its parameters"),
    ("code async dropped", reply({"Agent.act": "def act(self, obs):\n    return None"}), {},
     "Agent.act: the function must stay `async def act`"),
    ("code with import", reply({"parse": "import re\n" + PARSE}), {}, "exactly one function definition"),
    ("code with two defs", reply({"parse": PARSE + "\n\ndef helper():\n    pass"}), {},
     "exactly one function definition"),
    ("code as a number", reply({"parse": 5}), {}, "parse: expected the complete new function definition as a "
                                                  "string, got an integer"),
    ("code empty", reply({"parse": ""}), {}, "parse: the new code is empty"),
    ("code huge", reply({"parse": PARSE + "\n" + "    # pad\n" * 2000}), {}, "more than the limit of 8000"),
    ("code only a body", reply({"parse": "return int(reply)"}), {}, "got 0 def(s) and 1 other statement(s)"),
    # JSON "\ud800" is half a UTF-16 pair: json decodes it to a str no UTF-8 file (patch, run state) can hold
    ("lone surrogate", '{"suggestion": {"PROMPT": "Answer \\ud800 briefly."}}', {},
     "PROMPT: the value holds \\ud800, a lone UTF-16 surrogate, which is not valid Unicode"),
    ("lone low surrogate in a list", '{"suggestion": {"STOP": ["\\udfff"]}}', {}, "STOP: the value holds \\udfff"),
    ("lone surrogate in a dict key", '{"suggestion": {"LIMITS": {"\\udc00": 1}}}', {}, "LIMITS: the value holds"),
    ("lone surrogate in code", '{"suggestion": {"parse": "def parse(reply: str, *, strict=False) -> int:\\n'
     '    return \'\\ud83d\'"}}', {}, "parse: the value holds \\ud83d, a lone UTF-16 surrogate"),
    ("lone surrogate sent raw", reply({"PROMPT": "Answer \ud800"}).replace("\\ud800", "\ud800"), {},
     "PROMPT: the value holds \\ud800"),
]

ACCEPTED = [
    ("plain", reply({"RETRIES": 3}), {"app:RETRIES": 3}),
    ("surrogate pair", '{"suggestion": {"PROMPT": "Answer \\ud83d\\ude00"}}', {"app:PROMPT": "Answer \U0001f600"}),
    ("full key as name", reply({"app:RETRIES": 3}), {"app:RETRIES": 3}),
    ("string False for bool", reply({"VERBOSE": "False"}), {"app:VERBOSE": False}),
    ("string false for bool", reply({"VERBOSE": "false"}), {"app:VERBOSE": False}),
    ("string list for list", reply({"STOP": "[1, 2]"}), {"app:STOP": [1, 2]}),
    ("string JSON list for list", reply({"STOP": '["END", "\\n"]'}), {"app:STOP": ["END", "\n"]}),
    ("number as string for int", reply({"RETRIES": "5"}), {"app:RETRIES": 5}),
    ("integral float for int", reply({"RETRIES": 3.0}), {"app:RETRIES": 3}),
    ("int for float", reply({"TEMPERATURE": 1}), {"app:TEMPERATURE": 1.0}),
    ("string number for float", reply({"TEMPERATURE": " 0.25 "}), {"app:TEMPERATURE": 0.25}),
    ("list for tuple", reply({"PAIR": [3, 4]}), {"app:PAIR": (3, 4)}),
    ("dict", reply({"LIMITS": {"low": 2, "high": 9}}), {"app:LIMITS": {"low": 2, "high": 9}}),
    ("string that looks like a list stays a string", reply({"PROMPT": "[1, 2]"}), {"app:PROMPT": "[1, 2]"}),
    ("string False for str stays a string", reply({"PROMPT": "False"}), {"app:PROMPT": "False"}),
    ("prose around json", "Sure! Here is my answer:\n" + reply({"RETRIES": 3}) + "\nHope this helps.",
     {"app:RETRIES": 3}),
    ("json code fence", "```json\n" + reply({"RETRIES": 3}) + "\n```", {"app:RETRIES": 3}),
    ("fence with prose", "Reasoning first.\n```\n" + reply({"RETRIES": 3}) + "\n```\nDone.", {"app:RETRIES": 3}),
    ("braces inside strings", 'Here: {"reasoning": "a } and a {", "suggestion": {"PROMPT": "Say {x} }"}} ok',
     {"app:PROMPT": "Say {x} }"}),
    ("example object in prose first", 'Format {"a": 1} noted. ' + reply({"RETRIES": 4}), {"app:RETRIES": 4}),
    ("nested json in a string", json.dumps({"reasoning": "r", "suggestion": json.dumps({"RETRIES": 4})}),
     {"app:RETRIES": 4}),
    ("names at the top level", json.dumps({"reasoning": "r", "RETRIES": 4}), {"app:RETRIES": 4}),
    ("suggestions plural", json.dumps({"suggestions": {"RETRIES": 4}}), {"app:RETRIES": 4}),
    ("duplicate keys same value", '{"suggestion": {"RETRIES": 3, "RETRIES": 3}}', {"app:RETRIES": 3}),
    ("terminate inside reasoning", reply({"RETRIES": 3}, reasoning="no need to TERMINATE yet"), {"app:RETRIES": 3}),
    ("name in backticks", reply({"`RETRIES`": 3}), {"app:RETRIES": 3}),
    ("code", reply({"parse": "def parse(reply: str, *, strict=False) -> int:\n    return int(reply.strip())"}),
     {"app:parse": "def parse(reply: str, *, strict=False) -> int:\n    return int(reply.strip())"}),
    ("code with decorator and fence", reply({"parse": "```python\n@tracec.trainable\ndef parse(reply: str, *, "
                                                      "strict=False) -> int:\n    return 0\n```"}),
     {"app:parse": "def parse(reply: str, *, strict=False) -> int:\n    return 0"}),
    ("code indented", reply({"parse": "    def parse(reply, *, strict=True):\n        return 1\n"}),
     {"app:parse": "def parse(reply, *, strict=True):\n    return 1"}),
    ("method by qualname", reply({"Agent.act": "async def act(self, obs):\n    return [obs]"}),
     {"pkg.agent:Agent.act": "async def act(self, obs):\n    return [obs]"}),
    ("code reformatted is unchanged", reply({"parse": "def parse(reply:str,*,strict=False)->int:\n  return int(reply)"}),
     {"app:parse": PARSE}),
]


@pytest.mark.parametrize("text, values, problem", [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_unusable_reply_entries_become_problems(text, values, problem):
    proposal = parse_reply(text, VARIABLES)
    assert proposal.values == values
    assert any(problem in p for p in proposal.problems), proposal.problems
    assert all("\n" not in p and len(p) < 400 for p in proposal.problems)


@pytest.mark.parametrize("text, values", [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_usable_replies_give_typed_values(text, values):
    proposal = parse_reply(text, VARIABLES)
    assert proposal.problems == ()
    assert proposal.values == values
    for key, value in values.items():
        assert type(proposal.values[key]) is type(value)


def test_reasoning_is_kept_and_non_string_reasoning_is_text():
    assert parse_reply(reply({"RETRIES": 3}, reasoning="lower is worse"), VARIABLES).reasoning == "lower is worse"
    assert parse_reply(reply({"RETRIES": 3}, reasoning=["a", "b"]), VARIABLES).reasoning == '["a", "b"]'


def test_good_entries_survive_bad_neighbours():
    proposal = parse_reply(reply({"RETRIES": 3, "VERBOSE": "maybe", "NOPE": 1}), VARIABLES)
    assert proposal.values == {"app:RETRIES": 3}
    assert len(proposal.problems) == 2


def test_unknown_name_problem_lists_the_real_names_and_quotes_at_most_a_bit():
    (problem,) = parse_reply(reply({"x" * 5000: 1}), VARIABLES).problems
    assert "PROMPT, RETRIES" in problem and "Agent.act" in problem
    assert len(problem) < 400


def test_names_shared_by_two_modules_must_be_module_qualified():
    two = [Variable("a:LIMIT", "value", 1, None, "a.py", 1), Variable("b:LIMIT", "value", 1, None, "b.py", 1)]
    assert parse_reply(reply({"a.LIMIT": 5, "b:LIMIT": 6}), two).values == {"a:LIMIT": 5, "b:LIMIT": 6}
    assert "unknown name 'LIMIT'" in parse_reply(reply({"LIMIT": 5}), two).problems[0]


def test_a_parameter_that_is_none_takes_any_literal():
    none = [Variable("m:DEFAULT", "value", None, None, "m.py", 1)]
    assert parse_reply(reply({"DEFAULT": [1, "a"]}), none).values == {"m:DEFAULT": [1, "a"]}


def test_a_long_value_is_allowed_up_to_four_times_the_old_one():
    long = [Variable("m:TEXT", "value", "y" * 3000, None, "m.py", 1)]
    assert parse_reply(reply({"TEXT": "z" * 11_000}), long).values == {"m:TEXT": "z" * 11_000}
    assert "limit of 12000" in parse_reply(reply({"TEXT": "z" * 13_000}), long).problems[0]


def test_random_garbage_never_raises():
    rng = random.Random(7)
    alphabet = '{}[]":,\\ntruefalsnul0123456789.-eE `TERMINATE suggestion reasoning RETRIES parse def ()'
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        proposal = parse_reply(text, VARIABLES)
        assert proposal.values or proposal.problems


def test_deeply_nested_json_is_a_problem_not_a_crash():
    proposal = parse_reply('{"suggestion": {"STOP": ' + "[" * 100_000 + "]" * 100_000 + "}}", VARIABLES)
    assert proposal.values == {} and proposal.problems

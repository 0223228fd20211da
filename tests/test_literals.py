"""One rule for the values tracec can write back: `tracec.param`, `tracec check` (TC101), the patch writer
and the reply checker give the same verdict on the same value."""

from __future__ import annotations

import json

import pytest
from test_patch import rewrite, value

import tracec
from tracec.commands.check_rules import annotation_problems
from tracec.optimize.prompt import Variable
from tracec.optimize.reply import parse_reply
from tracec.patches.splice import PatchError

# (how the value is spelled in source, whether tracec can write it back)
SPELLINGS = [
    ("'Answer in one word.'", True), ("3", True), ("2.5", True), ("-0.0", True), ("True", True),
    ("None", True), ("()", True), ("[1, (2, {'k': [None, 1e300]})]", True), ("{'a': 1, 2: 'b'}", True),
    ("{1, 2}", False), ("b'x'", False), ("1j", False), ("1e999", False), ("-1e999", False),
    ("(1, {2})", False), ("[1, [2, [b'deep']]]", False), ("frozenset()", False),
]
IDS = [spelling for spelling, _ in SPELLINGS]


@pytest.mark.parametrize("spelling, writable", SPELLINGS, ids=IDS)
def test_param_accepts_exactly_the_writable_values(spelling, writable):
    if writable:
        assert repr(tracec.param(eval(spelling))) == repr(eval(spelling))
    else:
        with pytest.raises(TypeError, match="must be a literal"):
            tracec.param(eval(spelling))


@pytest.mark.parametrize("spelling, writable", SPELLINGS, ids=IDS)
def test_check_flags_exactly_the_unwritable_values(spelling, writable):
    source = f"import tracec\n\nX = tracec.param({spelling})\n"
    assert [p.code for p in annotation_problems(source, "m.py")] == ([] if writable else ["TC101"])


@pytest.mark.parametrize("spelling, writable", SPELLINGS, ids=IDS)
def test_patch_writes_exactly_the_writable_values_and_they_read_back(spelling, writable):
    new = eval(spelling)
    if not writable:
        with pytest.raises(PatchError, match="must be a literal"):
            rewrite("import tracec\nX = tracec.param(0)\n", value(2, new))
        return
    namespace: dict = {}
    exec(rewrite("import tracec\nX = tracec.param(0)\n", value(2, new)), namespace)
    assert repr(namespace["X"]) == repr(new)


def test_reply_refuses_a_value_the_patch_writer_could_not_write():
    variables = [Variable("app:PAIR", "value", (1, 2), None, "app.py", 9)]
    for text, ok in [("(1, 2.5)", True), ("(1, {2})", False), ("(1, b'x')", False), ("(1, 1e999)", False)]:
        result = parse_reply(json.dumps({"reasoning": "r", "suggestion": {"PAIR": text}}), variables)
        assert bool(result.values) == ok, (text, result)

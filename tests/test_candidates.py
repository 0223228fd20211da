"""Candidates: recompiled trainable code extends a live module's table and records like the original
(the compiler's `first_ids`), a candidate becomes files through the patch writer's splice, and a class
attribute param is reached through attribute reads."""

from __future__ import annotations

import types

import pytest
from support import load_module

import tracec
from tracec.transforms import instrument_source

SOURCE = """\
import tracec

SCALE = tracec.param(2, doc="multiplier")


@tracec.trainable
def double(x):
    y = x * SCALE
    return y


@tracec.trace
def use(x):
    z = double(x)
    return z + 1
"""

CANDIDATE = SOURCE.replace("    y = x * SCALE\n", "    y = x * SCALE\n    y = y + 100\n")


def test_first_ids_number_new_entries_after_the_live_table(tmp_path):
    module = load_module(tmp_path, "cand_ids", SOURCE, instrument=True, all_functions=False)
    hooks = module._tracec_m
    before = (len(hooks.table.functions), len(hooks.table.statements), len(hooks.table.params))
    result = instrument_source(CANDIDATE, path="cand_ids.py", module="cand_ids", first_ids=before)
    functions, statements, params = result.tables
    assert [f[0] for f in functions] == ["double", "use"]
    assert len(statements) == before[1] + 1          # one statement more than the original module
    assert all(st[0] >= before[0] for st in statements)   # statements name the new function ids
    hooks.extend(*result.tables)
    assert len(hooks.table.statements) == 2 * before[1] + 1


def test_swapped_code_object_records_the_candidate_statements(tmp_path):
    module = load_module(tmp_path, "cand_swap", SOURCE, instrument=True, all_functions=False)
    hooks = module._tracec_m
    first_ids = (len(hooks.table.functions), len(hooks.table.statements), len(hooks.table.params))
    result = instrument_source(CANDIDATE, path="cand_swap.py", module="cand_swap", first_ids=first_ids)
    hooks.extend(*result.tables)
    compiled = compile(result.code, "cand_swap.py", "exec")
    code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType) and c.co_name == "double")
    original = module.double.__code__
    module.double.__code__ = code
    try:
        with tracec.record() as run:
            assert module.use(3) == 107
        codes = [n.code for n in run.nodes]
        assert "y = y + 100" in codes
        run.feedback(run.outputs[-1], "too big", score=0.0)
        reached = run.backward()
        assert {"cand_swap:double", "cand_swap:SCALE"} <= set(reached)
    finally:
        module.double.__code__ = original
    assert module.use(3) == 7


def test_candidate_files_are_the_patch_writers_splice_and_skip_unchanged_values(tmp_path):
    from tracec.optimize.candidates import CandidateSources, TrialError, find_targets

    module = load_module(tmp_path, "cand_files", SOURCE, instrument=True, all_functions=False)
    sources = CandidateSources(tmp_path, find_targets([module._tracec_m]), {"cand_files.py": SOURCE})
    initial = {"cand_files:SCALE": 2}
    assert sources.files({"cand_files:SCALE": 2}, initial) == {}     # equal to the source: no file changes
    (text,) = sources.files({"cand_files:SCALE": 3, "cand_files:double": "def double(x):\n    return x * 10"},
                            initial).values()
    assert 'SCALE = tracec.param(3, doc="multiplier")' in text and "    return x * 10\n" in text
    assert "@tracec.trainable\ndef double(x):" in text                # the decorator stays
    with pytest.raises(TrialError, match="does not parse"):
        sources.files({"cand_files:double": "def double(x):\n    return (\n"}, initial)


CLASS_SOURCE = """\
import tracec


class Agent:
    PROMPT = tracec.param("Be brief.", doc="system prompt")

    @tracec.trace
    def act(self, question):
        text = self.PROMPT + " " + question
        return text
"""


def test_class_level_param_is_linked_through_attribute_reads(tmp_path):
    module = load_module(tmp_path, "cand_cls", CLASS_SOURCE, instrument=True, all_functions=False)
    agent = module.Agent()
    with tracec.record() as run:
        agent.act("hi?")
    run.feedback(run.outputs[-1], "too terse", score=0.0)
    reached = run.backward()
    assert "cand_cls:Agent.PROMPT" in reached            # reached through `self.PROMPT`
    param = run.nodes[reached["cand_cls:Agent.PROMPT"].param.node]
    assert param.value == "'Be brief.'"

"""Candidates tried in the running process: recompiled trainable code extends the live module's table,
runs through every existing reference, records like the original, and is undone exactly."""

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


def _live(tmp_path, name):
    from tracec.optimize.candidates import LiveParams, find_targets

    module = load_module(tmp_path, name, SOURCE, instrument=True, all_functions=False)
    targets = find_targets([module._tracec_m])
    return module, LiveParams(tmp_path, targets, {f"{name}.py": SOURCE})


def test_live_params_install_values_and_code_then_restore(tmp_path):
    module, live = _live(tmp_path, "cand_live")
    keep = module.double          # a reference taken before: it must run the candidate too
    assert set(live.targets) == {"cand_live:SCALE", "cand_live:double"}
    code = "def double(x):\n    return x * SCALE * 10\n"
    live.install({"cand_live:SCALE": 3, "cand_live:double": code})
    assert module.use(2) == 61 and keep(1) == 30
    with tracec.record() as run:
        module.use(2)
    assert any(n.code == "return x * SCALE * 10" for n in run.nodes)
    live.restore()
    assert module.use(2) == 5 and module.SCALE == 2


def test_live_params_refuse_a_candidate_that_cannot_be_swapped(tmp_path):
    from tracec.optimize.candidates import TrialError

    module, live = _live(tmp_path, "cand_bad")
    with pytest.raises(TrialError):
        live.install({"cand_bad:double": "def double(x):\n    return (\n"})
    assert module.use(2) == 5          # nothing half-installed


CLASS_SOURCE = """\
import tracec


class Agent:
    PROMPT = tracec.param("Be brief.", doc="system prompt")

    @tracec.trace
    def act(self, question):
        text = self.PROMPT + " " + question
        return text
"""


def test_class_level_param_is_linked_through_attribute_reads_and_tried_on_the_class(tmp_path):
    from tracec.optimize.candidates import LiveParams, find_targets

    module = load_module(tmp_path, "cand_cls", CLASS_SOURCE, instrument=True, all_functions=False)
    agent = module.Agent()
    with tracec.record() as run:
        agent.act("hi?")
    run.feedback(run.outputs[-1], "too terse", score=0.0)
    reached = run.backward()
    assert "cand_cls:Agent.PROMPT" in reached            # reached through `self.PROMPT`
    param = run.nodes[reached["cand_cls:Agent.PROMPT"].param.node]
    assert param.value == "'Be brief.'"
    live = LiveParams(tmp_path, find_targets([module._tracec_m]), {"cand_cls.py": CLASS_SOURCE})
    live.install({"cand_cls:Agent.PROMPT": "Explain."})
    assert agent.act("hi?") == "Explain. hi?"
    with tracec.record() as run:
        agent.act("x")
    run.feedback(run.outputs[-1], "ok", score=1.0)
    assert run.nodes[run.backward()["cand_cls:Agent.PROMPT"].param.node].value == "'Explain.'"
    live.restore()
    assert agent.act("hi?") == "Be brief. hi?"

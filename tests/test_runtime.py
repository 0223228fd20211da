"""The runtime on its own: dependency boundary, whole-process recording, feedback errors."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support import load_module

import tracec


def test_instrumented_code_needs_only_the_standard_library_runtime():
    probe = ("import sys, tracec.runtime; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('libcst', 'black', 'litellm', 'rich')"
             " or m.startswith('tracec.transforms')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runtime_sources_import_nothing_from_the_other_layers():
    runtime_dir = os.path.join(os.path.dirname(tracec.runtime.__file__))
    for name in os.listdir(runtime_dir):
        if name.endswith(".py"):
            text = open(os.path.join(runtime_dir, name), encoding="utf-8").read()
            assert "import libcst" not in text and "tracec.transforms" not in text and "from tracec" not in text


def test_tracec_record_env_records_the_whole_process(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent("""
        import tracec
        @tracec.trace
        def double(x):
            y = x * 2
            return y
        print(sum(double(i) for i in range(5)))
        """))
    from tracec.transforms import instrument_source
    result = instrument_source(program.read_text(), path="prog.py", module="prog")
    program.write_text(result.code)
    graph = tmp_path / "graph.json"
    env = {**os.environ, "TRACEC_RECORD": "1", "TRACEC_GRAPH": str(graph), "TRACEC_MAX_NODES": "7"}
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "20" and done.stderr == ""
    data = json.loads(graph.read_text())
    assert data["version"] == 1 and len(data["nodes"]) == 7 and data["truncated"] is True
    assert data["nodes"][0]["function"] == "prog.double" and data["nodes"][0]["kind"] == "input"


def test_feedback_rejects_what_is_not_in_the_recording(tmp_path):
    module = load_module(tmp_path, "fb_mod", "import os\ndef f(x):\n    return x + 1\n", instrument=True)
    with tracec.record() as run:
        module.f(1)
    with pytest.raises(IndexError, match="1 outputs"):
        run.feedback(3, "nope")
    with pytest.raises(TypeError):
        run.feedback("0", "nope")
    fb = run.feedback(-1, "too small", score=0.25)
    assert fb.node == run.outputs[0].id and run.to_json()["feedback"] == [
        {"node": fb.node, "text": "too small", "score": 0.25}]


def test_a_failing_repr_never_breaks_the_program(tmp_path):
    module = load_module(tmp_path, "repr_mod", """
        import os
        class Weird:
            def __repr__(self):
                raise RuntimeError("no repr")
        def make():
            w = Weird()
            return w
        """, instrument=True)
    with tracec.record() as run:
        assert isinstance(module.make(), module.Weird)
    assert "Weird" in run.outputs[0].value and run.internal_errors == 0


def test_code_instrumented_by_an_incompatible_tracec_fails_with_a_clear_message(tmp_path):
    from tracec.transforms import instrument_source
    result = instrument_source("import os\ndef f():\n    return 1\n", path="old.py", module="old", all_functions=True)
    from tracec.runtime.tables import TABLE_FORMAT
    stale = result.code.replace(f"_tracec_rt.module({TABLE_FORMAT}, ", "_tracec_rt.module(99, ", 1)
    assert stale != result.code
    with pytest.raises(ImportError, match=r"old.py: instrumented by an incompatible tracec .*`tracec instrument`"):
        exec(compile(stale, "old.py", "exec"), {})

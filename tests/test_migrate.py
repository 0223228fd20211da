"""`tracec migrate`: Trace programs (written here, in Trace's real API) in, tracec annotations out."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest
from support import TRACEC, assert_transform

from tracec.transforms.migrate import migrate_source


def migrate(before: str):
    result = migrate_source(textwrap.dedent(before), path="app.py")
    assert result.error is None, str(result.error)
    compile(result.code, "app.py", "exec")
    return result


def check(before: str, after: str, problems: tuple[str, ...] = ()) -> None:
    assert_transform(lambda source: migrate(source).code, before, after)
    assert [str(p) for p in migrate(before).problems] == list(problems)


def test_trainable_nodes_and_bundles_become_params_and_trainable_functions():
    check('''
        """A Trace workflow."""
        from opto.trace import node, bundle

        PROMPT = node("Answer in one word.", trainable=True, description="[ParameterNode] system prompt")
        LIMIT = node(3, trainable=True, name="limit", constraint="a positive int")

        @bundle(trainable=True, description="[parse] turns the reply into the answer")
        def parse(reply):
            return reply.strip().split()[-1]

        @bundle()
        def solve(question):
            return parse(call_llm(PROMPT.data, question))[:LIMIT.data]
        ''', '''
        """A Trace workflow."""
        import tracec

        PROMPT = tracec.param("Answer in one word.", doc="system prompt")
        LIMIT = tracec.param(3, name="limit", doc="a positive int")

        @tracec.trainable(doc="turns the reply into the answer")
        def parse(reply):
            return reply.strip().split()[-1]

        @tracec.trace
        def solve(question):
            return parse(call_llm(PROMPT, question))[:LIMIT]
        ''')


def test_module_alias_style_model_classes_and_self_params():
    check('''
        from opto import trace

        @trace.model
        class Agent:
            """Answers questions."""

            def __init__(self):
                self.instruction = trace.node("Be brief.", trainable=True, description="how to answer")

            @trace.bundle(description="[act] one step")
            def act(self, x):
                return self.instruction.data + x
        ''', '''
        import tracec

        class Agent:
            """Answers questions."""
            instruction = tracec.param("Be brief.", doc="how to answer")

            def __init__(self):
                pass

            @tracec.trace(doc="one step")
            def act(self, x):
                return self.instruction + x
        ''')


def test_what_cannot_be_mapped_is_left_unchanged_and_reported():
    before = '''
        import opto.trace as trace
        from opto.trace import node, bundle, model

        CONTEXT = node(load_context(), trainable=True)
        plain = node("x")
        PROMPT = node("hi", trainable=True)
        PROMPT = PROMPT + "!"

        @bundle(trainable=True, allow_external_dependencies=True)
        def step(x):
            return x

        @model
        class Policy:
            def __init__(self):
                self.examples = node(["a", "b"], trainable=True)

            def forward(self, x):
                return x

        def main():
            out = step(PROMPT)
            return out.data
        '''
    result = migrate(before)
    assert [str(p).split(": ", 1)[0] for p in result.problems] == [
        "app.py:5:11", "app.py:6:9", "app.py:10:1", "app.py:14:1", "app.py:17:25", "app.py:24:12"]
    messages = [p.message for p in result.problems]
    assert "must be a literal" in messages[0] and "not trainable" in messages[1]
    assert "allow_external_dependencies" in messages[2] and "callable" in messages[3]
    assert "shared by every instance" in messages[4] and "`out.data`" in messages[5]
    code = result.code
    # the one safe change was made; every reported line is as it was; imports still used are kept
    assert 'PROMPT = tracec.param("hi")' in code and "from opto.trace import node, bundle, model" in code
    for line in ("CONTEXT = node(load_context(), trainable=True)", "@bundle(trainable=True, allow_external",
                 "@model", 'self.examples = node(["a", "b"], trainable=True)', "return out.data"):
        assert line in code
    assert "import opto.trace as trace" not in code    # nothing reads `trace` any more


def test_data_is_kept_on_a_param_that_is_rebound():
    result = migrate('''
        from opto.trace import node
        N = node(1, trainable=True)
        N = 2
        print(N.data)
        ''')
    assert "print(N.data)" in result.code and "N = tracec.param(1)" in result.code
    assert [p.line for p in result.problems] == [5]


@pytest.mark.parametrize("source", ["x = node('a', trainable=True)\n", "import tracec\n"])
def test_a_module_that_does_not_import_trace_is_left_alone(source):
    result = migrate(source)
    assert not result.changed and result.problems == ()


def test_syntax_error_is_reported_with_its_position():
    result = migrate_source("from opto.trace import node\nx = (\n", path="bad.py")
    assert result.code is None and str(result.error).startswith("bad.py:")


def test_migrate_then_apply_through_the_installed_command(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    source = textwrap.dedent('''\
        from opto.trace import node, bundle

        GREETING = node("Hello", trainable=True, description="how to greet")


        @bundle(trainable=True)
        def greet(name):
            return GREETING.data + ", " + name


        if __name__ == "__main__":
            print(greet("Ada"))
        ''')
    (tmp_path / "app.py").write_text(source)
    diff = subprocess.run([TRACEC, "migrate", "app.py", "--diff"], cwd=tmp_path, capture_output=True, text=True)
    assert diff.returncode == 0, diff.stderr
    assert '+GREETING = tracec.param("Hello", doc="how to greet")' in diff.stdout
    assert not (tmp_path / ".tracec").exists() and (tmp_path / "app.py").read_text() == source

    done = subprocess.run([TRACEC, "migrate", "."], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ".tracec/patches/0001-app-GREETING.patch"
    assert (tmp_path / "app.py").read_text() == source, "migrate itself never edits a source file"
    assert subprocess.run([TRACEC, "apply"], cwd=tmp_path, capture_output=True).returncode == 0
    migrated = (tmp_path / "app.py").read_text()
    assert "opto" not in migrated and "@tracec.trainable\ndef greet" in migrated

    run = subprocess.run([TRACEC, "run", "--graph", "g.json", "app.py"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0 and run.stdout == "Hello, Ada\n", run.stderr
    graph = json.loads((tmp_path / "g.json").read_text())
    assert {p["key"] for p in graph["params"]} >= {"app:GREETING", "app:greet"}


def test_problems_exit_1_and_a_missing_path_exits_2(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "app.py").write_text("from opto.trace import node\nx = node(f(), trainable=True)\n")
    result = subprocess.run([TRACEC, "migrate", "app.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.startswith("app.py:2:5: ")
    assert not (tmp_path / ".tracec").exists()
    missing = subprocess.run([TRACEC, "migrate", "nope.py"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.py" in missing.stderr

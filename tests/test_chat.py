"""tracec.chat: a workflow's model call, resolved like `tracec optimize`'s model, against the scripted server."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tracec
from tracec.llm.common import LLMError


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACEC_MODEL", raising=False)
    monkeypatch.delenv("TRACEC_API_BASE", raising=False)
    return tmp_path


def test_pyproject_settings_reach_the_server_and_replies_are_cached(project, scripted_llm):
    server = scripted_llm(lambda request: "Hello, " + request["messages"][-1]["content"] + "!")
    (project / "pyproject.toml").write_text(f'[tool.tracec]\nmodel = "openai/scripted"\napi_base = "{server.url}"\n')
    assert tracec.chat("Greet the user.", "Ada") == "Hello, Ada!"
    assert server.requests[0]["messages"] == [{"role": "system", "content": "Greet the user."},
                                              {"role": "user", "content": "Ada"}]
    assert server.requests[0]["temperature"] == 0
    assert tracec.chat("Greet the user.", "Ada") == "Hello, Ada!"   # same question: from the disk cache
    assert len(server.requests) == 1
    assert list((project / ".tracec" / "cache" / "llm").rglob("*.json"))
    assert tracec.chat("Greet the user warmly.", "Ada") == "Hello, Ada!"   # a new prompt is a new call
    assert len(server.requests) == 2


def test_environment_variables_name_the_model_and_server(project, scripted_llm, monkeypatch):
    server = scripted_llm(["from env"])
    (project / "pyproject.toml").write_text("[tool.tracec]\ncache = false\n")
    monkeypatch.setenv("TRACEC_MODEL", "openai/scripted")
    monkeypatch.setenv("TRACEC_API_BASE", server.url)
    assert tracec.chat("s", "u") == "from env"
    assert server.requests[0]["model"] == "scripted"
    assert not (project / ".tracec" / "cache").exists()           # cache = false is honoured


def test_arguments_beat_the_project_settings(project, scripted_llm):
    configured, given = scripted_llm(["configured"]), scripted_llm(["given"])
    (project / "pyproject.toml").write_text(
        f'[tool.tracec]\nmodel = "openai/other"\napi_base = "{configured.url}"\ncache = false\n')
    assert tracec.chat("s", "u", model="openai/scripted", api_base=given.url, max_tokens=7) == "given"
    assert configured.requests == [] and given.requests[0]["max_tokens"] == 7


def test_unreachable_server_is_a_one_line_error(project):
    (project / "pyproject.toml").write_text(
        '[tool.tracec]\nmodel = "openai/scripted"\napi_base = "http://127.0.0.1:9/v1"\ncache = false\n')
    with pytest.raises(LLMError) as error:
        tracec.chat("s", "u")
    assert "\n" not in str(error.value) and "127.0.0.1:9" in str(error.value)


def test_import_tracec_does_not_load_the_model_stack(project):
    code = ("import sys, tracec; heavy = [m for m in ('litellm', 'tracec.llm.chat', 'tracec.optimize.config') "
            "if m in sys.modules]; print(heavy, callable(tracec.chat), 'litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "False"]

"""Settings precedence for `tracec optimize`: flags > [tool.tracec] > TRACEC_MODEL > the embedded model."""

from __future__ import annotations

import pytest

from tracec.llm.common import LOCAL_MODEL
from tracec.optimize.config import ConfigError, resolve


def project(tmp_path, table: str = ""):
    (tmp_path / "pyproject.toml").write_text(f"[tool.tracec]\n{table}" if table else "[project]\nname = 'x'\n")
    return tmp_path


def test_default_is_the_embedded_model(tmp_path):
    config = resolve(project(tmp_path), {}, environ={})
    assert config.model == LOCAL_MODEL and config.model_source == "default"


def test_environment_then_pyproject_then_flags(tmp_path):
    assert resolve(project(tmp_path), {}, environ={"TRACEC_MODEL": "openai/env"}).model == "openai/env"
    root = project(tmp_path, 'model = "openai/from-pyproject"\nsteps = 9\nbatch-size = 3\n')
    config = resolve(root, {"steps": None}, environ={"TRACEC_MODEL": "openai/env"})
    assert (config.model, config.steps, config.batch_size, config.model_source) == \
        ("openai/from-pyproject", 9, 3, "pyproject.toml")
    config = resolve(root, {"model": "openai/flag", "steps": 2}, environ={"TRACEC_MODEL": "openai/env"})
    assert (config.model, config.steps, config.model_source) == ("openai/flag", 2, "--model")


@pytest.mark.parametrize("table, message", [
    ("steps = 0\n", "steps must be at least 1"),
    ('steps = "5"\n', "steps must be int"),
    ("budget_usd = -1\n", "budget_usd must not be negative"),
    ("cache = 1\n", "cache must be bool"),
    ("stepz = 5\n", "unknown key 'stepz'"),
    ("steps = [\n", "invalid TOML"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, table, message):
    with pytest.raises(ConfigError) as info:
        resolve(project(tmp_path, table), {}, environ={})
    assert message in str(info.value) and "pyproject.toml" in str(info.value)


def test_api_base_from_the_environment_is_overridden_by_pyproject_and_the_flag(tmp_path):
    env = {"TRACEC_API_BASE": "http://env:1/v1"}
    assert resolve(project(tmp_path), {}, environ=env).api_base == "http://env:1/v1"
    root = project(tmp_path, 'api_base = "http://pyproject:2/v1"')
    assert resolve(root, {}, environ=env).api_base == "http://pyproject:2/v1"
    assert resolve(root, {"api_base": "http://flag:3/v1"}, environ=env).api_base == "http://flag:3/v1"

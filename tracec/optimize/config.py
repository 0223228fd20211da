"""Settings for `tracec optimize`: command-line flags > `[tool.tracec]` in pyproject.toml > environment
(`TRACEC_MODEL`, `TRACEC_API_BASE`) > built-in defaults (the embedded local model).

Each setting is declared once, as a field of `OptimizeConfig` made by `_setting`: its TOML type, default,
lower bound and one-line meaning live there, and both the checks below and the README's `[tool.tracec]`
reference (`python -m tracec.clidoc`) are derived from it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from tracec.errors import UsageError
from tracec.llm.common import LOCAL_MODEL  # litellm is imported only when a call is made

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(UsageError):
    """A bad setting; the message names where it came from."""


# lower bounds: "at least 1" (counts), "not negative" (money), "positive" (a duration)
AT_LEAST_1, NOT_NEGATIVE, POSITIVE = "at least 1", "not negative", "positive"


def _setting(kind: type, default, doc: str, bound: str | tuple | None = None):
    """A `[tool.tracec]` key: its TOML type, default, optional lower bound (or the tuple of the values
    allowed), and one-line meaning."""
    return field(default=default, metadata={"type": kind, "doc": doc, "bound": bound})


@dataclass(frozen=True)
class OptimizeConfig:
    model: str = _setting(str, LOCAL_MODEL, "litellm model string, e.g. `openai/gpt-4o-mini`, "
                          "`anthropic/claude-3-5-haiku-latest`, `ollama/llama3`")
    api_base: str | None = _setting(str, None, "base URL of an OpenAI-compatible server "
                                    "(use with `model = \"openai/NAME\"`)")
    steps: int = _setting(int, 5, "optimization steps", AT_LEAST_1)
    batch_size: int = _setting(int, 4, "train examples recorded per step", AT_LEAST_1)
    seed: int = _setting(int, 0, "seed for minibatch sampling and the model")
    search: str = _setting(str, "pareto", "`pareto`: a pool of candidates, parents drawn from the per-example "
                           "Pareto front, children validated only after beating their parent on its minibatch, "
                           "members merged; `greedy`: one proposal per step on the best, each validated",
                           ("pareto", "greedy"))
    proposals: int = _setting(int, 2, "children asked for per step (parallel LLM calls, sampled differently; "
                              "`greedy` asks for one)", AT_LEAST_1)
    repeats: int | None = _setting(int, None, "runs per example for a stochastic task, scored by their mean "
                                   "(default: the task file's `repeats`, else 1)", AT_LEAST_1)
    budget_usd: float | None = _setting(float, None, "stop before a call whose worst-case cost would pass "
                                        "this many dollars (litellm's prices); no limit when unset",
                                        NOT_NEGATIVE)
    max_metric_calls: int | None = _setting(int, None, "stop before an evaluation that would pass this many "
                                            "example evaluations in all (the baseline, minibatches and "
                                            "validation, counted as GEPA counts them); no limit when unset",
                                            AT_LEAST_1)
    max_llm_calls: int | None = _setting(int, None, "stop before a model call that would pass this many calls "
                                         "(replies from the cache are not calls); no limit when unset",
                                         AT_LEAST_1)
    max_tokens: int = _setting(int, 800, "completion tokens per LLM call", AT_LEAST_1)
    workers: int | None = _setting(int, None, "worker processes evaluating examples in parallel, each a fresh "
                                   "fork with a scratch copy of the project (default: the number of cores)",
                                   AT_LEAST_1)
    cache: bool = _setting(bool, True, "reuse LLM replies cached in `.tracec/cache/llm/` "
                           "(`--no-cache` turns it off)")
    trial_timeout: float = _setting(float, 60.0, "seconds to score one candidate before it is stopped "
                                    "and rejected", POSITIVE)
    sandbox: bool = _setting(bool, False, "run the workers under bubblewrap (`bwrap`): the whole filesystem "
                             "read-only but the scratch copies (`--sandbox`)")
    backend: str = _setting(str, "local", "where candidates are evaluated: `local` (worker processes on this "
                            "machine) or `ray` (Ray actors on a cluster; `pip install 'tracec[ray]'`)",
                            ("local", "ray"))
    ray_address: str | None = _setting(str, None, "the Ray cluster to join, e.g. `ray://head:10001` or "
                                       "`10.0.0.5:6379` (default: a local Ray instance tracec starts and stops)")
    ray_excludes: tuple = _setting(list, (), "gitignore-style patterns the project upload to Ray leaves out, "
                                   "beside `.tracec/`, `.git/`, virtualenvs and caches")
    model_source: str = "default"   # where `model` came from, for the run summary (not a setting)


# key -> dataclass field, for every field declared with _setting, in declaration order
SETTINGS = {f.name: f for f in fields(OptimizeConfig) if "doc" in f.metadata}


def read_pyproject(root: Path) -> dict:
    """The `[tool.tracec]` table of root/pyproject.toml (empty when there is none)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get("tracec", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.tracec] must be a table")
    return table


def _checked(key: str, value, where: str):
    kind, bound = SETTINGS[key].metadata["type"], SETTINGS[key].metadata["bound"]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if kind is list:
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
        value = tuple(value)
    if isinstance(bound, tuple) and value not in bound:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(bound)}, got {value!r}")
    if bound == AT_LEAST_1 and value < 1:
        raise ConfigError(f"{where}: {key} must be at least 1, got {value!r}")
    if bound == NOT_NEGATIVE and value < 0:
        raise ConfigError(f"{where}: {key} must not be negative")
    if bound == POSITIVE and value <= 0:
        raise ConfigError(f"{where}: {key} must be positive")
    return value


def resolve(root: Path, flags: dict, environ=os.environ) -> OptimizeConfig:
    """Merge the layers; `flags` holds only options given on the command line (None = not given)."""
    values: dict = {}
    source = "default"
    if environ.get("TRACEC_MODEL"):
        values["model"], source = environ["TRACEC_MODEL"], "TRACEC_MODEL"
    if environ.get("TRACEC_API_BASE"):
        values["api_base"] = environ["TRACEC_API_BASE"]
    where = f"{root / 'pyproject.toml'}: [tool.tracec]"
    for key, value in read_pyproject(root).items():
        key = key.replace("-", "_")
        if key not in SETTINGS:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(SETTINGS))})")
        values[key] = _checked(key, value, where)
        if key == "model":
            source = "pyproject.toml"
    for key, value in flags.items():
        if value is not None:
            values[key] = _checked(key, value, "command line")
            if key == "model":
                source = "--model"
    return OptimizeConfig(**{k: v for k, v in values.items() if k in SETTINGS}, model_source=source)

"""Settings for `tracec optimize`: command-line flags > `[tool.tracec]` in pyproject.toml > environment
(`TRACEC_MODEL`) > built-in defaults (the embedded local model)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from .llm import LOCAL_MODEL   # llm.py imports litellm only when a call is made

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib



class ConfigError(Exception):
    """A bad setting; the message names where it came from."""


@dataclass(frozen=True)
class OptimizeConfig:
    model: str = LOCAL_MODEL
    api_base: str | None = None
    steps: int = 5
    batch_size: int = 4
    seed: int = 0
    budget_usd: float | None = None
    max_tokens: int = 800
    workers: int = 1
    cache: bool = True
    trial_timeout: float = 60.0     # seconds to score one candidate before it is stopped
    model_source: str = "default"   # where `model` came from, for the run summary


_TYPES = {"model": str, "api_base": str, "steps": int, "batch_size": int, "seed": int, "budget_usd": float,
          "max_tokens": int, "workers": int, "cache": bool, "trial_timeout": float}
_POSITIVE = {"steps", "batch_size", "max_tokens", "workers"}


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
    kind = _TYPES[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if key in _POSITIVE and value < 1:
        raise ConfigError(f"{where}: {key} must be at least 1, got {value!r}")
    if key == "budget_usd" and value < 0:
        raise ConfigError(f"{where}: budget_usd must not be negative")
    if key == "trial_timeout" and value <= 0:
        raise ConfigError(f"{where}: trial_timeout must be positive")
    return value


def resolve(root: Path, flags: dict, environ=os.environ) -> OptimizeConfig:
    """Merge the layers; `flags` holds only options given on the command line (None = not given)."""
    values: dict = {}
    source = "default"
    if environ.get("TRACEC_MODEL"):
        values["model"], source = environ["TRACEC_MODEL"], "TRACEC_MODEL"
    where = f"{root / 'pyproject.toml'}: [tool.tracec]"
    for key, value in read_pyproject(root).items():
        key = key.replace("-", "_")
        if key not in _TYPES:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(_TYPES))})")
        values[key] = _checked(key, value, where)
        if key == "model":
            source = "pyproject.toml"
    for key, value in flags.items():
        if value is not None:
            values[key] = _checked(key, value, "command line")
            if key == "model":
                source = "--model"
    known = {f.name for f in fields(OptimizeConfig)}
    return OptimizeConfig(**{k: v for k, v in values.items() if k in known}, model_source=source)

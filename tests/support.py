"""Helpers shared by the tests: instrument a source string and load it as a real module."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tracec.transforms import instrument_source

# The installed `tracec` command: the console script beside this interpreter (a venv's bin/), else on PATH
_SIBLING = Path(sys.executable).with_name("tracec")
TRACEC = str(_SIBLING) if _SIBLING.exists() else shutil.which("tracec")


def starting_with(signum: int, handler):
    """A Popen preexec_fn: the child starts with `handler` for `signum`, whatever this process has. A shell
    starts a background command (`pytest &` in a script) with SIGINT ignored; a terminal's default is
    SIG_DFL. Tests that press Ctrl-C say which of the two they mean instead of inheriting it."""
    return lambda: signal.signal(signum, handler)


def assert_transform(transform, before: str, after: str) -> None:
    """`transform` turns `before` into exactly `after` (both dedented): the one shape of every before/after
    test of a source-to-source pass (instrument, migrate, patch splice)."""
    assert transform(textwrap.dedent(before)) == textwrap.dedent(after)


def git_project(root: Path) -> Path:
    """A new git repository at `root` with a `src/` folder, `.tracec/` ignored and a minimal pyproject."""
    (root / "src").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(".tracec/\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return root


def instrumented_body(source: str, **options) -> str:
    """The instrumented source without its runtime header, for before/after comparisons."""
    source = textwrap.dedent(source)
    result = instrument_source(source, path=options.pop("path", "m.py"), module=options.pop("module", "m"),
                               **options)
    assert result.error is None and result.internal is None, str(result.error or result.internal)
    code = result.code
    for placed in (result.header + "; ", "; " + result.header, "\n" + result.header, result.header):
        if placed in code:
            code = code.replace(placed, "", 1)
            break
    assert code.count("\n") == source.count("\n"), "instrumenting must preserve the line count"
    return code


def load_module(tmp_path: Path, name: str, source: str, instrument: bool, all_functions: bool = True):
    """Write `source` (instrumented or not) to tmp_path/name.py and import it under `name`."""
    source = textwrap.dedent(source)
    if instrument:
        result = instrument_source(source, path=f"{name}.py", module=name, all_functions=all_functions)
        assert result.error is None, str(result.error)
        assert result.header_placed
        source = result.code
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

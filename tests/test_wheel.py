"""The built wheel installs into a fresh virtualenv and `tracec` works from there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "tracec", "runtime", "transforms")

PROGRAM = """\
import tracec

GREETING = tracec.param("Hello", doc="greeting")


@tracec.trace
def greet(name):
    text = GREETING + ", " + name
    return text


print(greet("wheel"))
"""


def sh(*command, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_wheel_installs_and_runs(tmp_path):
    # Build from a clean copy so the repository's working tree gets no build/ or egg-info litter.
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / name)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", src)
    (wheel,) = (tmp_path / "dist").glob("tracec-*.whl")

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bindir / "python"
    sh(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    assert (site / "tracec" / "runtime" / "__init__.py").is_file()
    assert (site / "tracec" / "transforms" / "__init__.py").is_file()
    assert not (site / "runtime").exists() and not (site / "transforms").exists()

    tracec = bindir / "tracec"
    helped = sh(tracec, "--help")
    assert "instrument" in helped.stdout and "run" in helped.stdout

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (project / "app.py").write_text(textwrap.dedent(PROGRAM))
    ran = sh(tracec, "run", "app.py", cwd=project)
    assert ran.stdout == "Hello, wheel\n"
    graph = json.loads((project / ".tracec" / "graph.json").read_text())
    assert [p["key"] for p in graph["params"]] == ["app:GREETING"]
    assert any(n["code"] == 'text = GREETING + ", " + name' for n in graph["nodes"])
    shown = sh(tracec, "show", ".tracec/graph.json", cwd=project)   # its page comes from package data
    page = (project / ".tracec" / "graph.html").read_text()
    assert shown.stdout.strip().endswith("graph.html") and "<style>" in page and "GREETING" in page
    # The program ran with the venv's tracec, not this checkout's.
    where = sh(python, "-c", "import tracec.runtime as r; print(r.__file__)", cwd=project).stdout
    assert where.strip().startswith(str(site))

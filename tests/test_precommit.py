"""The pre-commit hooks, run by the real pre-commit framework in a throwaway git repository whose
.pre-commit-config.yaml names this checkout (its committed HEAD) as the hook repository: tracec-check fails
on a broken annotation and passes after the fix; tracec-instrument fails when it had to rewrite the build
and passes once the build is current.

pre-commit installs tracec into a fresh virtualenv under PRE_COMMIT_HOME, a folder of tmp_path, so the test
leaves nothing behind. (Not `pre-commit try-repo`: it builds that virtualenv in a new temporary store on
every call, ~110 s each here; with a config the five runs share one.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THIS_REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow   # installs tracec and its dependencies into a new virtualenv: 35 s with a
#                                 warm pip cache, ~110 s cold


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if not (THIS_REPO / ".git").exists():
        pytest.skip("pre-commit installs hooks from a git repository; this tracec is not a checkout")
    root = tmp_path / "project"
    root.mkdir()
    for argv in (["init", "-q"], ["config", "user.name", "Test"], ["config", "user.email", "test@example.com"]):
        subprocess.run(["git", *argv], cwd=root, check=True)
    (root / ".gitignore").write_text(".tracec/\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return root


def run_hook(root: Path, hook: str, home: Path) -> subprocess.CompletedProcess:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", hook, "--all-files"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def test_hooks_fail_on_problems_and_pass_once_fixed(repo: Path, tmp_path: Path):
    home = tmp_path / "pre-commit-home"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=THIS_REPO, check=True, capture_output=True,
                          text=True).stdout.strip()
    (repo / ".pre-commit-config.yaml").write_text(f"repos:\n- repo: {THIS_REPO}\n  rev: {head}\n  hooks:\n"
                                                  "  - id: tracec-check\n  - id: tracec-instrument\n")
    app = repo / "app.py"
    app.write_text('import tracec\n\nPROMPT = tracec.param(make_prompt())\n')
    failed = run_hook(repo, "tracec-check", home)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "app.py:3:23: TC101 tracec.param value `make_prompt()` is not a literal" in failed.stdout

    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer in one word.")\n')
    passed = run_hook(repo, "tracec-check", home)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    built = repo / ".tracec" / "build" / "app.py"
    first = run_hook(repo, "tracec-instrument", home)       # nothing built yet: it writes and fails
    assert first.returncode == 1 and "rewrote: .tracec/build/app.py" in first.stdout, first.stdout
    assert "_tracec_m" in built.read_text()
    again = run_hook(repo, "tracec-instrument", home)       # the build is current
    assert again.returncode == 0, again.stdout + again.stderr
    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer briefly.")\n')
    changed = run_hook(repo, "tracec-instrument", home)
    assert changed.returncode == 1 and "Answer briefly." in built.read_text()

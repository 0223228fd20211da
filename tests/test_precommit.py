"""The pre-commit hooks, run by the real pre-commit framework (`pre-commit try-repo`) in a throwaway git
repository: tracec-check fails on a broken annotation and passes after the fix; tracec-instrument fails
when it had to rewrite the build and passes once the build is current.

try-repo installs this checkout's committed HEAD into a fresh virtualenv under PRE_COMMIT_HOME, a folder
of tmp_path, so the test leaves nothing behind. (Without --ref, a checkout with uncommitted changes is
snapshotted into a new commit on every call, and each snapshot gets its own virtualenv: ~2 minutes each.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THIS_REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow   # installs tracec and its dependencies into a new virtualenv


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if not (THIS_REPO / ".git").exists():
        pytest.skip("try-repo needs tracec as a git checkout")
    root = tmp_path / "project"
    root.mkdir()
    for argv in (["init", "-q"], ["config", "user.name", "Test"], ["config", "user.email", "test@example.com"]):
        subprocess.run(["git", *argv], cwd=root, check=True)
    (root / ".gitignore").write_text(".tracec/\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    return root


def try_repo(root: Path, hook: str, home: Path) -> subprocess.CompletedProcess:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=THIS_REPO, check=True, capture_output=True,
                          text=True).stdout.strip()
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(THIS_REPO), hook, "--ref", head,
                           "--all-files"], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def test_hooks_fail_on_problems_and_pass_once_fixed(repo: Path, tmp_path: Path):
    home = tmp_path / "pre-commit-home"
    app = repo / "app.py"
    app.write_text('import tracec\n\nPROMPT = tracec.param(make_prompt())\n')
    failed = try_repo(repo, "tracec-check", home)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "app.py:3:23: TC101 tracec.param value `make_prompt()` is not a literal" in failed.stdout

    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer in one word.")\n')
    passed = try_repo(repo, "tracec-check", home)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    built = repo / ".tracec" / "build" / "app.py"
    first = try_repo(repo, "tracec-instrument", home)       # nothing built yet: it writes and fails
    assert first.returncode == 1 and "rewrote: .tracec/build/app.py" in first.stdout, first.stdout
    assert "_tracec_m" in built.read_text()
    again = try_repo(repo, "tracec-instrument", home)       # the build is current
    assert again.returncode == 0, again.stdout + again.stderr
    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer briefly.")\n')
    changed = try_repo(repo, "tracec-instrument", home)
    assert changed.returncode == 1 and "Answer briefly." in built.read_text()

"""The pre-commit hooks, run by the real pre-commit framework in a throwaway git repository made by the test.

`pre-commit try-repo` (this checkout, uncommitted changes included) runs tracec-check: it fails on a broken
annotation and passes after the fix. try-repo builds its virtualenv in a new temporary store on every call
(~36 s each here with a warm pip cache), so the longer tracec-instrument sequence runs through a
.pre-commit-config.yaml naming this checkout's HEAD, where the runs share one virtualenv under
PRE_COMMIT_HOME, a folder of tmp_path: the test leaves nothing behind."""

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


def _env(home: Path) -> dict:
    return {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}


def try_repo(root: Path, hook: str, home: Path) -> subprocess.CompletedProcess:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(THIS_REPO), hook, "--all-files"],
                          cwd=root, env=_env(home), capture_output=True, text=True, timeout=900)


def run_hook(root: Path, hook: str, home: Path) -> subprocess.CompletedProcess:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", hook, "--all-files"], cwd=root,
                          env=_env(home), capture_output=True, text=True, timeout=900)


def test_check_hook_through_try_repo_fails_on_a_broken_annotation_and_passes_after_the_fix(repo: Path,
                                                                                          tmp_path: Path):
    app = repo / "app.py"
    app.write_text('import tracec\n\nPROMPT = tracec.param(make_prompt())\n')
    failed = try_repo(repo, "tracec-check", tmp_path / "home")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "app.py:3:23: TC101 tracec.param value `make_prompt()` is not a literal" in failed.stdout

    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer in one word.")\n')
    passed = try_repo(repo, "tracec-check", tmp_path / "home")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "tracec check" in passed.stdout and "Passed" in passed.stdout


def test_instrument_hook_fails_when_it_rewrote_the_build_and_passes_once_current(repo: Path, tmp_path: Path):
    home = tmp_path / "pre-commit-home"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=THIS_REPO, check=True, capture_output=True,
                          text=True).stdout.strip()
    (repo / ".pre-commit-config.yaml").write_text(f"repos:\n- repo: {THIS_REPO}\n  rev: {head}\n  hooks:\n"
                                                  "  - id: tracec-instrument\n")
    app = repo / "app.py"
    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer in one word.")\n')
    built = repo / ".tracec" / "build" / "app.py"
    first = run_hook(repo, "tracec-instrument", home)       # nothing built yet: it writes and fails
    assert first.returncode == 1 and "rewrote: .tracec/build/app.py" in first.stdout, first.stdout
    assert "_tracec_m" in built.read_text()
    again = run_hook(repo, "tracec-instrument", home)       # the build is current
    assert again.returncode == 0, again.stdout + again.stderr
    app.write_text('import tracec\n\nPROMPT = tracec.param("Answer briefly.")\n')
    changed = run_hook(repo, "tracec-instrument", home)
    assert changed.returncode == 1 and "Answer briefly." in built.read_text()

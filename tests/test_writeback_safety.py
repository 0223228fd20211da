"""Write-back under interruption and concurrency: a `tracec apply` stopped mid-write by SIGTERM, SIGINT or
SIGKILL, and two `tracec apply` runs at once. Real processes, blocked inside the write on purpose."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import black
import pytest
from support import TRACEC, git_project, starting_with

from tracec.cli import main
from tracec.patches.patch_file import write_patch
from tracec.patches.splice import Change, rewrite_source

SOURCE = 'import tracec\n\nLIMIT = tracec.param(1, doc="retries")\n'
PATCHED = SOURCE.replace("param(1,", "param(2,")

# `tracec apply` in a child process whose write blocks after the temp file is written and before
# os.replace: write_atomic fsyncs source files there. The child says "writing" and waits for a line.
BLOCKED_APPLY = """\
import os, sys

def stuck(fd):
    print("writing", flush=True)
    sys.stdin.readline()

os.fsync = stuck
from tracec.cli import main
sys.exit(main(["apply"]))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = git_project(tmp_path / "proj")
    (root / "src" / "app.py").write_text(SOURCE)
    new = rewrite_source(SOURCE, "src/app.py", [Change("app:LIMIT", "value", 3, 2)], black.Mode())
    assert new == PATCHED
    write_patch(root, "src/app.py", SOURCE, new, keys=["app:LIMIT"], summary="test")
    monkeypatch.chdir(root)
    return root


def blocked_apply(root: Path, signum: int = signal.SIGINT, handler=signal.SIG_DFL) -> subprocess.Popen:
    """Started with `handler` for `signum`; by default SIGINT as a terminal has it, whatever pytest has."""
    child = subprocess.Popen([sys.executable, "-c", BLOCKED_APPLY], cwd=root, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=starting_with(signum, handler))
    assert child.stdout.readline() == "writing\n", child.stderr.read()
    return child


def temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "src").iterdir() if p.name != "app.py")


def pending(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".tracec" / "patches").glob("*.patch"))


def test_a_write_killed_with_sigkill_leaves_a_temp_file_that_check_names(project: Path):
    child = blocked_apply(project)
    (leftover,) = temp_files(project)
    assert leftover.startswith(".tracec-") and leftover.endswith(".tmp")
    child.kill()
    child.communicate(timeout=30)
    assert (project / "src" / "app.py").read_text() == SOURCE and pending(project) == ["0001-app-LIMIT.patch"]

    done = subprocess.run([TRACEC, "check"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"src/{leftover}:1:1: TC302 leftover temp file of a tracec write that was killed before it finished; "
        "the file it was replacing is unchanged: delete this one"]
    assert subprocess.run([TRACEC, "check", "src/app.py"], cwd=project, capture_output=True).returncode == 1

    (project / "src" / leftover).unlink()                # what the message says to do
    assert subprocess.run([TRACEC, "check"], cwd=project, capture_output=True).returncode == 0
    assert main(["apply"]) == 0 and (project / "src" / "app.py").read_text() == PATCHED


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)])
def test_a_write_stopped_by_a_signal_removes_its_temp_file(project: Path, signum, status):
    child = blocked_apply(project)
    assert len(temp_files(project)) == 1
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    assert child.returncode == status, err
    assert "Traceback" not in err
    assert temp_files(project) == []                     # nothing half-written, nothing left over
    assert (project / "src" / "app.py").read_text() == SOURCE and pending(project) == ["0001-app-LIMIT.patch"]
    assert main(["apply"]) == 0 and (project / "src" / "app.py").read_text() == PATCHED


def test_a_write_under_nohup_is_not_stopped_by_sighup(project: Path):
    child = blocked_apply(project, signal.SIGHUP, signal.SIG_IGN)       # what `nohup tracec apply` starts with
    child.send_signal(signal.SIGHUP)
    out, err = child.communicate("go\n", timeout=30)
    assert child.returncode == 0, err
    assert out == "0001-app-LIMIT.patch: applied to src/app.py\n"
    assert (project / "src" / "app.py").read_text() == PATCHED and temp_files(project) == []


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, stream), lines.put("(end of output)")], daemon=True).start()
    return lines


def test_two_applies_at_once_take_turns(project: Path):
    first = blocked_apply(project)
    second = subprocess.Popen([TRACEC, "apply"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    said = _lines(second.stderr)
    line = said.get(timeout=60)
    assert line.startswith("tracec apply: waiting for another tracec apply in "), line
    assert second.poll() is None                         # it waits while the first one writes
    out, err = first.communicate("go\n", timeout=30)
    assert first.returncode == 0, err
    assert out == "0001-app-LIMIT.patch: applied to src/app.py\n"
    assert second.wait(timeout=60) == 0
    assert second.stdout.read() == "no pending patches in .tracec/patches/\n"   # it saw what the first did
    assert (project / "src" / "app.py").read_text() == PATCHED and temp_files(project) == []
    assert sorted(p.name for p in (project / ".tracec" / "patches" / "applied").iterdir()) == \
        ["0001-app-LIMIT.patch"]


def test_apply_without_fcntl_still_applies(project: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)      # `import fcntl` raises ImportError
    assert main(["apply"]) == 0
    assert (project / "src" / "app.py").read_text() == PATCHED

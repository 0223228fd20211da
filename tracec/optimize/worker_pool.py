"""The optimizer's side of the workers: starts the worker host (worker_host.py) in a session of its own,
sends it evaluation requests as JSON lines and waits for the answers (docs/worker-protocol.md). The
optimizer's process never imports or runs the user's code; it only sees previews, scores, feedback text
and graphs. Closing the pool (or the optimizer dying) closes the host's stdin: the host kills what is
still running and removes its scratch copies."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tracec.errors import UsageError
from tracec.optimize.candidates import TrialError
from tracec.optimize.task import TaskError


def sandboxed(work: Path) -> list[str]:
    """The bubblewrap command line the host runs under with --sandbox: the whole filesystem read-only, the
    work folder (scratch copies, results, TMPDIR) writable. The network stays: a workflow calls its models."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise UsageError("--sandbox needs bubblewrap (`bwrap`), which is not installed; install it (Debian, "
                         "Ubuntu: `apt install bubblewrap`) or run without --sandbox")
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    return [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", str(work), str(work),
            "--setenv", "TMPDIR", str(work / "tmp"), "--die-with-parent", "--"]


class WorkerPool:
    def __init__(self, root: Path, task: Path, slots: int, timeout: float, sandbox: bool = False) -> None:
        self.root, self.slots, self.timeout = root, slots, timeout
        self.work = root / ".tracec" / "scratch" / str(os.getpid())
        prefix = sandboxed(self.work) if sandbox else []
        self.work.mkdir(parents=True, exist_ok=True)
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()   # candidates scored at once submit from several threads
        self._log = open(self.work / "host.log", "wb")
        self._host = subprocess.Popen([*prefix, sys.executable, "-m", "tracec.optimize.worker_host"], cwd=self.work,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      start_new_session=True)
        setup = {"root": str(root), "work": str(self.work), "slots": slots, "task": str(task.resolve()),
                 "cwd": os.getcwd(), "sys_path": [p for p in sys.path if p]}
        self._send(setup)
        self._reader = threading.Thread(target=self._read, name="tracec-worker-replies", daemon=True)
        self._reader.start()

    # -- the pipe ---------------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        assert self._host.stdin is not None
        try:
            with self._send_lock:
                self._host.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
                self._host.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise TrialError(f"the worker host ended: {self._host_error()}") from None

    def _read(self) -> None:
        assert self._host.stdout is not None
        for line in self._host.stdout:
            try:
                reply = json.loads(line)
            except ValueError:   # a line cut short as the host died: EOF follows, and fails what is pending
                continue
            with self._lock:
                future = self._pending.pop(reply["id"], None)
            if future is not None:
                future.set_result(reply)
        with self._lock:   # the host is gone: nothing pending will be answered
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(TrialError(f"the worker host ended: {self._host_error()}"))

    def _host_error(self) -> str:
        try:
            lines = (self.work / "host.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        return next((line.strip() for line in reversed(lines) if line.strip()), "no output")[:300]

    def submit(self, request: dict) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        request = {"id": next(self._ids), "timeout": self.timeout, **request}
        with self._lock:
            self._pending[request["id"]] = future
        self._send(request)
        return future

    def _answer(self, future: concurrent.futures.Future) -> dict:
        """The host's reply. It stops each fork at `timeout` (a run, then a judge); a host that says nothing
        far past that is stuck itself (e.g. importing a module that hangs), and fails the evaluation."""
        try:
            return future.result(timeout=2 * self.timeout + 60)
        except concurrent.futures.TimeoutError:
            raise TrialError(f"the worker host did not answer within {2 * self.timeout + 60:g} s") from None

    # -- what the evaluator asks ------------------------------------------------------------------
    def probe(self) -> dict:
        """Import the task once (original code): its targets, values and splits; then warm the template."""
        try:
            reply = self._answer(self.submit({"probe": True}))
        except TrialError as exc:   # the host itself failed (e.g. bwrap refused to start it)
            raise TaskError(f"the task cannot be imported by the workers: {exc}") from None
        if not reply["ok"]:
            raise TaskError(reply["reason"])
        self._send({"preload": reply["preload"]})
        return reply

    def evaluate(self, sources: dict[str, str], examples: list, record: bool) -> tuple[list[dict], dict]:
        """Entries (example and output previews, score, text, graph JSON) for `examples`, in order, and the
        param sites' values; the examples are split over the slots. TrialError rejects the candidate,
        TaskError (the task file is broken) stops the run."""
        chunks = [examples[i::self.slots] for i in range(min(self.slots, len(examples)))]
        futures = [self.submit({"sources": sources, "examples": [list(e) for e in chunk], "record": record})
                   for chunk in chunks]
        replies = [self._answer(f) for f in futures]
        for reply in replies:
            if not reply["ok"]:
                raise (TaskError if reply.get("task_error") else TrialError)(reply["reason"])
        entries: list[dict] = [{}] * len(examples)
        sites: dict = {}
        for i, reply in enumerate(replies):
            entries[i::self.slots] = reply["results"]
            sites.update(reply["site_values"])
        return entries, sites

    def close(self) -> None:
        try:
            assert self._host.stdin is not None
            self._host.stdin.close()   # the host's signal to stop its children and remove its copies
            self._host.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self._host.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._host.wait()
        self._reader.join(timeout=5)
        self._log.close()
        shutil.rmtree(self.work, ignore_errors=True)
        try:
            self.work.parent.rmdir()   # only when empty: another run may be using it
        except OSError:
            pass

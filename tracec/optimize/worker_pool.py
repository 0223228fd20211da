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
import time
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


MAX_RESTARTS = 5   # hosts started after the first one died, per run


def _last_words(log: Path) -> str:
    """The last line a host wrote to its log: why it ended, as far as it said."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    return next((line.strip() for line in reversed(lines) if line.strip()), "no output")[:300]


def requests(sources: dict[str, str], examples: list, record: bool, slots: int) -> list[dict]:
    """One evaluation as requests of the protocol: the examples dealt round-robin over `slots` workers."""
    chunks = [examples[i::slots] for i in range(min(slots, len(examples)))]
    return [{"sources": sources, "examples": [list(e) for e in chunk], "record": record} for chunk in chunks]


def merged(replies: list[dict], count: int) -> tuple[list[dict], dict]:
    """The replies to `requests(...)` put back in example order, with the param sites' values. A failed
    reply fails the whole evaluation: TaskError (the task file is broken) or TrialError (the candidate)."""
    for reply in replies:
        if not reply["ok"]:
            raise (TaskError if reply.get("task_error") else TrialError)(reply["reason"])
    entries: list[dict] = [{}] * count
    sites: dict = {}
    for i, reply in enumerate(replies):
        entries[i::len(replies)] = reply["results"]
        sites.update(reply["site_values"])
    return entries, sites


def start_method() -> str:
    """How the host starts each evaluation's children: "fork" of its warm process (milliseconds), or "spawn"
    (a fresh interpreter; where there is no fork, or where TRACEC_WORKER_START=spawn asks for it, e.g. on
    macOS with libraries that must not be forked)."""
    asked = os.environ.get("TRACEC_WORKER_START", "")
    if asked not in ("", "fork", "spawn"):
        raise UsageError(f"TRACEC_WORKER_START={asked!r}: use 'fork' or 'spawn'")
    return asked or ("fork" if hasattr(os, "fork") else "spawn")


class WorkerPool:
    def __init__(self, root: Path, task: Path, slots: int, timeout: float, sandbox: bool = False, *,
                 cwd: str | None = None, sys_path: list[str] | None = None, work: Path | None = None) -> None:
        """`cwd`, `sys_path`: where the task runs and what it imports from (default: this process's), and
        `work`: the folder of the scratch copies; a Ray actor (ray_backend.py) sets all three."""
        self.root, self.slots, self.timeout = root, slots, timeout
        self.work = work or root / ".tracec" / "scratch" / str(os.getpid())
        self._prefix = sandboxed(self.work) if sandbox else []
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[concurrent.futures.Future, int]] = {}   # id -> (future, host generation)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()   # candidates scored at once submit from several threads
        self._restart_lock = threading.Lock()
        self._setup = {"root": str(root), "slots": slots, "task": str(task.resolve()), "cwd": cwd or os.getcwd(),
                       "sys_path": [p for p in (sys_path or sys.path) if p], "start": start_method()}
        self._preload: list[str] | None = None
        self._generation = 0
        self._start_host()

    def _start_host(self) -> None:
        """The host of this generation, in a folder of its own (a dead host's copies are not reused)."""
        folder = self.work if self._generation == 0 else self.work / f"restart-{self._generation}"
        folder.mkdir(parents=True, exist_ok=True)
        self._log_path = folder / "host.log"
        self._log = open(self._log_path, "wb")
        self._host = subprocess.Popen([*self._prefix, sys.executable, "-m", "tracec.optimize.worker_host"],
                                      cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      start_new_session=True)
        self._send({**self._setup, "work": str(folder)})
        self._reader = threading.Thread(target=self._read, args=(self._host, self._generation, folder / "host.log"),
                                        name="tracec-worker-replies", daemon=True)
        self._reader.start()

    def _ensure_host(self) -> None:
        """A host that died (a candidate killed it, the OOM killer did) is replaced before the next request:
        the evaluations it held are rejected already, and the run goes on. At most MAX_RESTARTS times; after
        that every request fails with the host's last words."""
        if self._host.poll() is None or self._generation >= MAX_RESTARTS:
            return
        with self._restart_lock:
            if self._host.poll() is None or self._generation >= MAX_RESTARTS:
                return   # another thread restarted it meanwhile
            self._reader.join(timeout=5)
            self._log.close()
            self._generation += 1
            self._start_host()
            if self._preload is not None:
                self._send({"preload": self._preload})

    # -- the pipe ---------------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        assert self._host.stdin is not None
        try:
            with self._send_lock:
                self._host.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
                self._host.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise TrialError(f"the worker host ended: {_last_words(self._log_path)}") from None

    def _read(self, host: subprocess.Popen, generation: int, log: Path) -> None:
        assert host.stdout is not None
        for line in host.stdout:
            try:
                reply = json.loads(line)
            except ValueError:   # a line cut short as the host died: EOF follows, and fails what is pending
                continue
            with self._lock:
                future, _ = self._pending.pop(reply["id"], (None, None))
            if future is not None:
                future.set_result(reply)
        with self._lock:   # this host is gone: nothing it held will be answered
            ended = [i for i, (_, g) in self._pending.items() if g == generation]
            futures = [self._pending.pop(i)[0] for i in ended]
        for future in futures:
            future.set_exception(TrialError(f"the worker host ended: {_last_words(log)}"))

    def submit(self, request: dict) -> concurrent.futures.Future:
        self._ensure_host()
        future: concurrent.futures.Future = concurrent.futures.Future()
        request = {"id": next(self._ids), "timeout": self.timeout, **request}
        with self._lock:
            self._pending[request["id"]] = (future, self._generation)
        self._send(request)
        return future

    def _answer(self, future: concurrent.futures.Future) -> dict:
        """The host's reply. It stops each fork at `timeout` (a run, then a judge); a host that says nothing
        far past that is stuck itself (e.g. importing a module that hangs), and fails the evaluation."""
        deadline = time.monotonic() + 2 * self.timeout + 60
        while True:
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                # a host that died cannot answer; its pipe's EOF can be late (a process still holding it)
                if self._host.poll() is not None:
                    raise TrialError(f"the worker host ended: {_last_words(self._log_path)}") from None
                if time.monotonic() > deadline:
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
        self._preload = reply["preload"]
        self._send({"preload": self._preload})
        return reply

    def ask(self, request: dict) -> dict:
        """One request, its reply (a Ray actor forwards the driver's requests through this)."""
        return self._answer(self.submit(request))

    def evaluate(self, sources: dict[str, str], examples: list, record: bool) -> tuple[list[dict], dict]:
        """Entries (example and output previews, score, text, graph JSON) for `examples`, in order, and the
        param sites' values; the examples are split over the slots. TrialError rejects the candidate,
        TaskError (the task file is broken) stops the run."""
        futures = [self.submit(request) for request in requests(sources, examples, record, self.slots)]
        return merged([self._answer(f) for f in futures], len(examples))

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

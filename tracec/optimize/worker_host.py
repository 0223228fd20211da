"""The worker host: the process that evaluates candidates, started by worker_pool.py as
`python -m tracec.optimize.worker_host` and spoken to in JSON lines (docs/worker-protocol.md).

It is a template: once a probe has imported the task, the host imports the same third-party modules
(never the project's own), so each evaluation is a fork of a warm process, not an interpreter start.
Each evaluation runs in two fresh forks, each in its own process group:
- the *run* child, in a scratch copy of the project (scratch.py) holding the candidate's files exactly
  as the patch writes them, imports the task with the import hook and runs the examples; it returns
  previews, graphs and the outputs pickled;
- the *judge* child, in a copy that no candidate ever runs in, imports the task with the original code
  and calls `feedback` on the outputs, unpickled with a restricted loader (worker_child.py), so a candidate
  cannot rescore itself by replacing the task's `feedback`.
The host kills a child's group when it passes its timeout, reports a death (signal, exit status, missing
result) as a one-line reason, and rejects a candidate that modified a file of its copy.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tracec.optimize import worker_child
from tracec.optimize.scratch import ScratchCopy
from tracec.optimize.worker_child import EXIT_TASK_ERROR
from tracec.project import is_under


@dataclass
class Job:
    id: int
    request: dict
    slot: ScratchCopy | None = None
    run: dict | None = None                      # the run child's result
    files: list[str] = field(default_factory=list)   # candidate files written into the slot


@dataclass
class Child:
    pid: int
    job: Job
    phase: str            # "run" | "judge"
    deadline: float
    result: Path
    log: Path


class Host:
    def __init__(self, setup: dict, out) -> None:
        self.setup, self.out = setup, out
        self.root = Path(setup["root"])
        self.work = Path(setup["work"])
        (self.work / "results").mkdir(parents=True, exist_ok=True)
        self.free = deque(ScratchCopy.create(self.root, self.work / f"slot-{i}") for i in range(setup["slots"]))
        self.judge_copy = ScratchCopy.create(self.root, self.work / "judge")
        self.waiting: deque[Job] = deque()
        self.children: dict[int, Child] = {}
        self.judges_waiting: deque[Job] = deque()
        _warm()


    # -- the protocol -------------------------------------------------------------------------------
    def reply(self, job: Job, **fields) -> None:
        self.out.write(json.dumps({"id": job.id, **fields}) + "\n")
        self.out.flush()

    def reject(self, job: Job, reason: str, task_error: bool = False) -> None:
        self.reply(job, ok=False, reason=reason, task_error=task_error)

    def serve(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        selector = selectors.DefaultSelector()
        selector.register(0, selectors.EVENT_READ, "request")
        pending = b""
        selector.register(read_end, selectors.EVENT_READ, "child")
        try:
            while True:
                self.start_waiting()
                timeout = min((c.deadline for c in self.children.values()), default=None)
                events = selector.select(None if timeout is None else max(0.0, timeout - time.monotonic()))
                for key, _ in events:
                    if key.data == "child":
                        os.read(read_end, 4096)
                    else:
                        data = os.read(0, 1 << 16)
                        if not data:   # the optimizer closed the pipe (or died): stop everything
                            return
                        *lines, pending = (pending + data).split(b"\n")
                        for line in lines:
                            self.receive(json.loads(line))
                self.reap()
                self.expire()
        finally:
            for child in list(self.children.values()):
                _kill_group(child.pid)
            for slot in [*self.free, self.judge_copy]:
                slot.remove()

    def receive(self, message: dict) -> None:
        if "preload" in message:
            self.preload(message["preload"])
        else:
            self.waiting.append(Job(message["id"], message))

    def preload(self, modules: list[str]) -> None:
        """Import the task's third-party modules into the template (a failure is only a slower fork)."""
        import importlib
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in modules:
                try:
                    importlib.import_module(name)
                except BaseException:   # noqa: BLE001 - whatever a module does on import, the host goes on
                    pass
        for name, module in list(sys.modules.items()):   # nothing of the project's own may stay loaded
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and is_under(os.path.realpath(path), os.path.realpath(self.root)):
                del sys.modules[name]

    # -- children ---------------------------------------------------------------------------------
    def start_waiting(self) -> None:
        while self.judges_waiting:
            self.start_judge(self.judges_waiting.popleft())
        while self.waiting and self.free:
            job = self.waiting.popleft()
            job.slot = self.free.popleft()
            job.files = sorted(job.request.get("sources", {}))   # first: a half-written set is synced back too
            try:
                job.slot.write(job.request.get("sources", {}))
            except (OSError, ValueError) as exc:
                reason = f"the candidate's files cannot be written: {exc}"
                self.finish(job, lambda: self.reject(job, reason))
                continue
            self.fork(job, "run", job.slot)

    def start_judge(self, job: Job) -> None:
        tampered = self.judge_copy.changed()
        if tampered:
            self.judge_copy.sync(tampered)
            self.reject(job, f"a candidate modified {tampered[0]} in the judge's copy of the project")
            return
        self.fork(job, "judge", self.judge_copy)

    def fork(self, job: Job, phase: str, slot: ScratchCopy) -> None:
        stem = self.work / "results" / f"{job.id}-{phase}"
        result, log = stem.with_suffix(".json"), stem.with_suffix(".log")
        result.unlink(missing_ok=True)
        if self.setup.get("start", "fork") == "spawn":
            pid = self.spawn(job, phase, slot, stem, result, log)
        else:
            pid = os.fork()
            if pid == 0:   # the child: never returns
                worker_child.main(phase, job.request, job.run, self.setup, slot.path, result, log)
            try:
                os.setpgid(pid, pid)   # also done in the child: whichever runs first
            except OSError:
                pass
        timeout = float(job.request.get("timeout", 60.0))
        self.children[pid] = Child(pid, job, phase, time.monotonic() + timeout, result, log)

    def spawn(self, job: Job, phase: str, slot: ScratchCopy, stem: Path, result: Path, log: Path) -> int:
        """The child as a fresh interpreter (`start: spawn`): for where forking a warm process is unsafe or
        impossible. Slower (an interpreter start and every import per evaluation), the same isolation; the
        group is its own from the start (setpgroup), so the host kills and reaps it like a fork."""
        order = stem.with_suffix(".job")
        order.write_text(json.dumps({"phase": phase, "request": job.request, "run": job.run, "setup": self.setup,
                                     "copy": str(slot.path), "result": str(result), "log": str(log)}),
                         encoding="utf-8")
        argv = [sys.executable, "-m", "tracec.optimize.worker_child", str(order)]
        return os.posix_spawn(sys.executable, argv, os.environ, setpgroup=0,
                              file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                _kill_group(pid)   # whatever the child left running
                self.ended(child, status)

    def expire(self) -> None:
        now = time.monotonic()
        for pid, child in list(self.children.items()):
            if child.deadline <= now:
                _kill_group(pid)
                os.waitpid(pid, 0)
                del self.children[pid]
                timeout = float(child.job.request.get("timeout", 60.0))
                what = "running the examples" if child.phase == "run" else "scoring the outputs"
                self.finish(child.job, lambda: self.reject(
                    child.job, f"{what} took longer than {timeout:g} s (an endless loop?); it was stopped"))

    def ended(self, child: Child, status: int) -> None:
        job = child.job
        data = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, EXIT_TASK_ERROR) and child.result.is_file():
            data = json.loads(child.result.read_text(encoding="utf-8"))
        child.result.unlink(missing_ok=True)
        child.result.with_suffix(".job").unlink(missing_ok=True)
        if data is None:
            reason = _death(status, _last_line(child.log))
            child.log.unlink(missing_ok=True)
            self.finish(job, lambda: self.reject(job, reason, task_error=job.request.get("probe", False)))
            return
        child.log.unlink(missing_ok=True)
        if "error" in data:
            self.finish(job, lambda: self.reject(job, data["error"], task_error=data.get("task_error", False)))
        elif child.phase == "run":
            job.run = data
            modified = job.slot.changed() if job.slot else []
            self.release(job)   # the judge needs no slot: the next candidate can have it now
            if modified:
                self.reject(job, f"the candidate modified the project file {modified[0]} while it ran; "
                                 "candidates must not write project files")
            elif job.request.get("probe"):
                self.reply(job, ok=True, **data)
            else:
                self.judges_waiting.append(job)
        else:
            self.reply(job, ok=True, results=_merged(job.run, data), site_values=job.run["site_values"])

    def release(self, job: Job) -> None:
        """Give the job's slot back, resynced with the user's tree."""
        if job.slot is not None:
            job.slot.sync(sorted({*job.files, *job.slot.changed()}))
            self.free.append(job.slot)
            job.slot = None

    def finish(self, job: Job, respond) -> None:
        self.release(job)
        respond()


def _warm() -> None:
    """What every child needs, done once here: tracec's import hook and its cache key (the key reads
    package metadata and stats tracec's files, tens of milliseconds a fork would otherwise repeat)."""
    from tracec.importhook import tracec_fingerprint
    from tracec.optimize import task  # noqa: F401 - imported for the forks

    tracec_fingerprint()


def _merged(run: dict, judged: dict) -> list[dict]:
    """The run child's entries with the judge's score and text for each example that returned."""
    results = []
    for entry, verdict in zip(run["results"], judged["verdicts"]):
        entry = {**entry, "score": verdict["score"], "text": verdict["text"]} if verdict is not None else entry
        entry.pop("pickled", None)
        results.append(entry)
    return results


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_line(log: Path) -> str:
    try:
        text = log.read_bytes()[-4000:].decode("utf-8", "replace")
    except OSError:
        return ""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _death(status: int, last: str) -> str:
    """One line: why a child ended without its result."""
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        why = f"the worker was killed by {name} (a crash, e.g. a segfault)"
    else:
        why = (f"the worker exited with status {os.WEXITSTATUS(status)} before returning its results "
               "(os._exit? a crash?)")
    return why + (f"; its last output: {last[:200]}" if last else "")


def main() -> None:
    # the protocol has this process's stdout to itself: anything a module prints goes to stderr
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    line = b""
    while not line.endswith(b"\n"):   # read unbuffered: the rest of stdin belongs to serve()
        byte = os.read(0, 1)
        if not byte:
            return
        line += byte
    setup = json.loads(line)
    Host(setup, out).serve()


if __name__ == "__main__":
    main()

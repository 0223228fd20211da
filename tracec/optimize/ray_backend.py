"""`tracec optimize --backend ray`: the worker protocol (docs/worker-protocol.md), unchanged, on a Ray cluster.

Each Ray actor is one evaluation slot: it runs the local backend's own worker host (worker_pool.py, one
slot) on the node's copy of the project, and forwards the driver's requests to it, so a candidate on a
node is exactly what it is on this machine (a fork per evaluation, a scratch copy, the judge apart). The
project reaches the nodes as Ray's `runtime_env` `working_dir` (without `.tracec/`, `.git/`, virtualenvs,
caches and the `ray_excludes` patterns), tracec itself as `py_modules`, so a node needs only Python, Ray
and the project's and tracec's dependencies installed.

Faults: a call whose actor (or node) died is retried once on a fresh actor, then the candidate is
rejected with the reason; a call that outlives twice `trial_timeout` kills its actor. The driver's state
is the search's (run_state.py): nothing of it lives on the cluster, so `--resume` works after a driver crash.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from tracec.errors import UsageError
from tracec.optimize.candidates import TrialError
from tracec.optimize.task import TaskError
from tracec.optimize.worker_pool import WorkerPool, merged, requests
from tracec.project import SKIP_DIR_NAMES

INSTALL = "pip install 'tracec[ray]'"
STARTUP_SECONDS = 300   # an actor's start: the runtime_env unpacked on its node, the host forked, the task probed


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def excludes(root: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """What the working_dir upload leaves out, as gitignore-style patterns (Ray's `excludes`): tracec's own
    state, git, virtualenvs anywhere in the tree, caches, and the user's `ray_excludes`."""
    patterns = ["/.tracec/", "/.git/", *(f"{name}/" for name in sorted(SKIP_DIR_NAMES))]
    for folder, dirs, _ in os.walk(root):
        for name in list(dirs):
            path = Path(folder, name)
            if name in SKIP_DIR_NAMES or name in (".git", ".tracec"):
                dirs.remove(name)
            elif (path / "pyvenv.cfg").is_file():
                patterns.append("/" + path.relative_to(root).as_posix() + "/")
                dirs.remove(name)
    return patterns + list(extra)


def staged_tracec(into: Path) -> Path:
    """tracec as one importable folder for `py_modules`: the installed package, with the subpackages an
    editable install maps from elsewhere (tracec.runtime from runtime/, tracec.transforms from transforms/)."""
    import tracec
    import tracec.runtime
    import tracec.transforms

    target = into / "tracec"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(Path(tracec.__file__).parent, target, ignore=ignore)
    for name, package in (("runtime", tracec.runtime), ("transforms", tracec.transforms)):
        if not (target / name / "__init__.py").is_file():
            shutil.copytree(Path(package.__file__).parent, target / name, ignore=ignore, dirs_exist_ok=True)
    return target


class EvaluationActor:
    """One slot on a node (made a Ray actor by RayPool). Its working directory is Ray's copy of the project."""

    def __init__(self, task: str, cwd: str, project_path: list[str], timeout: float, sandbox: bool) -> None:
        root = Path.cwd()
        self.temp = Path(tempfile.mkdtemp(prefix="tracec-ray-"))
        # the driver's sys.path entries inside the project, as this copy has them, then this process's own
        # (Ray's: the working_dir and py_modules before the node's site-packages)
        sys_path = [str(root / p) for p in project_path] + [p for p in sys.path if p]
        self.error: str | None = None
        self.reply: dict = {}
        try:
            self.pool: WorkerPool | None = WorkerPool(root, root / task, 1, timeout, sandbox, cwd=str(root / cwd),
                                                      sys_path=sys_path, work=self.temp / "scratch")
            self.reply = self.pool.probe()
        except TaskError as exc:
            self.pool, self.error = None, str(exc)

    def probe(self) -> dict:
        if self.error is not None:
            return {"ok": False, "reason": self.error, "task_error": True}
        return {**self.reply, "pid": os.getpid()}

    def ask(self, request: dict, sources: dict | None = None) -> dict:
        """`sources` arrive apart from the request: one object in the store for all of an evaluation's calls."""
        assert self.pool is not None
        try:
            return self.pool.ask(request if sources is None else {**request, "sources": sources})
        except TrialError as exc:   # the host ended or did not answer: the candidate is rejected, not retried
            return {"ok": False, "reason": str(exc), "task_error": False}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        shutil.rmtree(self.temp, ignore_errors=True)


class RayPool:
    """The driver's side: the same `probe`/`evaluate`/`close` as WorkerPool, over `slots` actors."""

    def __init__(self, root: Path, task: Path, slots: int | None, timeout: float, sandbox: bool = False, *,
                 address: str | None = None, extra_excludes: tuple[str, ...] = ()) -> None:
        self.ray = ray = import_ray()
        self.timeout = timeout
        self._staging = Path(tempfile.mkdtemp(prefix="tracec-ray-driver-"))
        runtime_env = {"working_dir": str(root), "excludes": excludes(root, extra_excludes),
                       "py_modules": [str(staged_tracec(self._staging))]}
        try:
            # "local": always a new instance, never one found on the machine (Ray's default for None)
            ray.init(address=address or "local", runtime_env=runtime_env, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, namespace="tracec")
        except Exception as exc:   # noqa: BLE001 - no cluster at that address, an upload refused, ...
            shutil.rmtree(self._staging, ignore_errors=True)
            raise UsageError(f"--backend ray: Ray could not start or join {address or 'a local instance'}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1)))
        self.slots = slots or int(cpus)
        # one CPU per actor; more slots than the cluster has CPUs share them, or the rest would never start
        share = min(1.0, cpus / self.slots)
        cwd = Path(os.getcwd())
        self._actor_args = (task.resolve().relative_to(root).as_posix(),
                            cwd.relative_to(root).as_posix() if cwd.is_relative_to(root) else ".",
                            [os.path.relpath(p, root) for p in sys.path if p and Path(p).is_relative_to(root)],
                            timeout, sandbox)
        self._remote = ray.remote(num_cpus=share, max_restarts=0, max_concurrency=2)(EvaluationActor)
        self._idle: queue.Queue = queue.Queue()
        self._actors: list = []
        self._outstanding: set = set()
        self._lock = threading.Lock()
        for _ in range(self.slots):
            self._idle.put(self._start())

    def _start(self):
        actor = self._remote.remote(*self._actor_args)
        with self._lock:
            self._actors.append(actor)
        return actor

    def _retire(self, actor) -> None:
        with self._lock:
            if actor in self._actors:
                self._actors.remove(actor)
        try:
            self.ray.kill(actor)
        except Exception:   # noqa: BLE001 - already gone
            pass

    def _get(self, ref, seconds: float):
        with self._lock:
            self._outstanding.add(ref)
        try:
            return self.ray.get(ref, timeout=seconds)
        finally:
            with self._lock:
                self._outstanding.discard(ref)

    def probe(self) -> dict:
        actor = self._idle.get()
        try:
            reply = self._get(actor.probe.remote(), STARTUP_SECONDS)
        except self.ray.exceptions.RayError as exc:
            raise TaskError(f"the task cannot be imported by the Ray workers: {_one_line(exc)}") from None
        finally:
            self._idle.put(actor)
        if not reply["ok"]:
            raise TaskError(reply["reason"])
        return reply

    def ask(self, request: dict, sources=None) -> dict:
        """One request on a free actor (`sources`: an object ref of the candidate's files, or None when the
        request holds them). A dead actor (its process or node) is replaced and the request tried once more
        there; a second death rejects the candidate."""
        errors = self.ray.exceptions
        death = ""
        for _ in range(2):
            actor = self._idle.get()
            try:
                reply = self._get(actor.ask.remote(request, sources), 2 * self.timeout + STARTUP_SECONDS)
            except errors.GetTimeoutError:
                self._retire(actor)
                self._idle.put(self._start())
                return {"ok": False, "task_error": False,
                        "reason": f"the Ray worker did not answer within {2 * self.timeout + STARTUP_SECONDS:g} s"}
            except (errors.RayActorError, errors.WorkerCrashedError, errors.ObjectLostError,
                    errors.NodeDiedError) as exc:
                death = _one_line(exc)
                self._retire(actor)
                self._idle.put(self._start())
                continue
            self._idle.put(actor)
            return reply
        return {"ok": False, "task_error": False,
                "reason": f"the Ray worker evaluating these examples died, and again on a retry: {death}"}

    def evaluate(self, sources: dict[str, str], examples: list, record: bool) -> tuple[list[dict], dict]:
        chunks = requests(sources, examples, record, self.slots)
        if len(chunks) == 1:
            return merged([self.ask(chunks[0])], len(examples))
        shared = self.ray.put(sources)   # once, not once per chunk: the patched files can be large
        chunks = [{key: value for key, value in chunk.items() if key != "sources"} for chunk in chunks]
        replies: list = [None] * len(chunks)

        def one(i: int) -> None:
            replies[i] = self.ask(chunks[i], shared)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(chunks))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if any(reply is None for reply in replies):   # a thread died (e.g. the driver is shutting down)
            raise TrialError("the evaluation was interrupted")
        return merged(replies, len(examples))

    def close(self) -> None:
        """Cancel what is outstanding, stop every actor (each removes its scratch copies), then leave the
        cluster; a local instance tracec started is shut down with it."""
        ray = self.ray
        with self._lock:
            outstanding, actors = list(self._outstanding), list(self._actors)
        for ref in outstanding:
            try:
                ray.cancel(ref)
            except Exception:   # noqa: BLE001 - finished meanwhile
                pass
        closing = [actor.close.remote() for actor in actors]
        try:
            ray.get(closing, timeout=30)
        except Exception:   # noqa: BLE001 - a dead or stuck actor: killed below all the same
            pass
        for actor in actors:
            self._retire(actor)
        ray.shutdown()
        shutil.rmtree(self._staging, ignore_errors=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]

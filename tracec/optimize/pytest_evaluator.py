"""The evaluator of `tracec optimize --pytest TESTS [-k EXPR]`: the selected tests are the examples
(train = val), the score is the fraction of them that pass, and every run happens in a
`python -m pytest --tracec` subprocess (tracec/pytest_plugin.py) that writes a JSON report.

The optimizer never executes candidate code. Each evaluation runs in a scratch copy of the project
(scratch.py) holding the candidate's files exactly as its patch would write them (candidates.
CandidateSources, the patch writer's splice), with `--tracec-root` naming the copy; a candidate that
modifies a file of the copy is rejected and the copy is synced back. With `workers` copies, an evaluation's
tests are dealt over them and run by that many pytest processes at once. A child that runs past trial_timeout
is killed with its whole process group; one that crashes, calls os._exit or is killed by a signal leaves
no report, and the candidate is rejected with a one-line reason. The interface: evaluator.py."""

from __future__ import annotations

import ast
import concurrent.futures
import itertools
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tracec.optimize.candidates import CandidateSources, Target, TrialError, read_originals
from tracec.optimize.evaluator import UNSEEN
from tracec.optimize.task import Outcome, TaskError
from tracec.optimize.task_evaluator import code_values
from tracec.runtime import Graph, preview

PASSING = ("passed", "skipped")   # a skipped (or xfailed) test is not failing: 1.0 stays reachable


class PytestEvaluator:
    stop_at = 1.0   # every selected test passes: nothing left to improve
    subject = "the selected tests"
    repeats = 1

    def __init__(self, root: Path, tests: list[str], keyword: str | None, timeout: float, workers: int = 1) -> None:
        self.root, self.timeout = root, timeout
        self._runs = itertools.count(1)
        self._live: set[subprocess.Popen] = set()   # pytest processes running now, killed by close()
        self._live_lock = threading.Lock()
        self._closed = False
        self.resume_args = " ".join(f"--pytest {shlex.quote(t)}" for t in tests) + (
            f" -k {shlex.quote(keyword)}" if keyword else "")
        selection = [*tests, *(["-k", keyword] if keyword else [])]
        try:
            report = self._pytest(["--collect-only", *selection], {}, cwd=Path.cwd())
        except TrialError as exc:
            raise TaskError(f"collecting {' '.join(tests)} failed: {exc}") from None
        if report["collect_errors"]:
            raise TaskError(f"collecting the tests failed: {report['collect_errors'][0]}")
        if Path(report["root"]) != root:
            raise TaskError(f"pytest's rootdir {report['rootdir']} is in the project {report['root']}, not in "
                            f"{root}; run tracec optimize from that project")
        self.rootdir = Path(report["rootdir"])
        self.train = self.val = tuple(report["collected"])
        if not self.val:
            raise TaskError(f"{' '.join(tests)}: no tests selected" + (f" by -k {keyword!r}" if keyword else ""))
        self.label = f"{len(self.val)} test(s)"
        self.targets = {t["key"]: Target(t["key"], t["kind"], t["file"], t["line"], t["doc"])
                        for t in report["targets"]}
        if not self.targets:
            raise TaskError(f"the modules {' '.join(tests)} import have no tracec.param or @trainable function "
                            f"under {root}")
        self.originals = read_originals(root, {t.file for t in self.targets.values()})
        self.sources = CandidateSources(root, self.targets, self.originals)
        from tracec.optimize.scratch import ScratchCopy

        self.parallel = max(1, workers)   # scratch copies, each running one pytest process at a time
        self.copies = [ScratchCopy.create(root, root / ".tracec" / "scratch" / f"{os.getpid()}-pytest" / str(i))
                       for i in range(self.parallel)]
        self._free: queue.Queue = queue.Queue()
        for copy in self.copies:
            self._free.put(copy)
        self.initial = {t["key"]: ast.literal_eval(t["value"]) for t in report["targets"] if t["value"] is not None}
        self.initial.update(code_values(self.targets, self.originals))
        self._site_values: dict[str, str] = {}
        self._failing: dict[str, list[str]] = {}   # candidate -> the tests it failed, to pick minibatches

    # -- the subprocess ---------------------------------------------------------------------------------
    def _pytest(self, args: list[str], candidate: dict, cwd: Path, root: Path | None = None) -> dict:
        """Run pytest with the plugin in a child process group; its report, or TrialError with the reason."""
        # inside the tree pytest runs in: it finds its rootdir and ini file from the common folder of every
        # path on its command line, the report's too
        work = (root or self.root) / ".tracec" / "pytest"
        work.mkdir(parents=True, exist_ok=True)
        stem = work / f"{os.getpid()}-{next(self._runs)}"
        report_path, candidate_path = stem.with_suffix(".report.json"), stem.with_suffix(".candidate.json")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tracec",
                   "--tracec-report", str(report_path)]
        if root is not None:
            command += ["--tracec-root", str(root)]
        if candidate:
            from tracec.fileio import write_atomic

            write_atomic(candidate_path, json.dumps(candidate))
            command += ["--tracec-candidate", str(candidate_path)]
        try:
            process = subprocess.Popen([*command, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            with self._live_lock:
                self._live.add(process)
            if self._closed:   # closed while this one started (Ctrl-C in another thread)
                _kill_group(process)
            try:
                output, _ = process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise TrialError(f"the tests took longer than {self.timeout:g} s (an endless loop?); they were "
                                 "stopped") from None
            except BaseException:   # Ctrl-C: the child (its own session) would not get the signal
                _kill_group(process)
                raise
            finally:
                with self._live_lock:
                    self._live.discard(process)
            if not report_path.is_file():
                raise TrialError(_death(process.returncode, output.decode("utf-8", "replace")))
            report = json.loads(report_path.read_text(encoding="utf-8"))
        finally:
            for path in (report_path, candidate_path):
                path.unlink(missing_ok=True)
        if report.get("error"):
            raise TrialError(report["error"])
        return report

    def _run(self, nodeids, values: dict, record: bool) -> dict:
        """One evaluation: the tests dealt over the copies, a pytest process in each, the reports joined.
        TrialError (the first chunk's, in order) rejects the candidate."""
        files = self.sources.files(values, self.initial)
        chunks = [nodeids[i::self.parallel] for i in range(min(self.parallel, len(nodeids)))]
        if len(chunks) == 1:
            reports = [self._run_in_copy(chunks[0], files, record)]
        else:
            with concurrent.futures.ThreadPoolExecutor(len(chunks), thread_name_prefix="tracec-pytest") as pool:
                futures = [pool.submit(self._run_in_copy, chunk, files, record) for chunk in chunks]
                concurrent.futures.wait(futures)
            reports = [future.result() for future in futures]
        report = {"tests": [t for r in reports for t in r["tests"]],
                  "site_values": {k: v for r in reports for k, v in r.get("site_values", {}).items()}}
        self._site_values.update(report["site_values"])
        ran = {t["nodeid"] for t in report["tests"]}
        self._failing[_key(values)] = [t["nodeid"] for t in report["tests"] if t["outcome"] not in PASSING] + [
            n for n in nodeids if n not in ran]
        return report

    def _run_in_copy(self, nodeids: list, files: dict[str, str], record: bool) -> dict:
        copy = self._free.get()
        candidate = {"record": record, "origin": str(self.root)}
        try:
            copy.write(files)
            try:
                report = self._pytest(["--", *nodeids], candidate, cwd=copy.path / self.rootdir.relative_to(self.root),
                                      root=copy.path)
                modified = copy.changed()
                if modified:
                    raise TrialError(f"the candidate modified the project file {modified[0]} while the tests ran; "
                                     "candidates must not write project files")
            finally:
                copy.sync(sorted({*files, *copy.changed()}))
        finally:
            self._free.put(copy)
        return report

    # -- the evaluator interface ------------------------------------------------------------------------
    def scores(self, values: dict, nodeids) -> list[float]:
        report = self._run(list(dict.fromkeys(nodeids)), values, record=False)
        passing = {t["nodeid"] for t in report["tests"] if t["outcome"] in PASSING}
        return [1.0 if n in passing else 0.0 for n in nodeids]

    def batch(self, rng, size: int, values: dict) -> list:
        """Failing tests first (they carry the feedback), then others; random within each group."""
        failing = set(self._failing.get(_key(values), ()))
        first = [n for n in self.train if n in failing]
        rest = [n for n in self.train if n not in failing]
        rng.shuffle(first)
        rng.shuffle(rest)
        return (first + rest)[:size]

    def record(self, batch, values: dict) -> list[Outcome]:
        try:
            report = self._run(batch, values, record=True)
        except TrialError as exc:   # e.g. a crash in code the baseline never reached
            return [Outcome(preview(n), preview("not run"), 0.0, f"the test run failed: {exc}", Graph()) for n in batch]
        tests = {t["nodeid"]: t for t in report["tests"]}
        outcomes = []
        for nodeid in batch:
            test = tests.get(nodeid)
            if test is None:
                outcomes.append(Outcome(preview(nodeid), preview("not run"), 0.0, "the test did not run", Graph()))
                continue
            score = 1.0 if test["outcome"] in PASSING else 0.0
            outcomes.append(Outcome(preview(nodeid), preview(test["outcome"]), score, test["text"],
                                    Graph.from_json(test["graph"])))
        return outcomes

    def site_value(self, key: str):
        text = self._site_values.get(key)
        return UNSEEN if text is None else ast.literal_eval(text)

    def close(self) -> None:
        self._closed = True
        with self._live_lock:
            live = list(self._live)
        for process in live:   # still running in another thread (Ctrl-C): their groups, now
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for copy in self.copies:
            copy.remove()
        for folder in (self.copies[0].path.parent, self.copies[0].path.parent.parent):
            try:
                folder.rmdir()   # only when empty: another run may be using it
            except OSError:
                pass
        try:
            (self.root / ".tracec" / "pytest").rmdir()   # only when empty: another run may be using it
        except OSError:
            pass


def _key(values: dict) -> str:
    return json.dumps({k: repr(v) for k, v in values.items()}, sort_keys=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)   # the test process and anything it started
    except (ProcessLookupError, PermissionError):
        pass
    process.communicate()


def _death(status: int, output: str) -> str:
    """One line: why a pytest child ended without writing its report."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        why = f"the test process was killed by {name} (a crash, e.g. a segfault)"
    else:
        why = f"the test process exited with status {status} before writing its report (os._exit? a crash?)"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
    return why + (f"; its last output: {last[:200]}" if last else "")

"""The pytest plugin (entry point `pytest11`): `pytest --tracec` records the traced calls each test makes
and turns the test's result into feedback on what it produced.

Loaded in every pytest session of everyone who has tracec installed, so without `--tracec` it only adds
its options: it imports nothing beyond the standard library and `tracec.runtime`, and registers no
per-test hooks. With `--tracec`:
- the import hook for the project root is installed before the initial conftests load, so project
  modules imported by conftest and test modules are instrumented;
- each test (setup, call, teardown) runs under a fresh recording; a failure (assertion, exception,
  fixture error) becomes feedback with score 0 on every output the test produced, a pass score 1;
  `tracec.feedback(...)` inside a test adds its own;
- `--tracec-report FILE` writes every test's outcome and graph as JSON (atomically), which is how
  `tracec optimize --pytest` reads a test run it started in a subprocess (see tracec/optimize/pytest_evaluator.py).
"""

from __future__ import annotations

import json
import os

import pytest

from tracec.literals import source_text

REPORT_VERSION = 1
TEXT_CHARS = 1500   # feedback text per test: the crash line and assert explanation, not whole tracebacks


def pytest_addoption(parser) -> None:
    group = parser.getgroup("tracec", "tracec: record traced calls per test, test results as feedback")
    group.addoption("--tracec", action="store_true", default=False,
                    help="record the traced calls each test makes; failures become feedback on its outputs")
    group.addoption("--tracec-report", metavar="FILE", default=None,
                    help="with --tracec: write each test's outcome, feedback and graph as JSON to FILE")
    group.addoption("--tracec-candidate", metavar="FILE", default=None,
                    help="with --tracec: how `tracec optimize --pytest` wants this run (written by it; not "
                    "meant to be written by hand)")
    group.addoption("--tracec-root", metavar="DIR", default=None,
                    help="with --tracec: the project root (default: found from pytest's rootdir; set by "
                    "`tracec optimize --pytest` to its scratch copy of the project)")


def _enabled(options) -> bool:
    return bool(options.tracec or options.tracec_report or options.tracec_candidate)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    # Runs before the initial conftests (and the test modules they import) load; only installed
    # plugins get this hook, which is what the entry point makes us.
    if _enabled(early_config.known_args_namespace):
        from tracec.importhook import install

        install(_root(early_config.known_args_namespace, early_config.rootpath))


def pytest_configure(config) -> None:
    if _enabled(config.option):
        from tracec.importhook import install

        root = _root(config.option, config.rootpath)
        install(root)   # again: harmless, and covers sessions started without the entry point (-p)
        config.pluginmanager.register(TracecSession(config, root), "tracec-recorder")


def _root(options, rootpath):
    from pathlib import Path

    from tracec.project import find_project_root

    return Path(options.tracec_root).resolve() if options.tracec_root else find_project_root(rootpath)


class TracecSession:
    """The per-session part of the plugin, registered only under `--tracec`."""


    def __init__(self, config, root) -> None:
        self.config, self.root = config, root
        self.report_path = config.option.tracec_report
        self.candidate = _read_candidate(config.option.tracec_candidate)
        self.record = self.candidate.get("record", True)
        self.collected: list[str] = []
        self.targets: list[dict] = []
        self.tests: list[dict] = []
        self.error: str | None = None
        self.collect_errors: list[str] = []
        self._recorders: dict[str, object] = {}     # nodeid -> the recording of the running test
        self._reports: dict[str, list] = {}          # nodeid -> its setup/call/teardown reports

    # -- collection: what can be optimized, and the candidate to try -------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session) -> None:
        self.collected = [item.nodeid for item in session.items]
        self.targets = _targets(self.root)
        origin = self.candidate.get("origin")
        strays = _imported_from(origin, self.root) if origin else []
        if strays:   # the tests import the user's tree, not the optimizer's copy: nothing would be validated
            self.error = (f"the module {strays[0]} was imported from {origin} itself, not from the optimizer's "
                          "copy (an editable install with an import finder?); make the tests import the project "
                          "from its folder (e.g. `pythonpath = [\".\"]` in [tool.pytest.ini_options])")
            session.shouldstop = f"tracec: {self.error}"
            session.items[:] = []

    def pytest_collectreport(self, report) -> None:
        if report.failed:   # e.g. a test module that does not import: say which, in one line
            lines = str(report.longrepr).strip().splitlines()
            self.collect_errors.append(f"{report.nodeid or '.'}: {lines[-1] if lines else 'collection failed'}")

    # -- one test ----------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        from tracec import runtime

        recorder = runtime.start() if self.record else None
        self._recorders[item.nodeid] = recorder
        try:
            yield
        finally:
            if recorder is not None:
                runtime.stop(recorder)
            self._finish(item, recorder, self._reports.pop(item.nodeid, []))
            self._recorders.pop(item.nodeid, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        self._reports.setdefault(item.nodeid, []).append(report)
        recorder = self._recorders.get(item.nodeid)
        if recorder is not None and call.excinfo is not None and not report.skipped:
            # the exception's error nodes (inside traced code) are part of what the test produced
            recorder.observe_exception(call.excinfo.value)

    def _finish(self, item, recorder, reports) -> None:
        from tracec.api import explicit_feedback

        failed = [r for r in reports if r.failed]
        if failed:
            outcome, score, text = "failed", 0.0, _failure_text(failed[0], self.root)
        elif any(r.skipped and not hasattr(r, "wasxfail") for r in reports):
            outcome, score, text = "skipped", None, "test skipped"
        else:
            outcome, score, text = "passed", 1.0, "test passed"
        if recorder is not None and score is not None:
            for node in recorder.outputs:
                recorder.feedback(node, text, score)
        explicit = explicit_feedback(recorder) if recorder is not None else []
        if explicit:   # also when no traced call was made, so the feedback is not silently lost
            text += "\n" + "\n".join(f"tracec.feedback: {t}" + ("" if s is None else f" (score {s:g})")
                                     for t, s in explicit)
        entry = {"nodeid": item.nodeid, "outcome": outcome, "score": score, "text": text,
                 "duration": round(sum(r.duration for r in reports), 6)}
        if recorder is not None:
            entry["graph"] = recorder.to_json()
        self.tests.append(entry)

    # -- end of session ----------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if not self.report_path:
            return
        from tracec.fileio import write_atomic

        data = {"version": REPORT_VERSION, "root": str(self.root), "rootdir": str(self.config.rootpath),
                "error": self.error, "collect_errors": self.collect_errors, "collected": self.collected,
                "targets": self.targets, "site_values": _site_values(), "tests": self.tests}
        write_atomic(os.path.abspath(self.report_path), json.dumps(data))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        nodes = sum(len(t.get("graph", {}).get("nodes", ())) for t in self.tests)
        where = f"report: {self.report_path}" if self.report_path else "no report (add --tracec-report FILE)"
        line = f"tracec: recorded {len(self.tests)} test(s), {nodes} node(s); {where}"
        if self.error:
            line += f"; tests not run: {self.error}"
        terminalreporter.write_line(line)


def _read_candidate(path: str | None) -> dict:
    if not path:
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _failure_text(report, root) -> str:
    """`<phase> failed at FILE:LINE: <crash message>` plus the line of the test that failed."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:   # e.g. a collection-like error rendered as plain text
        text = str(report.longrepr).strip().splitlines()
        return f"{report.when} failed: {text[-1] if text else 'unknown error'}"[:TEXT_CHARS]
    where = f"{os.path.relpath(crash.path, root)}:{crash.lineno}"
    source = _source_line(crash.path, crash.lineno)
    text = f"{report.when} failed at {where}" + (f" (`{source}`)" if source else "") + f": {crash.message}"
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 3] + "..."


def _source_line(path: str, lineno: int) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _targets(root) -> list[dict]:
    """Every trainable parameter of the project's loaded modules, with its current value where known."""
    from tracec.optimize.candidates import bound_values, find_targets, project_hooks

    hooks = project_hooks(root)
    values = {key: source_text(value) for key, value in bound_values(hooks).items()}
    return [{"key": t.key, "kind": t.kind, "file": t.file, "line": t.line, "doc": t.doc,
             "value": values.get(t.key)} for t in find_targets(hooks).values()]


def _site_values() -> dict[str, str]:
    """What each `tracec.param` site that ran last returned, as literal text the parent reads back."""
    from tracec.optimize.candidates import site_values

    texts = {key: source_text(value) for key, value in site_values().items()}
    return {key: text for key, text in texts.items() if text is not None}


def _imported_from(origin: str, root) -> list[str]:
    """Modules loaded from the user's project tree `origin` rather than from the copy `root` runs in."""
    import sys

    from tracec.importhook import ProjectFiles
    from tracec.project import is_under

    project = ProjectFiles(origin)   # the user's own files: not its virtualenvs, site-packages, .tracec
    return sorted(name for name, module in list(sys.modules.items())
                  if isinstance(path := getattr(module, "__file__", None), str) and path in project
                  and not is_under(path, root))

"""`tracec optimize --backend ray` on a real Ray cluster the tests start themselves on loopback (two nodes of
one CPU each, tests/ray_cluster.py), through the CLI with scripted proposers. The search is test_search's
merge scenario, whose pool, metric calls and patch are known exactly; each fault must leave that result
unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ray_cluster import ENV, parent_of, processes_naming, start_cluster
from support import TRACEC, starting_with
from test_search import apply_and_score, by_proposal, make_project, state_of, suggestion

from tracec.optimize.ray_backend import excludes

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="needs Ray: pip install 'tracec[ray]'")

# the first example run anywhere (the baseline's) announces its pid and waits, so a test can kill the
# Ray worker evaluating it; later runs see the marker and go straight on
SLOW_FIRST = '''
import os as _os, time as _time
_real_run = run


def run(example):
    try:
        fd = _os.open({marker!r}, _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY)
    except FileExistsError:
        return _real_run(example)
    _os.write(fd, str(_os.getpid()).encode())
    _os.close(fd)
    _time.sleep(4)
    return _real_run(example)
'''

MERGE = by_proposal(suggestion(GREETING="Hello"), suggestion(PUNCT="!"))


@pytest.fixture(scope="module")
def cluster():
    started = start_cluster()
    yield started
    started.stop()
    assert processes_naming(str(started.temp)) == []


def project(tmp_path: Path, name: str) -> tuple[Path, Path]:
    root = make_project(tmp_path / name)
    marker = tmp_path / name / "first-run.pid"
    with (root / "task.py").open("a") as task:
        task.write(SLOW_FIRST.format(marker=str(marker)))
    return root, marker


def command(cluster, server, *args: str) -> list[str]:
    """The merge scenario's command line, on `cluster` (None: a local Ray instance tracec starts)."""
    address = ["--ray-address", cluster.address] if cluster is not None else []
    return [TRACEC, "optimize", "task.py", "--model", "openai/scripted", "--api-base", server.url, "--no-cache",
            "--backend", "ray", *address, "--steps", "3", "--proposals", "2", *args]


def optimize(root: Path, argv: list[str], env: dict | None = None) -> subprocess.Popen:
    """tracec as a user runs it, with the cluster's client settings; `env` adds to them (None removes)."""
    merged = {**os.environ, "TRACEC_MODEL": "", **ENV, **(env or {})}
    return subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in merged.items() if v is not None},
                            preexec_fn=starting_with(signal.SIGINT, signal.SIG_DFL))


def finished(process: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def pool(state: dict) -> list:
    return [(c["origin"], c["parents"], c["status"], c["values"], c["val_scores"]) for c in state["candidates"]]


def scratch_folders() -> set[str]:
    """The actors' folders of scratch copies (the nodes share this machine's temp dir)."""
    import tempfile

    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("tracec-ray-")}


def diff_of(patch: Path) -> str:
    """The patch without its header (which names the run)."""
    text = patch.read_text()
    return text[text.index("\n--- "):]


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory):
    """The merge scenario on the cluster, undisturbed: (its state, its patch text, its stdout)."""
    from llm_server import ScriptedServer

    root, _ = project(tmp_path_factory.mktemp("reference"), "proj")
    with ScriptedServer(MERGE) as server:
        status, out, err = finished(optimize(root, command(cluster, server)))
    assert status == 0, err
    (patch,) = (root / ".tracec" / "patches").glob("*.patch")
    return state_of(root), diff_of(patch), out, root


def test_on_a_two_node_cluster_the_search_and_its_patch_are_exactly_the_local_ones(reference):
    state, _, out, root = reference
    assert [(o, p, s, v) for o, p, s, _, v in pool(state)] == [
        ("baseline", [], "member", [0.0, 0.0, 0.0, 0.0]),
        ("proposal", [0], "member", [1.0, 0.0, 1.0, 0.0]),
        ("proposal", [0], "member", [0.0, 1.0, 0.0, 1.0]),
        ("merge", [1, 2], "member", [1.0, 1.0, 1.0, 1.0])]
    assert state["metric_calls"] == 32 and "metric calls 32, LLM calls 2" in out
    assert state["best"] == 1.0 and apply_and_score(root) == 1.0      # the invariant holds under Ray
    assert not (root / ".tracec" / "scratch").exists()


def test_max_metric_calls_is_exact_with_both_nodes_in_flight(cluster, tmp_path, scripted_llm):
    root, _ = project(tmp_path, "proj")
    status, out, err = finished(optimize(root, command(cluster, scripted_llm(MERGE), "--max-metric-calls", "20")))
    assert status == 0, err
    assert state_of(root)["metric_calls"] == 20
    assert "max_metric_calls 20: 20 spent" in out


def test_killing_a_ray_worker_mid_evaluation_leaves_the_result_unchanged(cluster, reference, tmp_path,
                                                                         scripted_llm):
    root, marker = project(tmp_path, "proj")
    process = optimize(root, command(cluster, scripted_llm(MERGE)))
    deadline = time.monotonic() + 120
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline and process.poll() is None, "no example started"
        time.sleep(0.1)
    run_fork = int(marker.read_text())
    actor = parent_of(parent_of(run_fork))           # the run fork <- its worker host <- the Ray actor
    assert actor in cluster.actor_pids()
    os.kill(actor, signal.SIGKILL)
    status, out, err = finished(process)
    assert status == 0, err
    state, patch, _, _ = reference
    assert pool(state_of(root)) == pool(state)
    assert state_of(root)["metric_calls"] == state["metric_calls"]
    (written,) = (root / ".tracec" / "patches").glob("*.patch")
    assert diff_of(written) == patch
    assert apply_and_score(root) == 1.0


def test_ctrl_c_cancels_the_ray_work_and_writes_what_improved(cluster, tmp_path, scripted_llm):
    root, _ = project(tmp_path, "proj")
    asked = threading.Event()

    def reply(request):
        if asked.is_set():                 # step 2's proposals: the user presses Ctrl-C meanwhile
            time.sleep(30)
        asked.set()
        return MERGE(request)

    before = scratch_folders()
    process = optimize(root, command(cluster, scripted_llm(reply), "--proposals", "1"))
    assert asked.wait(120), "step 1 never asked the model"
    deadline = time.monotonic() + 120
    while not list((root / ".tracec" / "runs").glob("*/state.json")) or \
            len(state_of(root)["candidates"]) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "step 1 did not finish"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    status, out, err = finished(process, 120)
    assert status == 130, err
    assert list((root / ".tracec" / "patches").glob("*.patch"))        # step 1's improvement is written
    deadline = time.monotonic() + 30
    while cluster.actor_pids() and time.monotonic() < deadline:       # the actors of the run are stopped
        time.sleep(0.5)
    assert cluster.actor_pids() == []
    assert scratch_folders() <= before


def test_a_run_resumes_after_its_driver_was_killed(cluster, reference, tmp_path, scripted_llm):
    root, _ = project(tmp_path, "proj")
    server = scripted_llm(MERGE)
    process = optimize(root, command(cluster, server))
    deadline = time.monotonic() + 300
    while not list((root / ".tracec" / "runs").glob("*/state.json")) or len(state_of(root)["candidates"]) < 3:
        assert time.monotonic() < deadline and process.poll() is None, "step 1 did not finish"
        time.sleep(0.2)
    process.kill()                             # the driver dies after step 1 (the machine, an OOM kill)
    finished(process)
    (run,) = (root / ".tracec" / "runs").iterdir()
    status, out, err = finished(optimize(root, command(cluster, server, "--resume", run.name)))
    assert status == 0, err
    state, _, _, _ = reference
    assert pool(state_of(root)) == pool(state)
    assert apply_and_score(root) == 1.0


def test_without_an_address_tracec_starts_a_local_ray_and_stops_exactly_it(tmp_path, scripted_llm):
    import tempfile

    root, _ = project(tmp_path, "proj")
    ray_temp = tempfile.mkdtemp(prefix="trl", dir="/tmp")   # where the local instance keeps its sessions
    home = tmp_path / "home"   # Ray's default for a local instance: token auth, its token in ~/.ray/
    home.mkdir()
    status, out, err = finished(optimize(root, command(None, scripted_llm(MERGE)),
                                         {"RAY_TMPDIR": ray_temp, "RAY_ADDRESS": None, "RAY_AUTH_MODE": None,
                                          "HOME": str(home)}))
    assert status == 0, err
    assert state_of(root)["best"] == 1.0
    assert os.listdir(ray_temp)                               # it did start there
    assert processes_naming(ray_temp) == []                   # and nothing of it runs on


def test_the_upload_leaves_out_tracec_state_git_virtualenvs_and_the_users_patterns(tmp_path):
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "src" / "env2").mkdir(parents=True)
    (tmp_path / "src" / "env2" / "pyvenv.cfg").write_text("home = /usr\n")
    patterns = excludes(tmp_path, ("data/*.bin",))
    assert {"/.tracec/", "/.git/", "/venv/", "/src/env2/", "__pycache__/", "data/*.bin"} <= set(patterns)


def test_backend_ray_without_ray_installed_is_a_one_line_usage_error(tmp_path, scripted_llm):
    root, _ = project(tmp_path, "proj")
    hidden = tmp_path / "no-ray"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    argv = [TRACEC, "optimize", "task.py", "--model", "openai/scripted", "--api-base", scripted_llm([]).url,
            "--backend", "ray"]
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TRACEC_MODEL": "", "PYTHONPATH": str(hidden)})
    assert result.returncode == 2
    assert result.stderr.strip() == ("tracec optimize: error: --backend ray needs Ray, which is not installed: "
                                     "pip install 'tracec[ray]'")


def test_pytest_mode_with_backend_ray_is_a_one_line_usage_error(tmp_path, scripted_llm):
    root, _ = project(tmp_path, "proj")
    (root / "pyproject.toml").write_text('[tool.tracec]\nbackend = "ray"\n')   # from the settings, too
    result = subprocess.run([TRACEC, "optimize", "--pytest", "tests", "--model", "openai/scripted", "--api-base",
                             scripted_llm([]).url], cwd=root, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TRACEC_MODEL": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == ("tracec optimize: error: backend ray evaluates a task file; --pytest runs on "
                                     "this machine (--backend local)")

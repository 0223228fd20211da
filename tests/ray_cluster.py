"""A real two-node Ray cluster on loopback for tests: `ray start --head` on a free port plus a second node
joining it, each `--block`ed in a session of its own under a temp dir of its own. Stopping kills exactly
those processes: the two process groups, then any process whose command line names the cluster's temp dir
(Ray's daemons carry their session folder in their arguments). Never `ray stop`, which stops every Ray on
the machine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
# Ray 2.5x turns token authentication on for a head that finds ~/.ray/auth_token (written by any local
# `ray.init()`), and clients then fail to connect: the test cluster and its clients set the mode themselves
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_naming(text: str) -> list[int]:
    """Pids of the processes whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry))
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@dataclass
class Cluster:
    temp: Path
    address: str = ""
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, cpus_per_node: int = 1) -> "Cluster":
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--disable-usage-stats", "--block"]
        env = {**os.environ, **ENV}
        head = [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp}",
                *common]
        self._node(head, "head", env)
        self._wait(1)
        self._node([RAY, "start", f"--address={self.address}", *common], "node", env)
        self._wait(2)
        return self

    def _node(self, command: list[str], name: str, env: dict) -> None:
        log = open(self.temp / f"{name}.log", "wb")
        self.nodes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                           start_new_session=True))

    def _wait(self, nodes: int, seconds: float = 120) -> None:
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(1 for n in ray.nodes() if n['Alive']))")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                                    env={**os.environ, **ENV})
            if result.returncode == 0 and result.stdout.strip().isdigit() and int(result.stdout) >= nodes:
                return
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the test's Ray cluster did not reach {nodes} node(s): "
                           f"{(self.temp / 'head.log').read_text(errors='replace')[-2000:]}")

    def actor_pids(self) -> list[int]:
        """The processes of tracec's evaluation actors (Ray titles an actor's process ray::ClassName)."""
        return [pid for pid in processes_naming("ray::EvaluationActor")]

    def stop(self) -> None:
        for node in self.nodes:
            try:
                os.killpg(node.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for node in self.nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        for node in self.nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)   # what the group still holds
            except ProcessLookupError:
                pass
        for pid in processes_naming(str(self.temp)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_cluster() -> Cluster:
    temp = Path(tempfile.mkdtemp(prefix="tr", dir="/tmp"))   # short: Ray's socket paths live under it
    return Cluster(temp).start()

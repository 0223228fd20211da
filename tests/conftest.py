"""Shared pytest fixtures."""

from __future__ import annotations

import pytest
from llm_server import ScriptedServer  # pytest puts this folder on sys.path (rootdir-relative imports)


@pytest.fixture
def scripted_llm():
    """A factory: scripted_llm(replies) -> a started ScriptedServer; every one is stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(replies, **options) -> ScriptedServer:
        server = ScriptedServer(replies, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()

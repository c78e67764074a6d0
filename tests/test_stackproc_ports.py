"""tests/stackproc.py: ``free_port`` releases the port it found before the child binds it, so another process can
take it in between (a race with everything else on the machine). A localbase whose port is taken is started again on
new ports instead of failing the session."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from localbase.postgres import free_port
from tests.stackproc import StackProcess


def test_a_stack_whose_port_was_taken_starts_on_another(tmp_path: Path) -> None:
    taken = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        stack = StackProcess(tmp_path / "data", port=taken)
        try:
            stack.start()
            assert stack.port != taken
            assert httpx.get(f"{stack.api_url}/auth/v1/health", timeout=10).status_code == 200
        finally:
            stack.stop()

"""The stack serves on the event loop uvicorn itself would choose: uvloop where it is installed.

`uvicorn.run` picks uvloop by default (`loop="auto"`); localbase drives `uvicorn.Server.serve()` itself, and a plain
`asyncio.run` silently left every request, frame and capture batch on asyncio's pure-Python selector loop. The
stack is a child process, so the test looks at what that process has loaded.
"""

from __future__ import annotations

import importlib.util

import psutil
import pytest

from tests.stackproc import StackProcess


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed on this platform")
def test_stack_runs_on_uvloop(stack: StackProcess) -> None:
    assert stack.proc is not None
    mapped = {m.path for m in psutil.Process(stack.proc.pid).memory_maps()}
    assert any("uvloop" in path for path in mapped), "the stack's process never loaded uvloop"

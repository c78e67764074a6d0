"""The stack process freezes its start-up heap once serving and makes full collections rarer (localbase/gctune.py).

A child process runs the real `stack` command with `Stack.info` (what it prints once it serves) extended by the
collector's state at that moment, so the test reads what the serving process itself holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import gc, json
import localbase.server as server
shown = server.Stack.info
def info(self):
    gc.collect()  # a full collection now: the frozen objects must not be walked, new garbage must go
    found = {
        "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "enabled": gc.isenabled(),
        "threshold": gc.get_threshold(),
    }
    return {**shown(self), "gc": found}
server.Stack.info = info
from localbase.cli import main
raise SystemExit(main(["stack", "--json", "--port", "0", "--data", DATA]))
"""


def test_a_serving_stack_has_frozen_its_start_up_objects(tmp_path: Path) -> None:
    data = tmp_path / "gc"
    log = tmp_path / "stack.log"
    with log.open("w") as errors:  # a file, not a pipe: the stack's log can never fill a buffer nobody reads
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT.replace("DATA", repr(str(data)))],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the stack serves, however slow the machine (or it exits)
        assert line, log.read_text()
        found = json.loads(line)["gc"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert found["enabled"], "the collector still runs for what is allocated after start-up"
    # modules, the app, the pools, the realtime capture: tens of thousands of objects, out of the collector's walk
    assert found["frozen"] > 20_000, found
    assert found["tracked"] < found["frozen"] / 4, found
    # full collections rarer (100 middle ones per full one instead of 10); the young generations as CPython sets them
    assert found["threshold"] == [700, 10, 100], found

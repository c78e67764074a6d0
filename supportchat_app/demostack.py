"""The embedded demo server: a localbase child process with demo data, started when nothing is configured.

Run as `python -m localbase stack --demo --json --port 0 --data DIR`; in a frozen build `sys.executable`
is the bundle itself, so the same thing is `supportchat stack ...`. The child prints one JSON line when
it is ready (api_url, anon_key, ...), which is all the app needs from it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

log = logging.getLogger(__name__)

START_TIMEOUT = 180.0


def stack_command(data: Path) -> list[str]:
    """The command line that runs the demo stack with this interpreter or this frozen bundle."""
    if getattr(sys, "frozen", False):
        base = [sys.executable, "stack"]
    else:
        base = [sys.executable, "-m", "localbase", "stack"]
    return [*base, "--demo", "--json", "--port", "0", "--data", str(data)]


class DemoStackError(RuntimeError):
    """The demo server could not start; the message is a plain sentence for the user."""


def _alive(pid: int) -> bool:
    """Whether `pid` runs, without touching it (psutil: on Windows `os.kill(pid, 0)` would terminate it)."""
    return bool(psutil.pid_exists(pid))


class DemoStack:
    """Owns the child process; `start()` waits for its JSON line, `stop()` shuts it down cleanly.

    A second SupportChat started on the same data dir must not start a second PostgreSQL on the same
    database files: the running stack's details are kept in `stack.json` and reused while its process lives.
    """

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.owned = False

    @property
    def info_file(self) -> Path:
        return self.data.parent / "demo-stack.json"

    def _running(self) -> dict[str, Any] | None:
        try:
            saved = json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(saved, dict) and isinstance(saved.get("pid"), int) and _alive(saved["pid"]):
            url = urlparse(str(saved.get("api_url", "")))
            try:  # a live pid could be a stranger that reused it: the port must answer too
                socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1).close()
            except OSError:
                return None
            return saved
        return None

    @property
    def log_path(self) -> Path:
        return self.data.parent / "demo-stack.log"

    async def start(self) -> dict[str, Any]:
        running = self._running()
        if running is not None:
            self.info = running
            return running
        self.data.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as err:
            self.proc = subprocess.Popen(
                stack_command(self.data),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), START_TIMEOUT)
        except TimeoutError:
            line = ""
        try:
            self.info = json.loads(line) if line else {}
        except ValueError:
            self.info = {}
        if "api_url" not in self.info:
            await asyncio.to_thread(self.stop)
            raise DemoStackError(
                f"The demo server did not start. Details are in {self.log_path}; "
                "you can also connect to a Supabase project in Settings."
            )
        # the app needs the URL and the anon key only: the service key, DB URL and JWT secret never leave here
        self.info = {"api_url": self.info["api_url"], "anon_key": self.info["anon_key"], "pid": self.proc.pid}
        self.owned = True
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info))
        tmp.chmod(0o600)
        tmp.replace(self.info_file)
        return self.info

    def _let_postgres_through(self) -> None:
        """Only as root: PostgreSQL then runs as the `embedded_postgres` user, and the sync engine has made
        the data dir 0700 since the stack started, so `pg_ctl stop` could not reach its cluster. Traverse-only
        (0711) on the data dir lets it through; the engine's own files stay 0600."""
        if sys.platform == "win32" or os.geteuid() != 0:
            return
        try:
            os.chmod(self.data.parent, 0o711)
        except OSError:
            log.warning("could not open %s for the demo server's PostgreSQL to stop", self.data.parent)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or not self.owned:
            return
        self.info_file.unlink(missing_ok=True)
        if proc.poll() is not None:
            return
        self._let_postgres_through()
        if sys.platform == "win32":
            proc.terminate()
        else:
            proc.send_signal(signal.SIGTERM)  # the stack treats SIGTERM like Ctrl+C and stops PostgreSQL cleanly
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("demo stack did not stop in time; killing it")
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

"""Start the real `supportchat` app as a child process for browser, window and benchmark checks.

Kept apart from the fixtures so bench/app.py can use it too. The app talks to the given server
(SUPABASE_URL / SUPABASE_ANON_KEY) and keeps its files in its own data dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from localbase.postgres import free_port
from tests.stackproc import PORT_ATTEMPTS, port_taken

LAUNCH_LINE = re.compile(r"SupportChat is at (http://\S+)")


def launch_url_in(log: Path, port: int | None = None) -> str:
    """The launch URL the app printed into `log` (its stdout), or "" while it has not yet. With `port`, only
    that process's: the log is appended to across restarts on one data dir, and an earlier run's URL (another
    port, another secret) must not be taken for this one's."""
    try:
        found = [str(u) for u in LAUNCH_LINE.findall(log.read_text(errors="replace"))]
    except FileNotFoundError:
        return ""
    if port is not None:
        found = [u for u in found if f"127.0.0.1:{port}/" in u]
    return found[-1] if found else ""


@dataclass
class AppProcess:
    data_dir: Path
    api_url: str
    anon_key: str
    web: bool = True
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    printed_url: str = ""  # the launch URL the app printed at start (its one-time token: good once)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def launch_url(self) -> str:
        """A new one-time launch URL, asked from the app through its key file (as `supportchat open` does):
        opening it lets one browser in, once."""
        from supportchat_app import launch

        return launch.fresh_url(self.data_dir, self.port)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-app.log"

    def start(self, timeout: float = 60) -> AppProcess:
        """Start the app; again on a new port when another process took it between ``free_port`` and the app's
        bind (tests/stackproc.py ``port_taken``)."""
        for attempt in range(PORT_ATTEMPTS):
            before = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start(timeout)
            except RuntimeError:
                if self.printed_url or attempt == PORT_ATTEMPTS - 1 or not port_taken(self.log_path, before):
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> AppProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "supportchat_app", "--port", str(self.port)]
        if self.web:
            args += ["--web", "--no-browser"]
        env = {
            **os.environ,
            "SUPABASE_URL": self.api_url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPPORTCHAT_DATA_DIR": str(self.data_dir),
            "SUPPORTCHAT_SESSION_STORE": "file",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("PYTEST_CURRENT_TEST", None)  # NiceGUI would think it runs inside pytest and ignore our port
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}; see {self.log_path}")
            self.printed_url = self.printed_url or launch_url_in(self.log_path, self.port)
            try:
                # 403 (signed out: no launch cookie) is an answer too; the browser tests open launch_url
                if self.printed_url and httpx.get(self.url + "/signin", timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the app did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT (engines closed)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

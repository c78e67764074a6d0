"""`supportchat open` and a stale key file, as a hostile local user plays it: the app died without removing
`<data dir>/launch/<port>.json` (killed, crashed), and another process now holds what the file names — the
recorded pid, the recorded port, or both. Whatever listens on that port must get neither the key nor the
power to choose the URL the user's browser opens; a file another user owns or may read is not trusted at
all; a file whose process is gone or whose pid now belongs to a later process is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from supportchat_app import launch

PHISHING = "http://attacker.example/supportchat-sign-in"


class Squatter:
    """A hostile process on the port a dead app recorded: it records every request it gets and answers what a
    mint answer looks like, with its own URL."""

    def __init__(self) -> None:
        self.seen: list[str] = []  # each request's line, headers and body as received
        squatter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                squatter.seen.append(f"{self.requestline}\n{self.headers}\n{body.decode(errors='replace')}")
                answer = json.dumps({"url": PHISHING, "proof": "0" * 64}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Squatter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def squatter() -> Iterator[Squatter]:
    with Squatter() as hostile:
        yield hostile


def stale_file(data_dir: Path, port: int, *, pid: int) -> tuple[Path, str]:
    """The key file an app (this test's process: started, still running) wrote and left behind, naming `pid`."""
    key = launch.new_secret()
    path = launch.write_key_file(data_dir, port, key)
    path.write_text(json.dumps({**json.loads(path.read_text()), "pid": pid}))
    return path, key


def open_ui(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supportchat_app", "open", "--print"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SUPPORTCHAT_DATA_DIR": str(data_dir)},
    )


def test_a_squatter_on_the_port_gets_no_key_and_no_say_over_the_url(squatter: Squatter, tmp_path: Path) -> None:
    # the worst case for the pid check: the recorded pid is the process that wrote the file, still running (this
    # test's own), so only the proof of the key can tell the squatter from the app
    path, key = stale_file(tmp_path, squatter.port, pid=os.getpid())
    with pytest.raises(LookupError, match="not SupportChat"):
        launch.fresh_url(tmp_path)
    assert squatter.seen and key not in squatter.seen[0], "the key never travels"
    assert not path.exists(), "what answers on the port is not the app: the file is stale"
    stale_file(tmp_path, squatter.port, pid=os.getpid())
    opened = open_ui(tmp_path)
    assert opened.returncode == 1 and PHISHING not in opened.stdout, "the squatter's URL is never opened"
    assert "not SupportChat" in opened.stderr
    assert len(squatter.seen) == 2 and key not in squatter.seen[1]


def test_a_reused_pid_is_no_app_and_its_file_is_removed(squatter: Squatter, tmp_path: Path) -> None:
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the pid, reused
    try:
        path, _ = stale_file(tmp_path, squatter.port, pid=later.pid)
        with pytest.raises(LookupError, match="no SupportChat app is running"):
            launch.fresh_url(tmp_path)
    finally:
        later.kill()
        later.wait()
    assert not path.exists(), "a stale key file is removed"
    assert squatter.seen == [], "nothing is sent to the port of a dead app"


def test_a_dead_apps_file_is_removed(squatter: Squatter, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path, _ = stale_file(tmp_path, squatter.port, pid=gone.pid)
    assert launch.running_apps(tmp_path) == []
    assert not path.exists() and squatter.seen == []


@pytest.mark.parametrize("change", ["file readable by others", "folder open to others", "owned by another user"])
def test_a_key_file_others_could_have_read_or_written_is_not_trusted(
    squatter: Squatter, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = stale_file(tmp_path, squatter.port, pid=os.getpid())
    if change == "file readable by others":
        path.chmod(0o644)
    elif change == "folder open to others":
        path.parent.chmod(0o755)
    else:  # seen from another uid, the file (and its folder) belong to someone else
        monkeypatch.setattr(launch.os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(LookupError, match="no SupportChat app is running"):
        launch.fresh_url(tmp_path)
    assert squatter.seen == []


async def test_the_app_answers_only_a_fresh_proof_and_proves_its_answer() -> None:
    async def inbox(scope: dict[str, object], receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inbox"})

    guard = launch.LaunchGuard(inbox, port=1234, key="the-key")
    transport = httpx.ASGITransport(app=guard)  # type: ignore[arg-type]
    nonce = launch.new_secret()
    proved = {launch.NONCE_HEADER: nonce, launch.PROOF_HEADER: launch.key_proof("the-key", "open", nonce)}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1234") as http:
        assert (await http.post(launch.MINT_PATH, headers={"x-supportchat-key": "the-key"})).status_code == 403
        wrong = {**proved, launch.PROOF_HEADER: launch.key_proof("another-key", "open", nonce)}
        assert (await http.post(launch.MINT_PATH, headers=wrong)).status_code == 403
        answer = await http.post(launch.MINT_PATH, headers=proved)
        assert answer.status_code == 200
        url = answer.json()["url"]
        assert url.startswith("http://127.0.0.1:1234/?launch=")
        assert answer.json()["proof"] == launch.key_proof("the-key", "app", nonce, url)
        replayed = await http.post(launch.MINT_PATH, headers=proved)
        assert replayed.status_code == 403, "a nonce is good once: a squatter cannot replay a seen request"


def test_a_squatter_that_refuses_still_leaves_the_file_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, an answer other than 2xx raised httpx's error past `fresh_url`, which kept the file: every later
    `supportchat open` failed the same way until someone removed it by hand."""
    with Squatter() as refusing:
        monkeypatch.setattr(refusing.server.RequestHandlerClass, "do_POST", _forbidden)
        path, _ = stale_file(tmp_path, refusing.port, pid=os.getpid())
        with pytest.raises(LookupError, match="answered 403"):
            launch.fresh_url(tmp_path)
    assert not path.exists()


def _forbidden(handler: BaseHTTPRequestHandler) -> None:
    handler.rfile.read(int(handler.headers.get("content-length") or 0))
    handler.send_response(403)
    handler.send_header("content-length", "0")
    handler.end_headers()


def test_the_key_file_works_without_posix_only_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has neither `os.O_NOFOLLOW` nor `os.getuid`: before, every start of the app failed writing this file."""
    monkeypatch.delattr(launch.os, "O_NOFOLLOW")
    monkeypatch.delattr(launch.os, "getuid")
    launch.write_key_file(tmp_path, 4321, launch.new_secret())
    assert [int(a["port"]) for a in launch.running_apps(tmp_path)] == [4321]


def test_a_key_file_of_another_version_is_left_alone_and_the_user_told(squatter: Squatter, tmp_path: Path) -> None:
    """A key file in the previous version's format ({port, key, pid}: no process start) may be that version's app,
    still running: `supportchat open` neither contacts nor deletes it, and says why it cannot reach that app.
    Before, it was taken for a dead app's file and deleted."""
    path, _ = stale_file(tmp_path, squatter.port, pid=os.getpid())
    older = {name: value for name, value in json.loads(path.read_text()).items() if name != "started"}
    path.write_text(json.dumps(older))
    assert launch.running_apps(tmp_path) == []
    assert json.loads(path.read_text()) == older, "left alone"
    with pytest.raises(LookupError, match="another version"):
        launch.fresh_url(tmp_path)
    opened = open_ui(tmp_path)
    assert opened.returncode == 1 and str(path) in opened.stderr and "another version" in opened.stderr
    assert json.loads(path.read_text()) == older and squatter.seen == [], "never contacted, never deleted"


def test_a_key_file_of_another_version_whose_app_is_gone_is_removed(squatter: Squatter, tmp_path: Path) -> None:
    """The same older file, its pid now running nothing (the app was killed): its key no longer stays on disk for
    good. Before, a file of another format was never removed, whatever became of its app."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    path, _ = stale_file(tmp_path, squatter.port, pid=int(gone.stdout))
    older = {name: value for name, value in json.loads(path.read_text()).items() if name != "started"}
    path.write_text(json.dumps(older))
    assert launch.running_apps(tmp_path) == []
    assert not path.exists()
    with pytest.raises(LookupError, match="no SupportChat app is running") as nothing:
        launch.fresh_url(tmp_path)
    assert "another version" not in str(nothing.value) and squatter.seen == []

"""The local UI is the user's alone: a one-time launch token lets the window (or the browser tab the
app opens) in, bound to a session cookie of this app process; every other local client gets a
signed-out page.

`LaunchGuard` is plain ASGI middleware around the whole NiceGUI app (pages, assets and the
socket.io endpoint alike), so nothing answers before it has checked, in order:
1. `Host` is `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>`: a web page that reaches the
   port through DNS rebinding carries its own host name and is refused (421);
2. an `Origin`, when sent (browsers send it on WebSocket upgrades and cross-origin requests), is this
   same loopback origin;
3. the launch cookie names a session this process handed out. The window opens `/?launch=<token>`;
   a token is good once (and for `TOKEN_TTL` seconds): redeeming it creates a fresh random session
   id, sets it as the cookie (HttpOnly, SameSite=Strict, per-port name) and redirects (303) to the
   same path without the token. A browser that has the cookie already uses the token up all the same (and
   is sent to the clean path): a link is never left good in ps or the history. A second redemption,
   from any client, gets `SIGNED_OUT_PAGE` (403),
   like every request without the cookie; the socket is closed before NiceGUI sees it, so no inbox,
   thread or session data reaches it. The token is dead before anyone can read it from the browser's
   command line (`ps`) or the terminal, and the cookie never travels in a URL.

More tokens come only through a trusted channel: `POST /_supportchat/launch` proving knowledge of the key
of `<data dir>/launch/<port>.json`, a 0600 file in the user's 0700 data dir that lives as long as the
app (`supportchat open` uses it to open the UI in a browser again; tests and benchmarks too). Sessions
and tokens live only in this process: a restart signs every browser out of the local UI.

The key never travels: a file can outlive its app (killed, crashed), its pid be reused and its port be
taken by another local user's process, which must get neither the key nor the power to choose the URL
the user's browser opens. So the exchange is mutual proof of the key, one round trip: the caller sends
a fresh nonce and HMAC(key, "open" + nonce); the app refuses a wrong proof or a nonce it has seen and
answers the URL with HMAC(key, "app" + nonce + url), which the caller checks (and that the URL is this
port's launch path) before using it. Before asking, the caller trusts a key file only when this user
owns it and nobody else may read it, and removes it when its process is gone or its pid now belongs to
another process (the file records the process's start time, which a reused pid does not have), or when
what answers on its port cannot prove the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

QUERY_KEY = "launch"
MINT_PATH = "/_supportchat/launch"
NONCE_HEADER = "x-supportchat-nonce"  # the caller's fresh challenge
PROOF_HEADER = "x-supportchat-proof"  # HMAC(key, "open" + nonce): the caller holds the key
NONCES_KEPT = 1024  # nonces remembered against replay (a nonce is good once)
TOKEN_TTL = 600.0  # seconds an unredeemed launch token stays good
MAX_TOKENS = 64  # outstanding tokens kept; the oldest go first
SIGNED_OUT_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>SupportChat</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto">
<h1>Signed out</h1><p>This SupportChat window is not the one the app opened, or its link was already
used (each link works once). Use the SupportChat window, or run <code>supportchat open</code> for a new
link; nothing of your account is shown anywhere else.</p>
</body></html>"""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def key_proof(key: str, *parts: str) -> str:
    """HMAC-SHA256 of `parts` under the key file's key: proves the key without sending it."""
    return hmac.new(key.encode(), "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def launch_path(secret: str) -> str:
    return f"/?{QUERY_KEY}={secret}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LaunchGuard:
    def __init__(self, app: ASGIApp, *, port: int, key: str, tokens: tuple[str, ...] = ()) -> None:
        self.app = app
        self.port = port
        self.key = key  # proves a mint request comes from this user (it is in their 0600 key file)
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.origins = {f"http://{host}" for host in self.hosts}
        self.cookie = f"supportchat_launch_{port}"
        self.tokens: dict[str, float] = {}  # unredeemed launch token -> monotonic deadline
        self.sessions: set[str] = set()  # cookie values handed out by a redemption
        self.nonces: dict[str, None] = {}  # mint nonces already answered (insertion-ordered, oldest first)
        for token in tokens:
            self.add_token(token)

    def add_token(self, token: str) -> None:
        self._expire()
        while len(self.tokens) >= MAX_TOKENS:
            del self.tokens[next(iter(self.tokens))]
        self.tokens[token] = time.monotonic() + TOKEN_TTL

    def mint(self) -> str:
        """A new one-time launch path (`/?launch=<token>`)."""
        token = new_secret()
        self.add_token(token)
        return launch_path(token)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, deadline in self.tokens.items() if deadline <= now]:
            del self.tokens[token]

    def _redeem(self, presented: str) -> bool:
        """True once per token: it is removed whether the caller is the window or anyone else."""
        self._expire()
        for token in list(self.tokens):
            if hmac.compare_digest(presented.encode(), token.encode()):
                del self.tokens[token]
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host_ok = headers.get("host", "") in self.hosts
        origin = headers.get("origin")
        origin_ok = origin is None or origin in self.origins
        if not (host_ok and origin_ok):
            await self._refuse(kind, receive, send, 421, b"Misdirected request: SupportChat answers on loopback only.")
            return
        if kind == "http" and scope.get("path") == MINT_PATH:
            await self._mint(scope, headers, send)
            return
        signed_in = self._has_cookie(headers.get("cookie", ""))
        if kind == "http" and scope.get("method") == "GET":
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            presented = next((v for k, v in query if k == QUERY_KEY), None)
            # a link is used up by any browser that opens it, even one signed in already (`supportchat open`
            # while the browser runs): otherwise it stays good, in ps and the history, for whoever reads it
            redeemed = presented is not None and self._redeem(presented)
            if redeemed or (presented is not None and signed_in):
                rest = urlencode([(k, v) for k, v in query if k != QUERY_KEY])
                await self._to_clean_url(scope.get("path", "/") + (f"?{rest}" if rest else ""), signed_in, send)
                return
        if signed_in:
            await self.app(scope, receive, send)
            return
        await self._refuse(kind, receive, send, 403, SIGNED_OUT_PAGE)

    async def _to_clean_url(self, location: str, signed_in: bool, send: Send) -> None:
        """303 to the same path without the token; a browser without the cookie gets a new session's."""
        headers = [
            (b"location", location.encode()),
            (b"cache-control", b"no-store"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if not signed_in:
            session = new_secret()
            self.sessions.add(session)
            headers.append((b"set-cookie", f"{self.cookie}={session}; Path=/; HttpOnly; SameSite=Strict".encode()))
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _fresh_nonce(self, headers: dict[str, str]) -> str | None:
        """The request's nonce when its proof is right and the nonce new (then it is used up), else None."""
        nonce, proof = headers.get(NONCE_HEADER, ""), headers.get(PROOF_HEADER, "")
        if not 32 <= len(nonce) <= 128 or nonce in self.nonces:
            return None
        if not hmac.compare_digest(proof.encode(), key_proof(self.key, "open", nonce).encode()):
            return None
        while len(self.nonces) >= NONCES_KEPT:
            del self.nonces[next(iter(self.nonces))]
        self.nonces[nonce] = None
        return nonce

    async def _mint(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        nonce = self._fresh_nonce(headers) if scope.get("method") == "POST" else None
        if nonce is None:
            await self._refuse("http", _no_body, send, 403, SIGNED_OUT_PAGE)
            return
        url = f"http://127.0.0.1:{self.port}{self.mint()}"
        body = json.dumps({"url": url, "proof": key_proof(self.key, "app", nonce, url)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _has_cookie(self, header: str) -> bool:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except Exception:  # a malformed Cookie header is simply no cookie
            return False
        morsel = jar.get(self.cookie)
        if morsel is None:
            return False
        value = morsel.value.encode()
        return any(hmac.compare_digest(value, session.encode()) for session in self.sessions)

    @staticmethod
    async def _refuse(kind: str, receive: Receive, send: Send, status: int, body: bytes) -> None:
        if kind == "websocket":
            await receive()  # websocket.connect; closing before accept makes the server answer 403
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


# the trusted channel for more launch tokens: a key file only this user can read ---------------------------


def key_file(data_dir: Path, port: int) -> Path:
    return data_dir / "launch" / f"{port}.json"


def write_key_file(data_dir: Path, port: int, key: str) -> Path:
    """`<data dir>/launch/<port>.json` = {port, key, pid, started}, created 0600 in a 0700 directory."""
    folder = data_dir / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = key_file(data_dir, port)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    # no O_NOFOLLOW on Windows (where the data dir is the user's own, under %LOCALAPPDATA%)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"port": port, "key": key, "pid": os.getpid(), "started": process_start(os.getpid())}, out)
    return path


def remove_key_file(data_dir: Path, port: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        key_file(data_dir, port).unlink()


def _private(path: Path, mode: int) -> bool:
    """`path` is this user's own (no symlink), and nobody else may read or write it. On Windows, which has neither
    uids nor these mode bits (modes read 0o666/0o444), only the kind of file: the data dir lies in the user's own
    profile (%LOCALAPPDATA%), which other users cannot enter."""
    try:
        found = path.lstat()
    except OSError:
        return False
    if stat.S_IFMT(found.st_mode) != mode:
        return False
    getuid = getattr(os, "getuid", None)
    return getuid is None or (found.st_uid == getuid() and found.st_mode & 0o077 == 0)


def process_start(pid: int) -> str | None:
    """When process `pid` started, as an identity a later process given the same pid cannot have; None when there
    is no such process. On Linux the start in clock ticks since boot (from /proc: psutil's create time is derived
    from the wall clock at boot, which moves when the clock is stepped, e.g. after a resume); elsewhere psutil's
    create time, which the system keeps as an absolute time."""
    if sys.platform == "linux":
        try:
            line = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        fields = line.rsplit(")", 1)[-1].split()  # the command name before it may hold spaces and parentheses
        return fields[19] if len(fields) > 19 else None
    import psutil

    try:
        return repr(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def _process_alive(info: dict[str, Any]) -> bool:
    """The file's own process still runs: its pid exists and has the start the file recorded."""
    try:
        started = process_start(int(info["pid"]))
    except (ValueError, TypeError, KeyError):
        return False
    return started is not None and started == info.get("started")


FIELDS = ("port", "key", "pid", "started")  # a key file of this version (`write_key_file`)


def _dead_pid(path: Path) -> bool:
    """A key file this version does not understand names, as every version so far did, the `pid` of its app, and
    no process has that pid now: the app is gone, whatever version wrote the file. Unreadable, or no such pid
    field, or a pid that runs (maybe that version's app): False, the file is left alone."""
    try:
        pid = json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return type(pid) is int and pid > 0 and process_start(pid) is None


def _scan(data_dir: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """The key files of app processes still alive on this data dir, newest first, and the private files this version
    does not understand (another version's format, unreadable): those are left alone, neither trusted nor removed,
    since their app may still run, unless the pid they name runs no process (`_dead_pid`: then removed). Files
    another user owns or may read are not trusted (nor is a folder others may enter); those of dead processes are
    removed."""
    folder = data_dir / "launch"
    if not _private(folder, stat.S_IFDIR):
        return [], []
    found: list[tuple[float, dict[str, Any]]] = []
    foreign: list[Path] = []
    for path in folder.glob("*.json"):
        if not _private(path, stat.S_IFREG):
            continue
        try:
            info = json.loads(path.read_text())
            int(info["port"]), str(info["key"])
            if not all(name in info for name in FIELDS):
                raise KeyError("another version's key file")
        except (OSError, ValueError, KeyError, TypeError):
            if _dead_pid(path):
                with contextlib.suppress(OSError):
                    path.unlink()  # whatever its version, its app is gone: no key of it stays on disk
                continue
            foreign.append(path)
            continue
        if not _process_alive(info):
            with contextlib.suppress(OSError):
                path.unlink()  # its app is gone (killed before it could remove the file)
            continue
        found.append((path.stat().st_mtime, info))
    return [info for _, info in sorted(found, key=lambda pair: pair[0], reverse=True)], foreign


def running_apps(data_dir: Path) -> list[dict[str, Any]]:
    """The key files of app processes still alive on this data dir, newest first (see `_scan`)."""
    return _scan(data_dir)[0]


def ask_for_url(port: int, key: str, timeout: float = 10.0) -> str:
    """A new launch URL from the app at `port`, which must prove it holds `key`; LookupError when it does not."""
    import httpx  # only here: the guard itself needs nothing beyond the standard library

    nonce = new_secret()
    answer = httpx.post(
        f"http://127.0.0.1:{port}{MINT_PATH}",
        headers={NONCE_HEADER: nonce, PROOF_HEADER: key_proof(key, "open", nonce)},
        timeout=timeout,
    )
    if answer.status_code != 200:  # the app answers its own proof with 200: anything else is not the app
        raise LookupError(f"the process at port {port} is not SupportChat (it answered {answer.status_code})")
    try:
        body = answer.json()
        url, proof = str(body["url"]), str(body["proof"])
    except (ValueError, KeyError, TypeError):
        raise LookupError(f"the process at port {port} is not SupportChat (no proof of its key)") from None
    if not hmac.compare_digest(proof.encode(), key_proof(key, "app", nonce, url).encode()):
        raise LookupError(f"the process at port {port} is not SupportChat (a wrong proof of its key)")
    if not url.startswith(f"http://127.0.0.1:{port}{launch_path('')}"):
        raise LookupError(f"the app at port {port} answered a URL that is not its launch link")
    return url


def fresh_url(data_dir: Path, port: int | None = None, timeout: float = 10.0) -> str:
    """A new one-time launch URL from the running app (of `port`, else the newest on this data dir)."""
    running, foreign = _scan(data_dir)
    apps = [a for a in running if port is None or int(a["port"]) == port]
    if not apps:
        where = f"no SupportChat app is running on {data_dir}" + (f" at port {port}" if port else "")
        if foreign:
            names = ", ".join(sorted(str(path) for path in foreign))
            where += (
                f" that this version can reach; left alone, as another version (or something else) wrote them: {names}"
                " (an app of an older version still running is opened by that version's `supportchat open`; quit it"
                " and start this version to reach it from here)"
            )
        raise LookupError(where)
    info = apps[0]
    try:
        return ask_for_url(int(info["port"]), str(info["key"]), timeout)
    except LookupError:
        # our app holds its port while it runs: whatever else answers there means the file is stale
        remove_key_file(data_dir, int(info["port"]))
        raise

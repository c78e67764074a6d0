"""The local UI is the user's alone: a per-launch secret binds the window (or the browser tab the app
opens) to this app process; every other local client gets a signed-out page.

`LaunchGuard` is plain ASGI middleware around the whole NiceGUI app (pages, assets and the
socket.io endpoint alike), so nothing answers before it has checked, in order:
1. `Host` is `127.0.0.1:<port>`, `localhost:<port>` or `[::1]:<port>`: a web page that reaches the
   port through DNS rebinding carries its own host name and is refused (421);
2. an `Origin`, when sent (browsers send it on WebSocket upgrades and cross-origin requests), is this
   same loopback origin;
3. the launch cookie equals this launch's secret. The window opens `/?launch=<secret>`; that request
   sets the cookie (HttpOnly, SameSite=Strict, per-port name) and redirects to the same path
   without the secret. Without the cookie a page request gets `SIGNED_OUT_PAGE` (403) and the
   socket is closed before NiceGUI sees it, so no inbox, thread or session data reaches it.

The secret lives only in this process and in the window's cookie jar: a restart makes a new one.
The launch URL is printed once at start (like Jupyter's token URL) for `--web --no-browser`.
"""

from __future__ import annotations

import hmac
import secrets
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

QUERY_KEY = "launch"
SIGNED_OUT_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>SupportChat</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto">
<h1>Signed out</h1><p>This SupportChat window is not the one the app opened. Use the SupportChat window,
or the link the app printed when it started; nothing of your account is shown anywhere else.</p>
</body></html>"""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def launch_path(secret: str) -> str:
    return f"/?{QUERY_KEY}={secret}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LaunchGuard:
    def __init__(self, app: ASGIApp, *, secret: str, port: int) -> None:
        self.app = app
        self.secret = secret
        self.port = port
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.origins = {f"http://{host}" for host in self.hosts}
        self.cookie = f"supportchat_launch_{port}"

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
        if self._has_cookie(headers.get("cookie", "")):
            await self.app(scope, receive, send)
            return
        if kind == "http" and scope.get("method") == "GET":
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            presented = next((v for k, v in query if k == QUERY_KEY), None)
            if presented is not None and hmac.compare_digest(presented.encode(), self.secret.encode()):
                rest = urlencode([(k, v) for k, v in query if k != QUERY_KEY])
                location = scope.get("path", "/") + (f"?{rest}" if rest else "")
                cookie = f"{self.cookie}={self.secret}; Path=/; HttpOnly; SameSite=Strict"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [
                            (b"location", location.encode()),
                            (b"set-cookie", cookie.encode()),
                            (b"cache-control", b"no-store"),
                            (b"referrer-policy", b"no-referrer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        await self._refuse(kind, receive, send, 403, SIGNED_OUT_PAGE)

    def _has_cookie(self, header: str) -> bool:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except Exception:  # a malformed Cookie header is simply no cookie
            return False
        morsel = jar.get(self.cookie)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.secret.encode())

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

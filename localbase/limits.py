"""Request size limits for the whole server: request line, headers and body, refused before they are read.

Two layers, because an ASGI app only sees a request once the server has buffered its head:

- `HeadLimitedProtocol` (uvicorn's httptools protocol with a byte count) bounds the request head
  *while it streams in*: once more than `max_url_bytes + max_header_bytes` bytes arrive without the
  head being complete, it answers 431 and closes, so a client cannot make the server buffer an
  endless URL or header.
- `LimitsMiddleware` (pure ASGI, in front of auth, REST and realtime alike) answers 414 for a request
  line over `max_url_bytes`, 431 for headers over `max_header_bytes`, and 413 for a body over
  `max_body_bytes`: at once when `Content-Length` declares it (the body is never read and the
  connection is closed), else as soon as the streamed chunks pass the limit. `/storage/v1` is exempt
  from the body limit only: uploads are files, bounded by Storage's own limits as they stream.

Hand-written because neither uvicorn nor Starlette offers these limits (uvicorn's h11 backend has a
head limit but answers a bare 400, and httptools has none). The defaults follow the gateway in front
of a hosted Supabase project (16 KiB URL, 32 KiB of headers) and PostgREST-sized JSON bodies (1 MiB);
each can be changed with an environment variable of the stack process (see `Limits.from_env`).
Errors on `/rest/v1` carry PostgREST's four keys, on `/auth/v1` GoTrue's `code`/`error_code`/`msg`,
elsewhere the gateway's `{"message": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENV_NAMES = {
    "max_url_bytes": "LOCALBASE_MAX_URL_BYTES",
    "max_header_bytes": "LOCALBASE_MAX_HEADER_BYTES",
    "max_body_bytes": "LOCALBASE_MAX_BODY_BYTES",
}


@dataclass(frozen=True)
class Limits:
    max_url_bytes: int = 16 * 1024  # path + query string, as sent
    max_header_bytes: int = 32 * 1024  # names and values of all headers together
    max_body_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] | None = None) -> Limits:
        """Defaults, overridden by `LOCALBASE_MAX_URL_BYTES`, `..._HEADER_BYTES`, `..._BODY_BYTES` (positive ints)."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for attr, name in ENV_NAMES.items():
            raw = env.get(name, "").strip()
            if raw:
                if not raw.isdigit() or int(raw) <= 0:
                    raise ValueError(f"{name} must be a positive number of bytes, not {raw!r}")
                values[attr] = int(raw)
        return cls(**values)


DRAIN_SECONDS = 2.0
BODY_EXEMPT = ("/storage/v1/",)
AUTH_CODES = {413: "request_entity_too_large", 414: "request_uri_too_long", 431: "request_headers_too_large"}
REASONS = {413: "Payload Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def _error_body(path: str, status: int, detail: str) -> bytes:
    if path.startswith("/rest/v1"):
        body: dict[str, Any] = {"code": f"PGRST{status}", "details": detail, "hint": None, "message": REASONS[status]}
    elif path.startswith("/auth/v1"):  # GoTrue's legacy error shape, which supabase-py and supabase-js read
        body = {"code": status, "error_code": AUTH_CODES[status], "msg": f"{REASONS[status]}: {detail}"}
    else:
        body = {"message": REASONS[status], "details": detail}
    return json.dumps(body).encode()


async def _refuse(send: Send, receive: Receive, path: str, status: int, detail: str, *, drain_budget: int) -> None:
    """Answer `status` at once, then close after a bounded lingering drain.

    The whole answer is written first; closing with unread bytes in the socket would make the kernel
    reset the connection and the client could lose the answer, so (like nginx's lingering close) up to
    `drain_budget` bytes or `DRAIN_SECONDS` of what the client still sends are read and thrown away.
    """
    body = _error_body(path, status, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": True})
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = 0
    while drained <= drain_budget:
        try:
            message = await asyncio.wait_for(receive(), deadline - time.monotonic())
        except TimeoutError:
            break
        if message["type"] != "http.request":
            break
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})


class LimitsMiddleware:
    """ASGI middleware refusing over-long request lines (414), headers (431) and bodies (413)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        refusal = self._head_refusal(scope)
        if refusal is not None:
            status, detail = refusal
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009, "reason": REASONS[status]})
            else:
                await _refuse(send, receive, path, status, detail, drain_budget=self.limits.max_body_bytes)
            return
        if scope["type"] == "websocket" or path.startswith(BODY_EXEMPT):
            # websocket frame sizes are the server's ws_max_size; uploads stream under Storage's own limits
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            detail = f"the request body is larger than {limit} bytes"
            await _refuse(send, receive, path, 413, detail, drain_budget=limit)
            return
        await self._streamed(scope, receive, send, limit)

    def _head_refusal(self, scope: Scope) -> tuple[int, str] | None:
        raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode()
        url_bytes = len(raw_path) + len(scope.get("query_string", b""))
        if url_bytes > self.limits.max_url_bytes:
            return 414, f"the request line is longer than {self.limits.max_url_bytes} bytes"
        header_bytes = sum(len(k) + len(v) for k, v in scope.get("headers", []))
        if header_bytes > self.limits.max_header_bytes:
            return 431, f"the headers are longer than {self.limits.max_header_bytes} bytes"
        return None

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the body through, counting; past the limit answer 413 and tell the app the client left."""
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started and message.get("more_body"):
                        await _refuse(
                            send,
                            receive,
                            str(scope.get("path", "")),
                            413,
                            f"the request body is larger than {limit} bytes",
                            drain_budget=limit,
                        )
                    elif not started:
                        await _refuse(
                            send,
                            _no_more_body,
                            str(scope.get("path", "")),
                            413,
                            f"the request body is larger than {limit} bytes",
                            drain_budget=0,
                        )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 was the answer; whatever the app says after is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _no_more_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


LINGER_SECONDS = 2.0  # how long a refused connection's input is drained before it closes


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that stops buffering a request head past the configured size (431)."""

    head_limit = Limits().max_url_bytes + Limits().max_header_bytes  # set by `protocol_for`
    _head_seen = 0
    _head_done = True  # until a message begins

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_seen = 0
        self._head_done = False

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering close: what the client still sends is read and dropped (see `_refuse`)
        super().data_received(data)
        # still inside a head after this chunk (a new head resets the count while being fed): count it
        if not self._head_done and not self.transport.is_closing():
            self._head_seen += len(data)
            if self._head_seen > self.head_limit:
                self._refuse()

    def _refuse(self) -> None:
        """Answer 431 and close gracefully.

        Closing a socket that still has unread input makes the kernel send a reset, and a reset can
        discard the answer before the client reads it (seen under load: the client got nothing). So,
        as nginx's lingering close does, the write side is shut after the answer and the input is
        drained for a short while before the connection goes.
        """
        body = _error_body("", 431, f"the request head is longer than {self.head_limit} bytes")
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def protocol_for(limits: Limits) -> type[HeadLimitedProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` bounded by these limits (plus slack for the framing)."""
    return type(
        "BoundedHttpToolsProtocol",
        (HeadLimitedProtocol,),
        {"head_limit": limits.max_url_bytes + limits.max_header_bytes + 1024},
    )

"""The engine's HTTP transport: httpx's own, plus a close that leaves no socket open.

httpcore 1.0's pool forgets, when it closes, a connection that is still connecting: ``AsyncConnectionPool.aclose``
empties its list and closes what was in it, but a connection whose TCP connect was in flight has no socket yet, so
nothing is closed; the connect then completes, the request is answered, and the socket stays open (idle, kept alive)
with nothing left that will ever close it. It surfaced as "unclosed transport" ResourceWarnings at a random later
garbage collection: the engine closes while a background request (a push, a download, an avatar) is opening its
connection — every sign-out and app close races with them.

``ClosingTransport`` wraps ``httpx.AsyncHTTPTransport`` and, once closed, closes the connection of any request that
comes back afterwards (through httpcore's documented ``network_stream`` response extension) and fails that request
with ``httpx.ConnectError`` — the same outcome a request started after the close gets from httpx. A request the
close caught mid-connect thus ends like one the close cut off mid-read, and its socket is closed now.

Written here rather than taken from a library: the fix is in how this client closes httpcore's pool, and no
httpx add-on does it (httpx's own ``AsyncHTTPTransport`` is used whole underneath).
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


class ClosingTransport(httpx.AsyncBaseTransport):
    """httpx's transport whose close also closes connections that finish connecting after it."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if self._closed:  # the pool closed while this one was connecting: nothing else will close its socket
            await _close_connection(response)
            raise httpx.ConnectError("the client closed while this request was connecting", request=request)
        return response

    async def aclose(self) -> None:
        self._closed = True
        await self._inner.aclose()


async def _close_connection(response: httpx.Response) -> None:
    stream: Any = response.extensions.get("network_stream")
    with contextlib.suppress(Exception):  # already closed by the peer; either way it is closed after this
        await response.aclose()
    if stream is not None:
        with contextlib.suppress(Exception):
            await stream.aclose()

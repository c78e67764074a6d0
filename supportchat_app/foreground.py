"""Page loads first: an open page's background work waits while a request is answered, and the cycle collector
does not start between a request's arrival and its first bytes (issue 14, bench `inbox_5k`: first paint).

Why: each open workspace page works on its own once its socket connects — the sidebar counts every list over
the cache (components/views_bar.py: ~15 ms on the bench's 5,000-ticket desk on a quiet machine, 40-60 ms on a
busy one), the lists a click may show are prefetched (components/inbox_prefetch.py, ~20 ms), the list asks for
its next rows — all of it synchronous on the app's one event loop. A page requested meanwhile (a reload, a
second window; the bench loads the next page right after the last one's rows mounted) got its first byte only
after all of it: its time to first byte was 51-409 ms against 21-46 ms with the loads two seconds apart (load
~8, the same desk). The cycle collector is the other pause that lands there: a full collection of a heap
holding a few built pages took 33-128 ms at load ~9 (four in ~12 s of loads), gen-1 collections up to 28 ms,
and they struck inside that window in several loads of six.

How: ``PageLoads`` is plain ASGI middleware around the app (pages and assets, not the socket). It counts the
HTTP requests in flight, and from a request's arrival until its first body bytes went out it holds the cycle
collector off (``gc.disable``; a collection that falls due meanwhile runs right after the first bytes, during
the page's build). Background work asks for ``turn()`` before each piece — one count of the sidebar; the
prefetched lists (computed together, so the page holds one moment's); the next rows: it returns once no request
is in flight, and always after a timer tick, so a request that arrived while the last piece ran has entered the
app before the next piece starts. A request is therefore delayed by at most the one piece running when it came.
A request that takes long (a file download) never starves the background work: a turn waits at most
``MAX_WAIT`` seconds. Without the middleware (the simulated ``user`` fixture) nothing is ever in flight and a
turn is one tick.

Bounds (the ninth session's review): file downloads (``/attachment/``, whose handler reads the whole file before
its first byte) are not page loads: they are neither counted nor hold the collector; and no request holds it for
more than ``GC_HOLD_MAX`` seconds, so a slow request cannot keep the process's collector off. The middleware sits
inside the launch guard (supportchat_app/main.py), so requests it refuses never count.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SOCKET_PATH = "/_nicegui_ws/"  # NiceGUI's socket.io endpoint: its long-lived requests are not page loads
TICK = 0.002  # seconds between background pieces: a timer, so the loop reads new requests before the next
MAX_WAIT = 0.5  # seconds a background piece waits at most for the requests in flight
GC_HOLD_MAX = 0.25  # seconds a request holds the cycle collector off at most (first paint needs ~50-150 ms)
NOT_PAGE_LOADS = ("/attachment/",)  # downloads: long by nature, and nobody waits for their first paint


@dataclass
class _Loads:
    in_flight: int = 0  # HTTP requests being answered
    gc_holds: int = 0  # of them, those whose first body bytes did not go out yet
    gc_held: bool = False  # the collector was on and PageLoads turned it off (it is turned on again only then)


_loads = _Loads()


def in_flight() -> int:
    """HTTP requests being answered now (0 without the middleware)."""
    return _loads.in_flight


def _hold_gc() -> None:
    if _loads.gc_holds == 0 and gc.isenabled():
        gc.disable()
        _loads.gc_held = True
    _loads.gc_holds += 1


def _release_gc() -> None:
    _loads.gc_holds -= 1
    if _loads.gc_holds == 0 and _loads.gc_held:
        _loads.gc_held = False
        gc.enable()


async def turn() -> None:
    """Wait for the background's next turn: a tick, then until no request is in flight (``MAX_WAIT`` at most)."""
    await asyncio.sleep(TICK)
    deadline = time.monotonic() + MAX_WAIT
    while _loads.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(TICK)


class PageLoads:
    """Counts the app's HTTP requests in flight; no cycle collection before a request's first body bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(SOCKET_PATH) or path.startswith(NOT_PAGE_LOADS):
            await self.app(scope, receive, send)
            return
        _loads.in_flight += 1
        _hold_gc()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                _release_gc()

        timer = asyncio.get_running_loop().call_later(GC_HOLD_MAX, release)

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body":
                release()

        try:
            await self.app(scope, receive, sending)
        finally:
            _loads.in_flight -= 1
            timer.cancel()
            release()

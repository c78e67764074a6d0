"""The engine's HTTP client leaves no socket open when it closes while a request is connecting
(sync/closing_transport.py). httpcore's pool forgot such a connection; its socket stayed open until a garbage
collection warned "unclosed transport", which under ``filterwarnings = error`` failed whatever test was running
then (CI, test_app_history: four such sockets from earlier app tests' engines closing mid-request).

The race is driven deterministically: the request is started, the event loop is stepped ``steps`` times (through
the connect), then the client closes; every step count up to the response is tried. A plain httpx client leaks at
most of them (the first test shows the race is real here); the engine's ``Remote`` leaks at none."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from sync.closing_transport import ClosingTransport
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote

STEPS = range(1, 9)  # enough steps to cover the connect and the answer on this event loop


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A plain HTTP/1.1 server answering every request with a small 200, closing its side when the client does
    (and, at the end, whatever is still open: the leak looked for is the client's, not this server's)."""
    writers: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    listener.close()
    for writer in writers:
        writer.close()
    await listener.wait_closed()
    await asyncio.sleep(0.05)  # the handlers see their sockets closed


async def _leaks(request: Callable[[], Awaitable[object]], close: Callable[[], Awaitable[None]], steps: int) -> int:
    """Start ``request``, step the loop ``steps`` times, close, let the request end; the sockets a garbage
    collection then finds never closed."""
    task = asyncio.ensure_future(request())
    for _ in range(steps):
        await asyncio.sleep(0)
    await close()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # failed or answered: either is fine once the client closed
    del task
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return sum("unclosed transport" in str(w.message) for w in caught)


async def test_plain_httpx_leaks_a_connection_the_close_caught_connecting(server: str) -> None:
    """The library behaviour the transport exists for (if httpcore fixes it, this fails and the transport can go)."""
    leaked = 0
    for steps in STEPS:
        client = httpx.AsyncClient()
        leaked += await _leaks(lambda c=client: c.get(server), client.aclose, steps)  # type: ignore[misc]
    assert leaked > 0


async def test_the_closing_transport_leaves_none(server: str) -> None:
    outcomes: set[str] = set()
    for steps in STEPS:
        client = httpx.AsyncClient(transport=ClosingTransport())

        async def get(c: httpx.AsyncClient = client) -> object:
            try:
                return (await c.get(server)).status_code
            except (httpx.ConnectError, RuntimeError) as exc:
                outcomes.add(type(exc).__name__)
                raise

        assert await _leaks(get, client.aclose, steps) == 0, steps
    assert "ConnectError" in outcomes  # some closes did catch a request connecting


async def test_the_engine_remote_closing_mid_request_leaves_no_socket(server: str) -> None:
    """The engine's own client (``SupabaseRemote``): a read through supabase-py's PostgREST client while the engine
    closes (a sign-out or the app quitting while the loop pulls)."""
    for steps in STEPS:
        remote = SupabaseRemote(RemoteConfig(url=server, anon_key="anon"))
        client = await remote.client()

        async def read(c: object = client) -> object:
            return await c.table("messages").select("id").execute()  # type: ignore[attr-defined]

        assert await _leaks(read, remote.close, steps) == 0, steps

"""Hostile requests against the whole server, sent as an attacker would (plain httpx, raw sockets).

Issue 10: one unauthenticated request with a deeply nested `or=`/`select=` froze auth, REST and realtime
for seconds and ended in a 500; bodies and heads of any size were read before being checked. Each
attack here must be refused with the right status while the server keeps answering a probe promptly
(the probe's latency is compared with a generous bound, not a benchmark figure).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from localbase.limits import Limits, LimitsMiddleware
from tests.conftest import Users
from tests.stackproc import StackProcess

PROMPT = 1.5  # seconds beyond idle latency: the old server stalled 4-8 s per request; a free one answers in ms


async def _probe_during(
    stack: StackProcess, attack: Callable[[], Awaitable[object]], copies: int = 4
) -> tuple[list[object], float]:
    """Run `copies` attacks at once while a probe polls /health.

    Returns the attacks' results and the probe's worst latency beyond what the machine gives it idle (the
    worst of a few probes before the attack, times 4: the machine is shared and its load varies).
    """
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as probe:
        idle = 0.0
        for _ in range(5):
            started = time.monotonic()
            await probe.get("/health")
            idle = max(idle, time.monotonic() - started)
        tasks = [asyncio.create_task(attack()) for _ in range(copies)]  # type: ignore[arg-type]
        worst = 0.0
        rounds = 0
        while rounds < 3 or not all(t.done() for t in tasks):
            started = time.monotonic()
            answer = await probe.get("/health")
            worst = max(worst, time.monotonic() - started)
            assert answer.status_code == 200
            rounds += 1
        return [t.result() for t in tasks], max(0.0, worst - 4 * idle)


def _nested(prefix: str, leaf: str, depth: int) -> str:
    return prefix * depth + leaf + ")" * depth


def _rest(stack: StackProcess) -> dict[str, str]:
    return {"apikey": stack.anon_key}


def _prebuilt(client: httpx.AsyncClient, url: str, **kwargs: Any) -> Callable[[], Awaitable[httpx.Response]]:
    """An attack sending requests built beforehand: building a 60 KB URL is slow in httpx, and this test's own
    event loop also runs the probe, whose latency must be the server's alone."""
    requests = [client.build_request("GET", url, **kwargs) for _ in range(8)]
    return lambda: client.send(requests.pop())


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("or", "(" + _nested("or(", "id.eq.1", 1500) + ")"),
        ("select", _nested("a(", "b", 2000)),
        ("not.and", "(" + _nested("and(", "id.eq.1", 1200) + ",id.eq.2)"),
    ],
)
async def test_deeply_nested_parameter_is_a_quick_400(stack: StackProcess, param: str, value: str) -> None:
    # under the URL limit once percent-encoded: the grammar itself must refuse it
    assert len(str(httpx.QueryParams({param: value}))) < Limits().max_url_bytes - 200

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        attack = _prebuilt(client, "/rest/v1/tickets", params={param: value}, headers=_rest(stack))
        answers, worst = await _probe_during(stack, attack)
    for answer in answers:
        assert isinstance(answer, httpx.Response)
        assert answer.status_code == 400, answer.text[:300]
        body = answer.json()
        assert body["code"] == "PGRST100"
        assert set(body) == {"code", "details", "hint", "message"}
        assert "levels deep" in body["details"]
        assert len(answer.content) < 1000  # the hostile text is not echoed back whole
    assert worst < PROMPT, f"the server stalled {worst:.2f}s while parsing"


async def test_nesting_within_the_limit_still_parses(stack: StackProcess, users: Users) -> None:
    tree = "(" + _nested("or(", "status.eq.open,status.eq.closed", 12) + ")"
    headers = {**_rest(stack), "Authorization": f"Bearer {stack.mint(sub=users.customer.id)}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        answer = await client.get("/rest/v1/tickets", params={"or": tree, "select": "id"}, headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("param", ["or", "select"])
async def test_sixty_kilobyte_query_is_refused_as_too_long(stack: StackProcess, param: str) -> None:
    value = "(" + _nested("or(", "id.eq.1", 13000) + ")" if param == "or" else _nested("a(", "b", 20000)
    url = f"/rest/v1/tickets?{param}={value}"  # parentheses need no percent-encoding in a query
    assert 50_000 < len(httpx.URL(url).raw_path) < 65_000

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        attack = _prebuilt(client, url, headers=_rest(stack))
        answers, worst = await _probe_during(stack, attack)
    for answer in answers:
        assert isinstance(answer, httpx.Response)
        assert answer.status_code == 414, answer.text[:300]
        assert answer.json()["message"] == "URI Too Long"
    assert worst < PROMPT, f"the server stalled {worst:.2f}s"


async def _raw_exchange(
    stack: StackProcess, head: bytes, body_chunks: int, chunk: bytes, chunked: bool = False
) -> tuple[bytes, int]:
    """Send a head, then body chunks until the server's answer arrives; (its answer, bytes of body sent)."""
    parts = urlsplit(stack.api_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    answer = bytearray()

    async def read_all() -> None:
        """Until one whole answer arrived (a refusal need not close the connection), EOF or a reset."""
        try:
            while data := await reader.read(65536):
                answer.extend(data)
                head, sep, body = bytes(answer).partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and length and len(body) >= int(length.group(1)):
                    return
        except ConnectionError:
            pass  # a reset after the answer: what arrived before it counts

    sent = 0
    read = asyncio.create_task(read_all())
    try:
        writer.write(head)
        await writer.drain()
        for _ in range(body_chunks):
            if b"\r\n\r\n" in answer or read.done():
                break
            data = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk
            try:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), timeout=20)
            except ConnectionError:
                break
            sent += len(chunk)
            await asyncio.sleep(0.001)  # let the answer arrive between chunks
        await asyncio.wait_for(read, timeout=20)
    finally:
        writer.close()
    return bytes(answer), sent


def _post_head(stack: StackProcess, path: str, extra: str) -> bytes:
    host = urlsplit(stack.api_url).netloc
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\napikey: {stack.anon_key}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("path", ["/auth/v1/signup", "/rest/v1/tickets", "/realtime/v1/api/broadcast"])
async def test_declared_oversized_body_is_refused_before_it_is_sent(stack: StackProcess, path: str) -> None:
    head = _post_head(stack, path, "Content-Length: 104857600\r\n")  # 100 MiB declared, none sent yet

    async def attack() -> tuple[bytes, int]:
        return await _raw_exchange(stack, head, body_chunks=0, chunk=b"")

    answers, worst = await _probe_during(stack, attack, copies=2)
    for answer in answers:
        assert isinstance(answer, tuple)
        assert answer[0].startswith(b"HTTP/1.1 413"), answer[0][:200]
        assert b"larger than" in answer[0]
    assert worst < PROMPT


@pytest.mark.parametrize("path", ["/auth/v1/signup", "/rest/v1/tickets", "/realtime/v1/api/broadcast"])
async def test_streamed_oversized_body_is_refused_while_streaming(stack: StackProcess, path: str) -> None:
    limit = Limits().max_body_bytes
    chunk = b"[" + b" " * 65534 + b"]"
    answer, sent = await _raw_exchange(
        stack,
        _post_head(stack, path, "Transfer-Encoding: chunked\r\n"),
        body_chunks=8 * limit // len(chunk),
        chunk=chunk,
        chunked=True,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # answered before the attacker got all 8 MiB out (the loopback socket buffers take a few MiB unread)
    assert sent < 8 * limit


async def test_oversized_headers_are_refused(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        answer = await client.get("/rest/v1/tickets", headers={**_rest(stack), "x-pad": "a" * 40_000})
    assert answer.status_code == 431
    assert answer.json()["code"] == "PGRST431"


async def test_endless_head_is_cut_off_while_streaming(stack: StackProcess) -> None:
    """A header that never ends: the server must stop buffering and answer, not wait for 8 MiB of it."""
    host = urlsplit(stack.api_url).netloc
    head = f"GET /auth/v1/health HTTP/1.1\r\nHost: {host}\r\nx-endless: ".encode()
    answer, sent = await _raw_exchange(stack, head, body_chunks=128, chunk=b"a" * 65536)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert sent < 1024 * 1024


async def test_limits_come_from_the_environment() -> None:
    limits = Limits.from_env({"LOCALBASE_MAX_URL_BYTES": "100", "LOCALBASE_MAX_BODY_BYTES": "10"})
    assert limits == Limits(max_url_bytes=100, max_body_bytes=10)
    with pytest.raises(ValueError, match="LOCALBASE_MAX_HEADER_BYTES"):
        Limits.from_env({"LOCALBASE_MAX_HEADER_BYTES": "lots"})

    async def echo(
        scope: object,
        receive: Callable[[], Awaitable[dict[str, object]]],
        send: Callable[[dict[str, object]], Awaitable[None]],
    ) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")  # type: ignore[operator]
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = LimitsMiddleware(echo, limits)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.post("/x", content=b"0123456789")).status_code == 200
        assert (await client.post("/x", content=b"0123456789a")).status_code == 413
        too_long = await client.get("/" + "a" * 120)
        assert too_long.status_code == 414

        async def stream() -> object:
            for _ in range(5):
                yield b"abcd"

        assert (await client.post("/x", content=stream())).status_code == 413  # type: ignore[arg-type]


async def test_large_requests_are_planned_off_the_event_loop() -> None:
    """Parsing and composing the SQL of a long query string (~0.3 s for 1,300 conditions) runs in a worker
    thread; a short one stays on the loop, where a thread hop would cost more than the work."""
    import threading

    from starlette.requests import Request

    from localbase.rest.request import off_loop

    def request(query: bytes) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/rest/v1/t", "query_string": query, "headers": []})

    loop_thread = threading.get_ident()
    wide = await off_loop(
        request(b"or=(" + b",".join(b"id.eq.%d" % i for i in range(1300)) + b")"), threading.get_ident
    )
    narrow = await off_loop(request(b"id=eq.1"), threading.get_ident)
    big_body = await off_loop(request(b""), threading.get_ident, body_bytes=512 * 1024)
    assert narrow == loop_thread
    assert loop_thread not in (wide, big_body)

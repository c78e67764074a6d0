"""The REST broadcast endpoints refuse an oversized body with 413 before reading the rest (issue 10 item 3):
a declared Content-Length over the limit is answered at once, and a chunked body is cut off as soon as
it passes the limit; the server never waits for (or buffers) the bytes the client announced.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest

from localbase.realtime.session import MAX_PAYLOAD_BYTES
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


async def raw_post(stack: StackProcess, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """Send the head and `body` (only part of what may be announced), then read the response without
    sending anything more: a server that waits for the announced rest never answers (the timeout fails)."""
    url = urlparse(stack.api_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\napikey: {stack.anon_key}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5.0)
        head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        length = next(
            int(line.split(b":")[1])
            for line in head_bytes.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return int(status_line.split()[1]), await asyncio.wait_for(reader.readexactly(length), 5.0)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "path", ["/realtime/v1/api/broadcast/room/events/big", "/realtime/v1/api/broadcast/room/events/big?private=true"]
)
async def test_declared_length_over_the_payload_limit_is_refused_at_once(stack: StackProcess, path: str) -> None:
    # over the endpoint's 256 KiB payload limit but under the server-wide body limit: the endpoint's own check
    declared = MAX_PAYLOAD_BYTES + 10_000
    status, rest = await raw_post(
        stack, path, {"Content-Type": "application/json", "Content-Length": str(declared)}, b'{"a": "'
    )
    assert status == 413 and b"too large" in rest


async def test_chunked_body_is_cut_off_past_the_limit(stack: StackProcess) -> None:
    chunk = b"x" * 65_536
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(5))  # 320 KiB, never finished
    status, rest = await raw_post(
        stack,
        "/realtime/v1/api/broadcast/room/events/big",
        {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        body,
    )
    assert status == 413 and b"too large" in rest


async def test_batch_endpoint_refuses_a_huge_declared_body(stack: StackProcess) -> None:
    status, _ = await raw_post(
        stack,
        "/realtime/v1/api/broadcast",
        {"Content-Type": "application/json", "Content-Length": str(50 * 1024 * 1024)},
        b'{"messages": [',
    )
    assert status == 413

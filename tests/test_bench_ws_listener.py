"""The realtime benches' receiving end (bench/ws_listener.py): frames split by hand must be the frames the server sent,
however the bytes arrive, and a subscriber read that way must still count every delivery (a wrong split would
drop or invent deliveries and the latency figures would be about something else)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bench import realtime
from bench.harness import BenchEnv
from bench.ws_listener import Listener, ProtocolError
from tests.conftest import Users
from tests.stackproc import StackProcess


class Recording(asyncio.Transport):
    """What the listener writes and whether it closed the socket (pure parsing: no socket needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """A frame as a server (unmasked) or a client (masked) sends it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    elif len(payload) < 65536:
        head += bytes([mask_bit | 126]) + len(payload).to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + len(payload).to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def unmask(data: bytes) -> tuple[int, bytes]:
    """A client's control frame: (first byte, payload)."""
    assert data[1] & 0x80, "a client frame must be masked"
    length, key = data[1] & 0x7F, data[2:6]
    return data[0], bytes(b ^ key[i % 4] for i, b in enumerate(data[6 : 6 + length]))


async def listening() -> tuple[Listener, Recording, list[bytes]]:
    got: list[bytes] = []
    listener = Listener(lambda payload, _arrived: got.append(payload))
    transport = Recording()
    listener.transport = transport
    return listener, transport, got


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
async def test_messages_come_out_whole_however_the_bytes_are_split(chunk: int) -> None:
    listener, _, got = await listening()
    texts = [b"", b"a" * 125, b"b" * 126, b"c" * 65535, b"d" * 70_000, '{"content":"é"}'.encode()]
    stream = b"".join(frame(0x1, t) for t in texts)
    stream += frame(0x2, b"binary: not a text message")
    stream += frame(0x1, b"frag", fin=False) + frame(0x0, b"men", fin=False) + frame(0x0, b"ted")
    for start in range(0, len(stream), chunk):
        listener.data_received(stream[start : start + chunk])
    assert got == [*texts, b"fragmented"]
    assert not listener._buffer  # nothing left over: every byte belonged to a frame


async def test_a_ping_gets_its_pong_and_a_close_is_answered_and_ends_the_socket() -> None:
    listener, transport, got = await listening()
    listener.data_received(frame(0x9, b"are you there") + frame(0x1, b"after the ping"))
    assert got == [b"after the ping"]
    assert [unmask(w) for w in transport.written] == [(0x8A, b"are you there")]
    listener.data_received(frame(0x8, (1000).to_bytes(2, "big") + b"bye"))
    assert unmask(transport.written[-1]) == (0x88, (1000).to_bytes(2, "big"))
    assert transport.closing


async def test_a_masked_server_frame_is_refused() -> None:
    listener, _, _ = await listening()
    with pytest.raises(ProtocolError):
        listener.data_received(frame(0x1, b"servers never mask", masked=True))


async def test_a_bench_run_through_listeners_counts_every_delivery(
    stack: StackProcess, users: Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three subscribers (customer and agent, as the benches subscribe) over real sockets: every insert reaches each
    once, and the latencies are real (positive, under the run's length)."""
    monkeypatch.setattr(realtime, "LISTENER", True)
    env = BenchEnv(stack, tmp_path, users)
    latencies, lost = await realtime._realtime_run(env, 3, rate=20, seconds=1.0)
    assert lost == 0
    assert len(latencies) == 20 * 3
    assert all(0 < ms < 5000 for ms in latencies)

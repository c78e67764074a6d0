"""The cost of Realtime Authorization (issue 10): private channels against the public topics they replaced.

- `realtime_join_private`: phx_join → ok reply of a private `ticket:<id>` channel as the ticket's
  customer (one rolled-back transaction evaluating the RLS policies on realtime.messages), against the
  same join on the public topic (no database at all). Sequential join + leave on one socket; p50 ms.
- `realtime_broadcast_private_100`: a client broadcast on a private topic (send right checked once,
  then cached) to 100 private members (each allowed to read), against the same broadcast on a public
  topic: what authorization costs per message on the socket path. p50 ms from send to arrival, over
  every (message, member).
- `realtime_typing_fanout_100` / `realtime_presence_fanout_100`: the app's real path, a `typing` or
  `viewing` signal minted by the database (POST /rest/v1/rpc/ticket_signal → realtime.send →
  NOTIFY → the hub → 100 private members), against what the app did before: a client broadcast (typing)
  or a presence track (presence_diff) on the public topic to 100 members. p50 ms from the request to
  arrival, over every (signal, member).
Signals are sent one at a time, the next once every member has the previous one, so each arrival is
matched to its send without tagging the payload; the private and the public variant alternate signal by
signal (both groups joined at once), so a machine whose load drifts during the run weighs on both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.harness import BenchEnv, Figure, figure, percentile
from bench.realtime import bench_ticket

JOINS = 200
SIGNALS = 40
MEMBERS = 100


def _token(env: BenchEnv, i: int) -> str:
    participants = (env.users.customer, env.users.agent, env.users.admin)
    return env.stack.mint(sub=participants[i % 3].id, session_id=str(uuid.uuid4()))


async def _socket(env: BenchEnv) -> ClientConnection:
    base = env.stack.api_url.replace("http://", "ws://")
    return await connect(
        f"{base}/realtime/v1/websocket?vsn=1.0.0&apikey={env.stack.anon_key}", max_size=None, compression=None
    )


async def _call(ws: ClientConnection, topic: str, event: str, payload: dict[str, Any], ref: str) -> dict[str, Any]:
    await ws.send(json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["event"] == "phx_reply" and frame["ref"] == ref:
            return dict(frame["payload"])


def _config(private: bool, presence: bool = False) -> dict[str, Any]:
    return {
        "private": private,
        "broadcast": {"self": False, "ack": False},
        "presence": {"key": "", "enabled": presence},
    }


async def _joins(env: BenchEnv, ticket: str) -> tuple[list[float], list[float]]:
    ws = await _socket(env)
    token = _token(env, 0)
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(JOINS):
            for private in (i % 2 == 0, i % 2 == 1):  # interleaved, so load changes hit both alike
                topic = f"realtime:ticket:{ticket}"
                start = time.perf_counter()
                reply = await _call(
                    ws, topic, "phx_join", {"config": _config(private), "access_token": token}, f"j{i}{private}"
                )
                times[private].append((time.perf_counter() - start) * 1000)
                assert reply["status"] == "ok", reply
                await _call(ws, topic, "phx_leave", {}, f"l{i}{private}")
    finally:
        await ws.close()
    return times[True], times[False]


class Members:
    """MEMBERS sockets joined to one topic; counts the frames of one event kind each receives."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.sockets: list[ClientConnection] = []
        self.arrivals: list[list[float]] = []
        self._readers: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()

    async def join(self, env: BenchEnv, topic: str, private: bool, presence: bool = False) -> None:
        for i in range(MEMBERS):
            ws = await _socket(env)
            reply = await _call(
                ws, topic, "phx_join", {"config": _config(private, presence), "access_token": _token(env, i)}, "1"
            )
            assert reply["status"] == "ok", reply
            self.sockets.append(ws)
            got: list[float] = []
            self.arrivals.append(got)
            self._readers.append(asyncio.create_task(self._read(ws, got)))

    async def _read(self, ws: ClientConnection, got: list[float]) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                if isinstance(raw, str) and f'"event":"{self.event}"' in raw:
                    got.append(time.perf_counter())
                    self.changed.set()

    async def wait_all(self, count: int) -> None:
        while min(len(a) for a in self.arrivals) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets))
        await asyncio.gather(*self._readers)


Sender = Callable[[int], Awaitable[None]]


async def _alternate(a: tuple[Members, Sender], b: tuple[Members, Sender]) -> tuple[list[float], list[float]]:
    """SIGNALS signals to each group, alternating a, b, a, b...: load that drifts during the run hits both alike."""
    out: tuple[list[float], list[float]] = ([], [])
    for k in range(SIGNALS):
        for (members, send), latencies in zip((a, b), out, strict=True):
            start = time.perf_counter()
            await send(k)
            await members.wait_all(k + 1)
            latencies.extend((got[k] - start) * 1000 for got in members.arrivals)
    return out


async def _broadcaster(env: BenchEnv, topic: str, private: bool) -> tuple[Members, Sender, ClientConnection]:
    """MEMBERS listeners on `topic` and a sender whose client broadcasts reach them."""
    members = Members("broadcast")
    await members.join(env, topic, private)
    sender = await _socket(env)
    join = {"config": _config(private), "access_token": _token(env, 0)}
    reply = await _call(sender, topic, "phx_join", join, "1")
    assert reply["status"] == "ok", reply

    async def send(k: int) -> None:
        await sender.send(
            json.dumps(
                {
                    "topic": topic,
                    "event": "broadcast",
                    "ref": None,
                    "join_ref": "1",
                    "payload": {"type": "broadcast", "event": "typing", "payload": {"k": k}},
                }
            )
        )

    return members, send, sender


async def _socket_broadcasts(env: BenchEnv, ticket: str) -> tuple[list[float], list[float]]:
    topic = f"realtime:bench-authz:{ticket}"
    private, send_private, s1 = await _broadcaster(env, topic, True)
    public, send_public, s2 = await _broadcaster(env, topic, False)
    try:
        return await _alternate((private, send_private), (public, send_public))
    finally:
        for sock in (s1, s2):
            await sock.close()
        await private.close()
        await public.close()


async def _signals_vs(env: BenchEnv, ticket: str, signal: str) -> tuple[list[float], list[float]]:
    """The app's database-minted signal to 100 private members, against its public predecessor."""
    members = Members("broadcast")
    await members.join(env, f"realtime:ticket:{ticket}", True)
    headers = {"apikey": env.stack.anon_key, "Authorization": f"Bearer {_token(env, 0)}"}
    topic = f"realtime:ticket:{ticket}"
    if signal == "typing":
        public, send_public, old = await _broadcaster(env, topic, False)
    else:
        public = Members("presence_diff")
        await public.join(env, topic, False, presence=True)
        old = await _socket(env)
        assert (await _call(old, topic, "phx_join", {"config": _config(False, True)}, "1"))["status"] == "ok"

        async def send_public(k: int) -> None:
            await old.send(
                json.dumps(
                    {
                        "topic": topic,
                        "event": "presence",
                        "ref": None,
                        "join_ref": "1",
                        "payload": {"event": "track", "payload": {"k": k}},
                    }
                )
            )

    try:
        async with httpx.AsyncClient(base_url=env.stack.api_url, headers=headers) as http:

            async def send_private(k: int) -> None:
                r = await http.post("/rest/v1/rpc/ticket_signal", json={"ticket_id": ticket, "signal": signal})
                assert r.status_code == 204, r.text

            return await _alternate((members, send_private), (public, send_public))
    finally:
        await old.close()
        await members.close()
        await public.close()


def _with_bench_policies(env: BenchEnv) -> contextlib.AbstractContextManager[None]:
    """Policies letting the participants read and send on `bench-authz:` topics (the app itself never sends)."""

    @contextlib.contextmanager
    def scope() -> Any:
        with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
            for cmd, clause in (("select", "using"), ("insert", "with check")):
                conn.execute(
                    f"create policy bench_authz_{cmd} on realtime.messages for {cmd} to authenticated"
                    f" {clause} (realtime.topic() like 'bench-authz:%')"
                )
            try:
                yield
            finally:
                for cmd in ("select", "insert"):
                    conn.execute(f"drop policy bench_authz_{cmd} on realtime.messages")

    return scope()


def _summary(name: str, lat: list[float], base: list[float], baseline: str, **extra: Any) -> Figure:
    return figure(
        name,
        percentile(lat, 50),
        "ms p50",
        baseline,
        percentile(base, 50),
        higher_is_better=False,
        p99_ms=round(percentile(lat, 99), 3),
        baseline_p99_ms=round(percentile(base, 99), 3),
        samples=len(lat),
        **extra,
    )


def join_bench(env: BenchEnv) -> list[Figure]:
    private, public = asyncio.run(_joins(env, bench_ticket(env, "authz bench")))
    return [_summary("realtime_join_private", private, public, "public join of the same topic p50")]


def broadcast_bench(env: BenchEnv) -> list[Figure]:
    with _with_bench_policies(env):
        private, public = asyncio.run(_socket_broadcasts(env, bench_ticket(env, "authz bench")))
    return [
        _summary("realtime_broadcast_private_100", private, public, "public socket broadcast x100 p50", members=MEMBERS)
    ]


def typing_bench(env: BenchEnv) -> list[Figure]:
    private, public = asyncio.run(_signals_vs(env, bench_ticket(env, "authz bench"), "typing"))
    return [
        _summary(
            "realtime_typing_fanout_100",
            private,
            public,
            "public socket broadcast x100 p50",
            members=MEMBERS,
            path="rpc ticket_signal -> realtime.send -> private topic",
        )
    ]


def presence_bench(env: BenchEnv) -> list[Figure]:
    private, public = asyncio.run(_signals_vs(env, bench_ticket(env, "authz bench"), "viewing"))
    return [
        _summary(
            "realtime_presence_fanout_100",
            private,
            public,
            "public presence track x100 p50",
            members=MEMBERS,
            path="rpc ticket_signal -> realtime.send -> private topic",
        )
    ]


# the public baseline of realtime_presence_fanout_100 (the presence track the app once used) tracks SIGNALS times on one
# channel, over Supabase's default of 5 presence messages per channel per 30 s: that bench's stack raises the window's
# calls as a project's settings can (`max_client_presence_events_per_window`); every other stack keeps the default
STACK_SETTINGS = {"realtime_presence_fanout_100": {"LOCALBASE_REALTIME_CLIENT_PRESENCE_MAX_CALLS": "100000"}}

BENCHES = {
    "realtime_join_private": join_bench,
    "realtime_broadcast_private_100": broadcast_bench,
    "realtime_typing_fanout_100": typing_bench,
    "realtime_presence_fanout_100": presence_bench,
}

"""Helpers shared by the realtime tests: signed-in async clients, event collectors, writes as a user.

Rows are written either through REST with a signed-in supabase-py client (as the app does) or, when
a test needs a transaction it can roll back, with psycopg as the user: `set_config('role')` and
`request.jwt.claims` inside one transaction, exactly as PostgREST runs a request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from supabase import AClientOptions, AsyncClient, acreate_client
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import User
from tests.stackproc import StackProcess, session_claims

# how long a wait for something that must happen may take: what passes returns at once, so a long bound costs nothing
# then, and a loaded machine (CI's 2 cores, a full suite beside) gets the time it needs (flake17: 5 s, used ~80 times)
WAIT = 15.0

_opened: list[tuple[AsyncClient, httpx.AsyncClient]] = []


async def client(stack: StackProcess, **realtime: Any) -> AsyncClient:
    http = httpx.AsyncClient(timeout=30)
    options = AClientOptions(
        auto_refresh_token=False, persist_session=False, realtime=realtime or None, httpx_client=http
    )
    sb = await acreate_client(stack.api_url, stack.anon_key, options)
    _opened.append((sb, http))
    return sb


async def close_all() -> None:
    """Close every client the helpers opened (sockets, auth, HTTP), so no ResourceWarning fires later."""
    while _opened:
        sb, http = _opened.pop()
        await sb.realtime.close()
        await sb.auth.close()
        await http.aclose()


async def signed_in(stack: StackProcess, user: User, **realtime: Any) -> AsyncClient:
    """An async supabase client signed in with the user's password (it hands its token to realtime)."""
    sb = await client(stack, **realtime)
    await sb.auth.sign_in_with_password({"email": user.email, "password": user.password})
    session = await sb.auth.get_session()
    assert session is not None
    await sb.realtime.set_auth(session.access_token)
    return sb


async def with_token(stack: StackProcess, token: str, **realtime: Any) -> AsyncClient:
    sb = await client(stack, **realtime)
    await sb.realtime.set_auth(token)
    return sb


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Listener:
    """A channel's received postgres_changes payloads, system messages and subscribe states."""

    channel: AsyncRealtimeChannel | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    systems: list[Any] = field(default_factory=list)
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = field(default_factory=list)

    def records(self, table: str | None = None) -> list[dict[str, Any]]:
        return [c["data"].get("record", {}) for c in self.changes if table in (None, c["data"]["table"])]

    def contents(self) -> list[str]:
        return [r["content"] for r in self.records("messages")]

    async def wait_content(self, content: str, timeout: float = WAIT) -> None:
        await wait_until(lambda: content in self.contents(), timeout, f"message {content!r}")


async def listen(sb: AsyncClient, name: str, *bindings: dict[str, Any], wait_system: bool = True) -> Listener:
    """Subscribe `name` with postgres_changes bindings and wait until the server says it is live."""
    got = Listener()
    channel = sb.channel(name)
    for b in bindings:
        channel.on_postgres_changes(
            b.get("event", "*"),
            got.changes.append,
            table=b.get("table"),
            schema=b.get("schema", "public"),
            filter=b.get("filter"),
        )
    channel.on_system(got.systems.append)
    await channel.subscribe(lambda s, e: got.states.append((s, e)))
    got.channel = channel
    assert got.states and got.states[0][0] == RealtimeSubscribeStates.SUBSCRIBED, got.states
    if wait_system and bindings:
        await wait_until(lambda: bool(got.systems), what="Subscribed to PostgreSQL")
        assert got.systems[0].message == "Subscribed to PostgreSQL"
    return got


def as_user(
    db_url: str, user: User, query: str, params: tuple[Any, ...] = (), *, rollback: bool = False
) -> list[tuple[Any, ...]]:
    """Run `query` in one transaction as `user` (role authenticated + claims), as PostgREST would."""
    claims = json.dumps(session_claims(db_url, user.id, email=user.email))
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims,)
        )
        cur = conn.execute(query, params)
        rows = cur.fetchall() if cur.description else []
        if rollback:
            conn.rollback()
        else:
            conn.commit()
    return rows


def new_ticket(db_url: str, customer: User, assignee: User | None = None, subject: str = "Printer on fire") -> str:
    ticket_id = str(
        as_user(db_url, customer, "insert into public.tickets (subject) values (%s) returning id::text", (subject,))[0][
            0
        ]
    )
    if assignee is not None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("update public.tickets set assignee_id = %s where id = %s", (assignee.id, ticket_id))
    return ticket_id


def post(
    db_url: str, user: User, ticket_id: str, content: str, *, internal: bool = False, rollback: bool = False
) -> str:
    rows = as_user(
        db_url,
        user,
        "insert into public.messages (ticket_id, content, is_internal) values (%s, %s, %s) returning id::text",
        (ticket_id, content, internal),
        rollback=rollback,
    )
    return str(rows[0][0])


def attach(db_url: str, uploader: User, ticket: str, message: str, name: str) -> str:
    """An attachment row as the upload leaves it: the Storage object first (written here, not uploaded), then the
    row the server's trigger checks against it."""
    path = f"{ticket}/{message}/{name}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata) values ('attachments', %s, %s, %s)",
            (path, uploader.id, Jsonb({"size": 3, "mimetype": "text/plain"})),
        )
        row = conn.execute(
            "insert into public.attachments (message_id, ticket_id, uploader_id, name, sha256, object_path)"
            " values (%s, %s, %s, %s, %s, %s) returning id::text",
            (message, ticket, uploader.id, name, "0" * 64, path),
        ).fetchone()
    assert row is not None
    return str(row[0])


class RawSocket:
    """A bare websocket speaking vsn 1.0.0 frames, for what the official clients never send."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, stack: StackProcess, key: str | None = None, vsn: str = "1.0.0", **kwargs: Any) -> RawSocket:
        base = stack.api_url.replace("http://", "ws://")
        url = f"{base}/realtime/v1/websocket?vsn={vsn}&apikey={key or stack.anon_key}"
        return cls(await ws_connect(url, **kwargs))

    async def send(self, topic: str, event: str, payload: dict[str, Any], join_ref: str | None = None) -> str:
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send(
            json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})
        )
        return ref

    async def next(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
        """The first frame (already received or coming) that satisfies `predicate`."""
        for frame in self.frames:
            if predicate(frame):
                self.frames.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; got {self.frames[-5:]}")
            raw = await asyncio.wait_for(self.ws.recv(), left)
            frame = json.loads(raw)
            if predicate(frame):
                return frame
            self.frames.append(frame)

    async def reply(self, ref: str, timeout: float = WAIT) -> dict[str, Any]:
        frame = await self.next(lambda f: f["event"] == "phx_reply" and f["ref"] == ref, timeout)
        return dict(frame["payload"])

    async def join(self, topic: str, config: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"config": config or {}}
        if token is not None:
            payload["access_token"] = token
        ref = await self.send(topic, "phx_join", payload)
        return await self.reply(ref)

    async def close(self) -> None:
        await self.ws.close()


def stalled_socket(stack: StackProcess, topic: str) -> socket.socket:
    """A websocket client that joins `topic` and then never reads: a tiny receive buffer and no reader task
    (client libraries read in the background whatever their queue settings, which hides a slow consumer)."""
    port = int(stack.api_url.rsplit(":", 1)[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /realtime/v1/websocket?vsn=1.0.0&apikey={stack.anon_key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    data = json.dumps({"topic": topic, "event": "phx_join", "ref": "1", "payload": {}}).encode()
    mask = os.urandom(4)
    assert len(data) < 126
    sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    return sock


def drain(sock: socket.socket, timeout: float = 10.0) -> tuple[int, bool]:
    """Read what the server sent until it closes the connection: (bytes read, closed by the server)."""
    sock.settimeout(timeout)
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except TimeoutError:
        return total, False
    except ConnectionResetError:
        return total, True
    return total, True

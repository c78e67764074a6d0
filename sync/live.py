"""Realtime on supabase-py's async client: one channel with ``postgres_changes`` on the synced
tables, plus one private channel per watched ticket for who is viewing it and who is typing.

Ticket channels are private (``ticket:<id>``, authorized by RLS on ``realtime.messages``: only the
ticket's participants may join) and clients never send on them: "viewing", "left" and "typing" are
broadcast by the database (``rpc ticket_signal``, see migration 20261129000300), which names the
sender from the caller's JWT, so nobody can appear as someone else. Viewing is renewed every
VIEWING_EVERY seconds and forgotten after VIEWING_TTL without renewal (a crashed client just
stops renewing); a client that sees a new viewer announces itself again so the newcomer learns
who was already there, and the newcomer asks the server (``viewers``, the last 'viewing' the
database kept) right after joining, so it shows them at once.

Realtime is only a hint here: every change it brings is applied to the cache at once (low
latency), but correctness comes from the pull. A supervisor task owns the socket: realtime-py's
own reconnect is off (it gives up after ``max_retries`` and then stays dead); ours retries with
backoff forever and, each time the channel is (re)joined, reports ``SUBSCRIBED`` so the engine
runs a catch-up pull that fills whatever the socket missed while it was down. A channel the server closed (realtime-py
then drops it for good) is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from sync import hops
from sync.decisions import backoff_delay
from sync.workspace_rows import CURSOR_TABLES, SNAPSHOT_TABLES

log = logging.getLogger(__name__)

STEADY_S = 30.0  # a channel the server closes after this long counts as a fresh start, not as one more close
TABLES = (
    "tickets",
    "messages",
    "attachments",
    "ticket_reads",
    "profiles",
    "message_revisions",
    *CURSOR_TABLES,
    *SNAPSHOT_TABLES,
)
TYPING_EVENT = "typing"
LEAVE_TIMEOUT = 2.0
VIEWING_EVERY = 20.0
VIEWING_TTL = 50.0


ChangeKind = Literal["INSERT", "UPDATE", "DELETE"]
ChangeHandler = Callable[[str, ChangeKind, dict[str, Any]], None]  # (table, type, record)
StateHandler = Callable[[str], None]  # 'SUBSCRIBED' | 'CHANNEL_ERROR' | 'CLOSED' | 'TIMED_OUT'
_KINDS: dict[str, ChangeKind] = {"INSERT": "INSERT", "UPDATE": "UPDATE", "DELETE": "DELETE"}


class ClientSource(Protocol):
    """What the link needs from the adapter that owns the supabase-py client (sync/remote.py)."""

    @property
    def current_client(self) -> Any: ...  # the client if it was created, else None (never creates one)
    async def client(self) -> Any: ...
    async def call(self, fn: Callable[[Any], Awaitable[Any]]) -> Any: ...  # raises only the sync error tree


async def cancel_for_sure(task: asyncio.Task[None] | None) -> None:
    """Cancel a task and wait until it has really ended. A library that swallows one
    CancelledError (a websockets handshake can) must not leave our stop() waiting forever."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
    if task is not None and not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()


class RealtimeLink:
    def __init__(self, remote: ClientSource) -> None:
        self.remote = remote
        self._channel: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._on_change: ChangeHandler | None = None
        self._on_state: StateHandler | None = None
        self._watched: dict[str, Any] = {}
        self._viewing: dict[str, asyncio.Task[None]] = {}
        self._token: str | None = None
        self.subscribed = False
        self._stopping = False
        # channels the server closed soon after their join, in a row: each new one waits longer before its join
        # (review15b: a server closing every channel got a join and a catch-up pull every 0.2 s, for good)
        self._closes = 0
        self._subscribed_at = 0.0

    async def set_token(self, token: str) -> None:
        self._token = token
        client = self.remote.current_client
        if client is not None:
            with contextlib.suppress(Exception):  # a dead socket gets the token on its next join
                await client.realtime.set_auth(token)

    async def start(self, on_change: ChangeHandler, on_state: StateHandler) -> None:
        self._on_change, self._on_state = on_change, on_state
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name="sync-realtime")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True
        await cancel_for_sure(task)
        channel, self._channel = self._channel, None
        client = self.remote.current_client
        if channel is not None and client is not None:
            # bounded: leaving over a dead socket would otherwise wait for a reply that never comes
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.remove_channel(channel), LEAVE_TIMEOUT)
        for ticket_id in list(self._watched):
            await self.unwatch(ticket_id)
        self.subscribed = False

    def _state(self, state: Any, error: Exception | None) -> None:
        name = str(getattr(state, "value", state))
        self.subscribed = name == "SUBSCRIBED"
        if self.subscribed:
            self._subscribed_at = time.monotonic()
        if error is not None:
            log.info("realtime channel %s: %s", name, error)
        if name == "CLOSED" and not self._stopping:
            # the server closed the channel (a system error: an expired token, a quota): realtime-py forgets a
            # closed channel and never rejoins it, so the supervisor builds a new one (its join: a catch-up pull)
            self._channel = None
            lived = time.monotonic() - self._subscribed_at
            self._closes = self._closes + 1 if lived < STEADY_S else 0
        if name != "SUBSCRIBED":
            self._wake.set()
        if self._on_state is not None:
            self._on_state(name)

    def _change(self, payload: Mapping[str, Any]) -> None:
        data = payload.get("data") or {}
        # realtime-py parses `type` into a str-Enum whose str() is 'Enum.MEMBER' on 3.11: use .value
        kind = _KINDS.get(str(getattr(data.get("type"), "value", data.get("type"))))
        # a DELETE has no record, only old_record: the primary key on a table with RLS
        record = (data.get("old_record") if kind == "DELETE" else data.get("record")) or {}
        if hops.enabled() and data.get("table") == "messages":
            hops.mark("received", str(record.get("id")))
        if self._on_change is not None and record and kind is not None:
            self._on_change(str(data.get("table")), kind, dict(record))

    async def _build(self, client: Any) -> None:
        channel = client.channel(f"sync-{random.getrandbits(48):012x}")
        for table in TABLES:
            channel.on_postgres_changes("*", schema="public", table=table, callback=self._change)
        self._channel = channel
        self._subscribed_at = time.monotonic()  # a close before the join counts as soon after it
        if self._token:
            await client.realtime.set_auth(self._token)
        await channel.subscribe(self._state)

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                client = await self.remote.client()
                realtime = client.realtime
                realtime.auto_reconnect = False
                if self._channel is None:
                    if self._closes:  # the last channels were closed soon after their join: not at once again
                        await asyncio.sleep(backoff_delay(self._closes - 1, random.random, base=1.0, cap=60.0))
                    await self._build(client)
                elif not realtime.is_connected:
                    await realtime.connect()  # rejoins errored channels → SUBSCRIBED → catch-up
                attempt = 0 if realtime.is_connected else attempt + 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                log.info("realtime connect failed (%s): %s", type(exc).__name__, exc)
                self.subscribed = False
                if self._on_state is not None:
                    self._on_state("CHANNEL_ERROR")
            self._wake.clear()
            delay = backoff_delay(attempt, random.random, base=0.5, cap=10.0) if attempt else 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if attempt == 0 and self._wake.is_set():
                await asyncio.sleep(0.2)  # the socket just dropped: give the server a moment

    def kick(self) -> None:
        """Reconnect now (the engine saw the network come back)."""
        self._wake.set()

    # --- presence and typing on a per-ticket private channel -----------------------------------------

    async def _signal(self, ticket_id: str, signal: str, after: str | None = None, *, known: bool = True) -> None:
        args: dict[str, Any] = {"ticket_id": ticket_id, "signal": signal}
        if signal == TYPING_EVENT and known:
            args["after"] = after  # the 3-argument overload (migration 20261202000500); without: no `after`
        await self.remote.call(lambda c: c.rpc("ticket_signal", args).execute())

    async def watch(
        self,
        ticket_id: str,
        me: Mapping[str, Any],
        on_presence: Callable[[list[dict[str, Any]]], None],
        on_typing: Callable[[dict[str, Any]], None],
    ) -> None:
        if ticket_id in self._watched:
            return
        client = await self.remote.client()
        channel = client.channel(
            f"ticket:{ticket_id}",
            {
                "config": {
                    "broadcast": {"ack": False, "self": False},
                    "presence": {"key": "", "enabled": False},
                    "private": True,
                }
            },
        )
        viewers: dict[str, tuple[dict[str, Any], float]] = {}
        announce = asyncio.Event()

        def publish() -> None:
            on_presence([meta for meta, _ in viewers.values()])

        def on_viewing(message: Mapping[str, Any]) -> None:
            meta = dict(message.get("payload") or {})
            user_id = str(meta.get("user_id") or "")
            if not user_id:
                return
            new = user_id not in viewers
            viewers[user_id] = (meta, time.monotonic() + VIEWING_TTL)
            if new:
                publish()
                if user_id != str(me["user_id"]):
                    announce.set()  # tell the newcomer we are here too

        def on_left(message: Mapping[str, Any]) -> None:
            if viewers.pop(str((message.get("payload") or {}).get("user_id") or ""), None) is not None:
                publish()

        async def keep_viewing() -> None:
            while True:
                with contextlib.suppress(Exception):  # best-effort: the next round tries again
                    await self._signal(ticket_id, "viewing")
                announce.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(announce.wait(), VIEWING_EVERY)
                now = time.monotonic()
                expired = [uid for uid, (_, until) in viewers.items() if until < now]
                for uid in expired:
                    del viewers[uid]
                if expired:
                    publish()

        channel.on_broadcast("viewing", on_viewing)
        channel.on_broadcast("left", on_left)
        channel.on_broadcast(TYPING_EVENT, lambda payload: on_typing(dict(payload.get("payload") or {})))
        self._watched[ticket_id] = channel
        await channel.subscribe()
        self._viewing[ticket_id] = asyncio.create_task(keep_viewing(), name=f"viewing-{ticket_id}")
        # who was here before us, at once (the server keeps the last 'viewing' of each): no wait for renewals
        with contextlib.suppress(Exception):  # best-effort: their next renewal or our announcement tells us too
            known = False
            for meta in await self.viewers(ticket_id):
                user_id = str(meta.get("user_id") or "")
                if user_id and user_id not in viewers:
                    viewers[user_id] = (meta, time.monotonic() + VIEWING_TTL)
                    known = True
            if known:
                publish()

    async def unwatch(self, ticket_id: str) -> None:
        channel = self._watched.pop(ticket_id, None)
        await cancel_for_sure(self._viewing.pop(ticket_id, None))
        client = self.remote.current_client
        if channel is not None and client is not None:
            if ":" not in ticket_id:  # a ticket, not a topic of watch_topic
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._signal(ticket_id, "left"), LEAVE_TIMEOUT)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.remove_channel(channel), LEAVE_TIMEOUT)

    async def watch_topic(
        self, topic: str, events: tuple[str, ...], on_signal: Callable[[str, dict[str, Any]], None]
    ) -> None:
        """Receive the database's broadcasts ``events`` on a private topic (``staff:viewers``); once per topic."""
        if topic in self._watched:
            return
        client = await self.remote.client()
        channel = client.channel(topic, {"config": {"broadcast": {"ack": False, "self": False}, "private": True}})
        for event in events:
            channel.on_broadcast(event, lambda m, event=event: on_signal(event, dict(m.get("payload") or {})))
        self._watched[topic] = channel
        await channel.subscribe()

    async def viewers(self, ticket_id: str | None) -> list[dict[str, Any]]:
        """Who was seen viewing (``rpc ticket_viewers``, migration 20261201000400): a ticket's viewers, or with
        None every staff member viewing any ticket (``ticket_id`` in each row); the same fields the signals
        carry. Raises the sync error tree."""
        res = await self.remote.call(lambda c: c.rpc("ticket_viewers", {"ticket": ticket_id}).execute())
        return [dict(r) for r in res.data or []]

    async def typing(
        self, ticket_id: str, me: Mapping[str, Any], after: str | None = None, *, known: bool = True
    ) -> None:
        """Say "typing" on a watched ticket, after your message ``after`` (your newest there, None: none);
        ``known=False`` when this device may not hold your newest message (its first sync): the signal then
        names none and is never judged stale. The engine throttles (one throttle, in Presence.send_typing)."""
        if ticket_id not in self._watched:
            return
        await self._signal(ticket_id, TYPING_EVENT, after, known=known)

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
then drops it for good) is replaced by a new one, the per-ticket ones too (``_rejoin``), each after a backoff when
the server closed its predecessors soon after their joins.

A private channel the server refuses because this user may not read its topic (``channel_refusal``: the ticket was
reassigned away, the role changed to customer, the ticket was deleted) is left at once (``_refuse``): realtime-py
would join it again on its own timer (1, 2, 5, then every 10 s) for good. The ticket shows nobody viewing, its
renewals stop, and it is joined again only when access may have come back (``access_may_be_back``): the token was
refreshed (``set_token``; a role change refreshes it first), or the ticket's row came or changed in the cache, or
the role changed (``Presence.hint``) — one join per such event, never on a timer.

A dead network (the Wi-Fi is up but nothing comes back) is noticed by a probe (``_probe``): after PROBE_EVERY
seconds without a change on the socket, one websocket ping; no pong within PROBE_TIMEOUT says the server is
unreachable (``on_reach(False)``: the engine shows offline at once) and the pong that comes later says it answers
again (``on_reach(True)``); none by PROBE_DEAD closes the socket, so the supervisor makes a new one (whose join
says it answers). Any frame the socket receives after the ping counts as the answer too (``probe_verdict``): a
slow server's pong can come after the data and replies queued before it, and a socket still delivering is alive.
realtime-py's own heartbeat expects no reply and websockets' keepalive gives up only after
20 s + 20 s + its 10 s close timeout, so "Online" stayed on a dead network for a minute, until a request timed
out. The ping is a control frame the server's websocket layer answers (no channel, no database, no HTTP request):
on a socket that carries changes none is sent, on an idle one one per PROBE_EVERY seconds. Own code: realtime-py
offers no ping and no missed-reply timeout, so the probe pings on its websockets connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sync import hops
from sync.decisions import ProbeVerdict, backoff_delay, channel_refusal, probe_verdict
from sync.workspace_rows import CURSOR_TABLES, SNAPSHOT_TABLES

log = logging.getLogger(__name__)

STEADY_S = 30.0  # a channel the server closes after this long counts as a fresh start, not as one more close
PROBE_EVERY = 4.0  # seconds without a change on the socket before the probe pings
PROBE_TIMEOUT = 5.0  # no pong within this: the server is unreachable (offline shown after ≤ 9 s of silence)
PROBE_DEAD = 15.0  # no pong within this: the socket is closed and a new one made (the late pong never comes)
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
ReachHandler = Callable[[bool], None]  # the probe: False = the server stopped answering, True = it answers again
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


def closes_in_a_row(closes: int, joined_at: float) -> int:
    """Closes by the server soon after their joins, in a row, after one more close of a channel joined at
    ``joined_at``: a channel that lived STEADY_S starts the count over (review15b: a server closing every
    channel at once got a new join every 0.2 s, for good)."""
    return closes + 1 if time.monotonic() - joined_at < STEADY_S else 0


@dataclass
class _Side:
    """A per-ticket or topic channel (beside the main one) and how to join it again when the server closes it."""

    key: str  # the ticket id or the topic, as ``watch``/``watch_topic`` were given it
    topic: str
    config: dict[str, Any]
    bind: Callable[[Any], None]  # its broadcast handlers, on each new channel
    rejoined: Callable[[], Awaitable[None]] | None = None  # after a rejoin: what the closed channel missed
    paused: Callable[[], None] | None = None  # refused: what stops meanwhile (renewals) and what shows (nobody)
    closes: int = 0  # closed soon after their joins, in a row
    joined_at: float = 0.0
    rejoin: asyncio.Task[None] | None = None  # a rejoin, or a join when access may be back, under way
    refused: bool = False  # the server refused it for lack of access: left, joined again only on a hint


class _Viewers:
    """Who is viewing one watched ticket, from its signals and the server's replay; each is forgotten VIEWING_TTL
    seconds after their last renewal. ``on_presence`` hears the list after each change."""

    def __init__(self, me: str, on_presence: Callable[[list[dict[str, Any]]], None]) -> None:
        self.me, self.on_presence = me, on_presence
        self.seen: dict[str, tuple[dict[str, Any], float]] = {}  # user id → their signal, until when it holds
        self.announce = asyncio.Event()  # someone new came: tell them we are here too

    def publish(self) -> None:
        self.on_presence([meta for meta, _ in self.seen.values()])

    def viewing(self, message: Mapping[str, Any]) -> None:
        meta = dict(message.get("payload") or {})
        user_id = str(meta.get("user_id") or "")
        if not user_id:
            return
        new = user_id not in self.seen
        self.seen[user_id] = (meta, time.monotonic() + VIEWING_TTL)
        if new:
            self.publish()
            if user_id != self.me:
                self.announce.set()

    def left(self, message: Mapping[str, Any]) -> None:
        if self.seen.pop(str((message.get("payload") or {}).get("user_id") or ""), None) is not None:
            self.publish()

    def replay(self, metas: list[dict[str, Any]]) -> None:
        """The server's last 'viewing' of each (``rpc ticket_viewers``): the ones not heard of yet."""
        known = False
        for meta in metas:
            user_id = str(meta.get("user_id") or "")
            if user_id and user_id not in self.seen:
                self.seen[user_id] = (meta, time.monotonic() + VIEWING_TTL)
                known = True
        if known:
            self.publish()

    def expire(self) -> None:
        now = time.monotonic()
        expired = [uid for uid, (_, until) in self.seen.items() if until < now]
        for uid in expired:
            del self.seen[uid]
        if expired:
            self.publish()

    def clear(self) -> None:
        self.seen.clear()
        self.publish()


class RealtimeLink:
    def __init__(self, remote: ClientSource) -> None:
        self.remote = remote
        self._channel: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._on_change: ChangeHandler | None = None
        self._on_state: StateHandler | None = None
        self._watched: dict[str, Any] = {}  # ticket id or topic → its channel now (None: refused, left)
        self._sides: dict[str, _Side] = {}  # the same keys → how to join it again
        self._viewing: dict[str, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()  # started by channel states: leaving a refused channel, …
        self._token: str | None = None
        self.subscribed = False
        self._stopping = False
        # channels the server closed soon after their join, in a row: each new one waits longer before its join
        # (review15b: a server closing every channel got a join and a catch-up pull every 0.2 s, for good)
        self._closes = 0
        self._subscribed_at = 0.0
        self._on_reach: ReachHandler | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._heard = 0.0  # when the socket last brought a frame (no ping is needed while they flow)
        self._frame = asyncio.Event()  # set by each frame the socket receives (_hear)
        self.reachable = True  # the probe's verdict: the server answered its last ping in time
        self.probes = 0  # pings sent (for tests and the benchmark)

    async def set_token(self, token: str) -> None:
        self._token = token
        client = self.remote.current_client
        if client is not None:
            with contextlib.suppress(Exception):  # a dead socket gets the token on its next join
                await client.realtime.set_auth(token)
        self.access_may_be_back()  # a new token may carry access a refused channel lacked

    async def start(
        self, on_change: ChangeHandler, on_state: StateHandler, on_reach: ReachHandler | None = None
    ) -> None:
        self._on_change, self._on_state, self._on_reach = on_change, on_state, on_reach
        self._stopping = False
        self.reachable = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name="sync-realtime")
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.create_task(self._probe(), name="sync-realtime-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        probe, self._probe_task = self._probe_task, None
        self._stopping = True
        await cancel_for_sure(probe)
        await cancel_for_sure(task)
        channel, self._channel = self._channel, None
        if channel is not None:
            await self._remove(channel)
        for ticket_id in list(self._watched):
            await self.unwatch(ticket_id)
        self.subscribed = False

    def _state(self, state: Any, error: Exception | None) -> None:
        name = str(getattr(state, "value", state))
        self.subscribed = name == "SUBSCRIBED"
        if self.subscribed:
            self._subscribed_at = time.monotonic()
            self._reach(True)  # a join is an answer
        if error is not None:
            log.info("realtime channel %s: %s", name, error)
        if name == "CLOSED" and not self._stopping:
            # the server closed the channel (a system error: an expired token, a quota): realtime-py forgets a
            # closed channel and never rejoins it, so the supervisor builds a new one (its join: a catch-up pull)
            self._channel = None
            self._closes = closes_in_a_row(self._closes, self._subscribed_at)
        if name != "SUBSCRIBED":
            self._wake.set()
        if self._on_state is not None:
            self._on_state(name)

    def _change(self, payload: Mapping[str, Any]) -> None:
        data = payload.get("data") or {}
        # realtime-py parses `type` into a str-Enum whose str() is 'Enum.MEMBER' on 3.11: use .value
        kind = _KINDS.get(str(getattr(data.get("type"), "value", data.get("type"))))
        self._heard = time.monotonic()
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

    async def _probe(self) -> None:
        """After PROBE_EVERY seconds without a change, ping; no pong within PROBE_TIMEOUT says the server is
        unreachable, its late pong (or the next join) that it answers again; none by PROBE_DEAD ends the socket
        (realtime-py then reports its channel's error and the supervisor connects anew, as for any dead socket)."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            socket = self._socket()
            if socket is None or time.monotonic() - self._heard < PROBE_EVERY:
                continue  # no connection (the supervisor is making one; its join answers) or changes flowing
            self._hear(socket)
            began = time.monotonic()
            try:  # bounded: a send over a dead network may wait for room in the socket's buffer
                pong = await asyncio.wait_for(socket.ping(), PROBE_TIMEOUT)
            except TimeoutError:
                if probe_verdict(time.monotonic(), began, self._heard, False, PROBE_TIMEOUT) == "silent":
                    self._reach(False)
                continue
            except Exception:  # closed meanwhile: realtime-py reports the channel's error
                continue
            self.probes += 1
            verdict = await self._answer(pong, began, PROBE_TIMEOUT)
            if verdict == "silent":
                self._reach(False)
                verdict = await self._answer(pong, began, PROBE_DEAD)
            if verdict == "silent":
                # a socket silent this long carries nothing live: end it now (websockets' keepalive would take 50 s)
                # so the supervisor connects anew at once (a laptop woken from sleep is back in a second, not a minute)
                log.info("realtime: no pong in %.0f s, closing the socket", PROBE_DEAD)
                socket.transport.abort()
                await asyncio.wait([pong])  # its end: an error on the waiter
            elif pong.done() and (pong.cancelled() or pong.exception() is not None):
                continue  # the socket closed meanwhile: realtime-py reports the channel's error
            else:
                self._reach(True)

    async def _answer(self, pong: asyncio.Future[Any], pinged_at: float, timeout: float) -> ProbeVerdict:
        """Wait for the ping's pong or any frame after it, at most until ``timeout`` after the ping."""
        while (verdict := probe_verdict(time.monotonic(), pinged_at, self._heard, pong.done(), timeout)) == "waiting":
            self._frame.clear()
            frame = asyncio.ensure_future(self._frame.wait())
            try:
                await asyncio.wait([pong, frame], timeout=max(0.0, pinged_at + timeout - time.monotonic()))
            finally:
                frame.cancel()
        return verdict

    def _hear(self, socket: Any) -> None:
        """Note each frame this socket receives (realtime-py reads them in a loop of its own, with no hook): its
        websockets connection hands every received chunk to its protocol's ``receive_data``."""
        protocol = getattr(socket, "protocol", None)
        if protocol is None or getattr(protocol, "_supportchat_heard", False):
            return
        receive = protocol.receive_data

        def receive_data(data: bytes) -> None:
            self._heard = time.monotonic()
            self._frame.set()
            receive(data)

        protocol.receive_data = receive_data
        protocol._supportchat_heard = True

    def _socket(self) -> Any:
        """realtime-py's websockets connection, None while there is none (it offers no ping of its own)."""
        realtime = getattr(self.remote.current_client, "realtime", None)
        return getattr(realtime, "_ws_connection", None)

    def _reach(self, up: bool) -> None:
        if up != self.reachable:
            self.reachable = up
            log.info(
                "realtime: the server %s", "answers again" if up else f"did not answer a ping in {PROBE_TIMEOUT} s"
            )
            if self._on_reach is not None:
                self._on_reach(up)

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
        viewers = _Viewers(str(me["user_id"]), on_presence)

        async def keep_viewing() -> None:
            while True:
                with contextlib.suppress(Exception):  # best-effort: the next round tries again
                    await self._signal(ticket_id, "viewing")
                viewers.announce.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(viewers.announce.wait(), VIEWING_EVERY)
                viewers.expire()

        def paused() -> None:  # refused: no renewals (the server refuses them too), and nobody shown viewing
            task = self._viewing.pop(ticket_id, None)
            if task is not None:
                task.cancel()
            viewers.clear()

        async def joined() -> None:  # after a join: renewals (again after a refusal), and who was here meanwhile
            if self._sides.get(ticket_id) is not side or side.refused:
                return  # unwatched or refused meanwhile
            task = self._viewing.get(ticket_id)
            if task is None or task.done():
                self._viewing[ticket_id] = asyncio.create_task(keep_viewing(), name=f"viewing-{ticket_id}")
            # who was here before us, at once (the server keeps the last 'viewing' of each): no wait for renewals;
            # after a rejoin, who came while the closed channel heard nothing
            with contextlib.suppress(Exception):  # best-effort: their next renewal or our announcement tells us too
                viewers.replay(await self.viewers(ticket_id))

        def bind(channel: Any) -> None:
            channel.on_broadcast("viewing", viewers.viewing)
            channel.on_broadcast("left", viewers.left)
            channel.on_broadcast(TYPING_EVENT, lambda payload: on_typing(dict(payload.get("payload") or {})))

        config = {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False}}
        side = _Side(ticket_id, f"ticket:{ticket_id}", {**config, "private": True}, bind, joined, paused)
        await self._join(side)
        if not side.refused:
            await joined()

    async def _join(self, side: _Side) -> None:
        """Join ``side``'s channel (a new one: realtime-py never rejoins a channel the server closed)."""
        client = await self.remote.client()
        channel = client.channel(side.topic, {"config": side.config})
        side.bind(channel)
        self._watched[side.key], self._sides[side.key] = channel, side
        side.joined_at = time.monotonic()  # a close before the join counts as soon after it

        def state(state: Any, error: Exception | None) -> None:
            if self._watched.get(side.key) is not channel or self._stopping:
                return  # unwatched (our own leave closes it) or replaced
            name = str(getattr(state, "value", state))
            if name == "SUBSCRIBED":
                side.joined_at = time.monotonic()
                if side.refused:  # joined after a refusal (at once, or by realtime-py after the join timed out)
                    side.refused = False
                    if side.rejoined is not None:
                        self._chore(side.rejoined(), f"joined-{side.key}")
            elif name == "CHANNEL_ERROR" and channel_refusal(str(error) if error else None) == "no-access":
                self._refuse(side, channel)
            elif name == "CLOSED" and (side.rejoin is None or side.rejoin.done()):
                log.info("realtime channel %s closed by the server: joining a new one", side.topic)
                side.closes = closes_in_a_row(side.closes, side.joined_at)
                side.rejoin = asyncio.create_task(self._rejoin(side), name=f"rejoin-{side.key}")

        await channel.subscribe(state)

    def _refuse(self, side: _Side, channel: Any) -> None:
        """The server refused ``side``'s channel (at its join, or at a new token's check): this user may not read its
        topic. Left now, which stops realtime-py's rejoin timer (it would join again every 10 s for good); joined
        again only by ``access_may_be_back``."""
        log.info("realtime channel %s: no access to it (now), left until access may be back", side.topic)
        side.refused = True
        self._watched[side.key] = None  # what the left channel reports from now on is no news
        if side.paused is not None:
            side.paused()
        self._chore(self._remove(channel), f"leave-{side.key}")

    def _chore(self, work: Awaitable[None], name: str) -> None:
        """Run ``work`` beside (a channel's state callback cannot wait), kept referenced until it ends."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run(), name=name)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def access_may_be_back(self, keys: Iterable[str] | None = None) -> None:
        """Join again the refused channels among ``keys`` (ticket ids or topics; None: all of them), each once per
        call and only if no join of it is under way: called when access may have come back, never on a timer."""
        if self._stopping:
            return
        for key in list(self._sides) if keys is None else keys:
            side = self._sides.get(key)
            if side is not None and side.refused and (side.rejoin is None or side.rejoin.done()):
                log.info("realtime channel %s: access may be back, joining it again", side.topic)
                side.rejoin = asyncio.create_task(self._join_again(side), name=f"join-again-{side.key}")

    async def _join_again(self, side: _Side) -> None:
        """One join of a refused side (its SUBSCRIBED runs ``side.rejoined``); a failure leaves it refused, for the
        next hint."""
        try:
            await self._join(side)
        except Exception as exc:  # no connection now: still refused, for the next hint
            log.info("realtime channel %s: join failed (%s)", side.topic, exc)
            channel, self._watched[side.key] = self._watched.get(side.key), None
            if channel is not None:
                await self._remove(channel)

    async def _remove(self, channel: Any) -> None:
        """Leave ``channel`` (bounded: leaving over a dead socket would wait for a reply that never comes)."""
        client = self.remote.current_client
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.remove_channel(channel), LEAVE_TIMEOUT)

    async def _rejoin(self, side: _Side) -> None:
        """A side channel the server closed: a new one, after a backoff when its predecessors were closed soon after
        their joins (as the main channel's ``_closes``); then what the closed one missed (``side.rejoined``)."""
        while True:
            if side.closes:
                await asyncio.sleep(backoff_delay(side.closes - 1, random.random, base=1.0, cap=60.0))
            if self._sides.get(side.key) is not side or self._stopping:
                return  # unwatched meanwhile
            try:
                await self._join(side)
            except Exception as exc:  # no connection now (the socket dropped meanwhile): try again later
                log.info("realtime channel %s: rejoin failed (%s)", side.topic, exc)
                side.closes += 1
                channel = self._watched.get(side.key)
                if channel is not None:  # not joined: realtime-py would hand it out again
                    await self._remove(channel)
                continue
            if side.rejoined is not None and not side.refused:
                await side.rejoined()
            return

    async def unwatch(self, ticket_id: str) -> None:
        channel = self._watched.pop(ticket_id, None)
        side = self._sides.pop(ticket_id, None)
        if side is not None and side.rejoin is not asyncio.current_task():
            await cancel_for_sure(side.rejoin)
        await cancel_for_sure(self._viewing.pop(ticket_id, None))
        if channel is not None and self.remote.current_client is not None:
            if ":" not in ticket_id:  # a ticket, not a topic of watch_topic
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._signal(ticket_id, "left"), LEAVE_TIMEOUT)
            await self._remove(channel)

    async def watch_topic(
        self, topic: str, events: tuple[str, ...], on_signal: Callable[[str, dict[str, Any]], None]
    ) -> None:
        """Receive the database's broadcasts ``events`` on a private topic (``staff:viewers``); once per topic."""
        if topic in self._watched:
            return

        def bind(channel: Any) -> None:
            for event in events:
                channel.on_broadcast(event, lambda m, event=event: on_signal(event, dict(m.get("payload") or {})))

        await self._join(_Side(topic, topic, {"broadcast": {"ack": False, "self": False}, "private": True}, bind))

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
        if self._watched.get(ticket_id) is None:
            return  # not watched, or refused: the server refuses the signal too
        await self._signal(ticket_id, TYPING_EVENT, after, known=known)

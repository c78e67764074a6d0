"""The hub: every socket's joined channels by topic, and fan-out of broadcasts and presence diffs.

A `Channel` is one joined topic on one socket, with the subscriber's claims (used for RLS) and its
join config. The hub knows all channels by topic (broadcast, presence) and the channels that have
postgres_changes bindings (the capture reads those). Sending never awaits: every socket has a
bounded outgoing queue and a socket that cannot keep up is dropped (see `Outbox`).

What the hub delivers counts toward the stack's quotas (quotas.py) as on Supabase: each broadcast delivery is an
event (a delivery that reaches the rate closes its receiving channel with "Too many messages per second"), each
presence_state pushed at a join and each presence_diff delivered a presence event (a join over the presence rate:
"Too many presence messages per second", channel closed). One counter update per broadcast or diff, not one per
receiver.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Self

from localbase.realtime.authorization import Policies
from localbase.realtime.filters import Binding
from localbase.realtime.presence import PresenceRegistry
from localbase.realtime.protocol import VSN_2, Frame, encode_text, encode_user_broadcast
from localbase.realtime.quotas import EVENTS_LOG, EVENTS_MESSAGE, PRESENCE_RATE_MESSAGE, Quotas, QuotaSettings

log = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 1000
MAX_QUEUED_BYTES = 8 * 1024 * 1024
# frames of one delivery handed to `direct` together (one call, one write) only up to this many characters; a bigger
# burst goes frame by frame, so each frame meets the direct path's own bound and then the outbox's caps
MAX_DIRECT_BATCH = 64 * 1024

_ids = itertools.count(1)
_keyings = [0]  # how many times any channel was keyed (set_claims with new claims), process-wide


def keying() -> int:
    """The count of channel keyings so far: a change checked for the channels keyed up to it (``Channel.keyed``)
    goes to none keyed after it, whose claims (and role) its RLS check and columns were not worked out for."""
    return _keyings[0]


def _ended(reason: str) -> None:
    """An ended session's overflow handler: nothing is left to drop."""


class Outbox:
    """A socket's bounded send queue; overflowing it closes the socket instead of growing memory.

    `direct`, when the server offers it (coalesce.SEND_MANY's `send_now`, set by the session), writes frames at
    once: used only while nothing is queued and the writer has nothing in flight (`sending`), so frames keep their
    order; it returns False (nothing written) when the socket cannot take them now, and they are queued instead.
    `put_many` hands one delivery's frames for this socket to `direct` in one call (the capture's batch: one call and
    one write per socket, not one per frame).
    """

    def __init__(self, vsn: str, on_overflow: Callable[[str], None]) -> None:
        self.vsn = vsn
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.queued_bytes = 0
        self.closed = False
        self.direct: Callable[[list[str | bytes]], bool] | None = None
        self.sending = False  # the writer took frames off the queue and has not handed them over yet
        self._on_overflow = on_overflow

    def put(self, item: str | bytes) -> None:
        if self.closed:
            return
        if self.direct is not None and not self.sending and self.queue.empty() and self.direct([item]):
            return
        if self.queue.qsize() >= MAX_QUEUED_FRAMES or self.queued_bytes + len(item) > MAX_QUEUED_BYTES:
            self.closed = True
            self._on_overflow("send queue full: client too slow")
            return
        self.queued_bytes += len(item)
        self.queue.put_nowait(item)

    def put_many(self, items: list[str | bytes]) -> None:
        """`put` each of `items`, in order; written at once in one `direct` call when the socket takes them all."""
        if (
            len(items) > 1
            and self.direct is not None
            and not self.closed
            and not self.sending
            and self.queue.empty()
            and sum(map(len, items)) <= MAX_DIRECT_BATCH
            and self.direct(items)
        ):
            return
        for item in items:
            self.put(item)

    def taken(self, item: str | bytes) -> None:
        self.queued_bytes -= len(item)

    def frame(self, frame: Frame) -> None:
        self.put(encode_text(self.vsn, frame))

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)

    def detach(self) -> None:
        """Its session ended: drop the callbacks into it (the overflow handler and ``direct`` are the session's and
        its socket's bound methods, a reference cycle that only a full collection would free; see Session.run)."""
        self.closed = True
        self.direct = None
        self._on_overflow = _ended


_TIMES = frozenset({"exp", "iat"})  # the claims a refresh of the same session changes


def _holder(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims without their times: equal for a token and its refresh (same user, role, session and level)."""
    return {k: v for k, v in claims.items() if k not in _TIMES}


@dataclass(eq=False)
class Channel:
    outbox: Outbox
    topic: str
    join_ref: str | None
    claims: dict[str, Any]
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    bindings: list[Binding] = field(default_factory=list)
    private: bool = False
    policies: Policies | None = None  # private channels only: what RLS on realtime.messages allowed
    uid: int = field(default_factory=lambda: next(_ids))
    live: bool = False  # the capture has polled with this channel registered: "Subscribed to PostgreSQL" sent
    expiry: asyncio.TimerHandle | None = None
    claims_json: str = ""
    role: str = "anon"
    keyed: int = 0  # ``keying()`` when these claims were set
    # the session's `shutdown_response` (a system error, then the channel closed); set by the session at join
    shut_down: Callable[[Channel, str], None] | None = field(default=None, repr=False)
    _change_head: str = field(default="", repr=False)
    _change_tail: str = field(default="", repr=False)

    @property
    def sub_topic(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def hub_key(self) -> str:
        """Public and private channels of one name are different topics, as in Supabase Realtime."""
        return hub_key(self.topic, self.private)

    @property
    def receives_broadcast(self) -> bool:
        return self.policies is None or bool(self.policies.broadcast_read)

    @property
    def receives_presence(self) -> bool:
        return self.presence_enabled and (self.policies is None or bool(self.policies.presence_read))

    def __post_init__(self) -> None:
        self.set_claims(self.claims)
        # postgres_changes frames are assembled around pre-serialized data; these are the fixed parts
        topic = json.dumps(self.topic)
        if self.outbox.vsn == VSN_2:
            self._change_head = "[" + json.dumps(self.join_ref) + ",null," + topic + ',"postgres_changes",{"ids":'
            self._change_tail = "}]"
        else:
            self._change_head = '{"topic":' + topic + ',"event":"postgres_changes","payload":{"ids":'
            self._change_tail = '},"ref":null}'

    def set_claims(self, claims: dict[str, Any]) -> None:
        """Re-key the channel: later RLS checks use these claims (and their role). A change whose check is under
        way when the claims change is not delivered to it (the capture compares ``keyed``): it was checked for the
        claims before, maybe another user's (a socket signed in as someone else sends the new ``access_token``).
        A refreshed token of the same session (claims equal but for ``exp`` and ``iat``, sent every hour) takes
        the place of the old one without a re-key: dropping what was checked under it lost those changes until
        the client's next poll, which Supabase Realtime does not do."""
        claims_json = json.dumps(claims, sort_keys=True, separators=(",", ":"))
        if claims_json == self.claims_json:
            return
        same_holder = self.claims_json != "" and _holder(claims) == _holder(self.claims)
        self.claims = claims
        self.claims_json = claims_json
        self.role = str(claims.get("role") or "anon")
        if same_holder:
            return  # a refreshed token of the same session (only its times changed): what was checked still holds
        _keyings[0] += 1
        self.keyed = _keyings[0]

    def push(self, event: str, payload: dict[str, Any]) -> None:
        self.outbox.frame(Frame(self.topic, event, payload, None, self.join_ref))

    def system(self, extension: str, status: str, message: str) -> None:
        self.push("system", {"extension": extension, "status": status, "message": message, "channel": self.sub_topic})

    def push_change(self, ids_json: str, data_json: str, frames: dict[tuple[str, str, str], str] | None = None) -> None:
        """A postgres_changes event from pre-serialized parts (the data is shared by many subscribers).

        `frames`, shared by the channels one event goes to, keeps each frame assembled so far by its exact parts
        (this channel's fixed head, the binding ids, the data): channels of one topic and serializer that get the
        same ids and data receive the same text, assembled once.
        """
        self.outbox.put(self.change_frame(ids_json, data_json, frames))

    def change_frame(self, ids_json: str, data_json: str, frames: dict[tuple[str, str, str], str] | None = None) -> str:
        """The postgres_changes frame `push_change` sends, assembled once per distinct parts in `frames`."""
        if frames is None:
            return self._change_head + ids_json + ',"data":' + data_json + self._change_tail
        key = (self._change_head, ids_json, data_json)
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = self._change_head + ids_json + ',"data":' + data_json + self._change_tail
        return frame


@dataclass
class BroadcastMessage:
    """One user broadcast in the forms receivers need: a JSON payload and/or raw bytes (v2 only)."""

    event: str
    payload: Any = None
    binary: bytes | None = None

    def deliver(self, channel: Channel) -> None:
        if channel.outbox.vsn == VSN_2:
            if self.binary is not None:
                body, as_json = self.binary, False
            else:
                body, as_json = json.dumps(self.payload, separators=(",", ":")).encode(), True
            frame = encode_user_broadcast(channel.topic, self.event, body, json_encoded=as_json)
            if frame is not None:
                channel.outbox.put(frame)
                return
        if self.binary is not None:
            return  # raw bytes have no vsn 1.0.0 (JSON) form
        channel.push("broadcast", {"type": "broadcast", "event": self.event, "payload": self.payload})


def hub_key(topic: str, private: bool) -> str:
    """The hub's key for a topic (`realtime:<name>`); private ones cannot collide with any public one."""
    return "private:" + topic if private else topic


class ChannelSet(set[Channel]):
    """A set of channels that counts its changes (`version`): the capture keeps what it derives from the
    postgres_changes channels (which bindings a table's changes go to) until the set changes."""

    version = 0

    def _changed(self) -> None:
        self.version += 1

    def add(self, channel: Channel) -> None:
        super().add(channel)
        self._changed()

    def discard(self, channel: object) -> None:
        super().discard(channel)
        self._changed()

    def remove(self, channel: Channel) -> None:
        super().remove(channel)
        self._changed()

    def pop(self) -> Channel:
        self._changed()
        return super().pop()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def update(self, *others: Iterable[Channel]) -> None:
        super().update(*others)
        self._changed()

    def difference_update(self, *others: Iterable[Any]) -> None:
        super().difference_update(*others)
        self._changed()

    def intersection_update(self, *others: Iterable[Any]) -> None:
        super().intersection_update(*others)
        self._changed()

    def symmetric_difference_update(self, other: Iterable[Channel]) -> None:
        super().symmetric_difference_update(other)
        self._changed()

    def __ior__(self, other: AbstractSet[Channel]) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __iand__(self, other: AbstractSet[object]) -> Self:
        self.intersection_update(other)
        return self

    def __isub__(self, other: AbstractSet[object]) -> Self:
        self.difference_update(other)
        return self

    def __ixor__(self, other: AbstractSet[Channel]) -> Self:  # type: ignore[override,misc]
        self.symmetric_difference_update(other)
        return self


class Hub:
    def __init__(self, quotas: Quotas | None = None) -> None:
        self.quotas = quotas or Quotas(QuotaSettings())  # Supabase's defaults unless the stack's settings say
        self.topics: dict[str, set[Channel]] = {}
        self.pg_channels = ChannelSet()
        self.presence = PresenceRegistry()
        self.pg_joined = asyncio.Event()  # wakes the capture when a postgres_changes channel joins

    def add(self, channel: Channel) -> None:
        self.topics.setdefault(channel.hub_key, set()).add(channel)
        if channel.bindings:
            self.pg_channels.add(channel)
            self.pg_joined.set()
        if channel.receives_presence:  # Supabase's `PresenceHandler.sync`: the state pushed is a presence event
            if self.quotas.presence.over():
                if channel.shut_down is not None:
                    channel.shut_down(channel, PRESENCE_RATE_MESSAGE)
                return
            self.quotas.presence.add()
            channel.push("presence_state", self.presence.state(channel.hub_key))

    def remove(self, channel: Channel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
        members = self.topics.get(channel.hub_key)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.topics[channel.hub_key]
        self.pg_channels.discard(channel)
        diff = self.presence.untrack(channel.uid)
        if diff is not None:
            self._presence_diff(channel.hub_key, diff)

    def broadcast(self, key: str, message: BroadcastMessage, sender: Channel | None = None) -> int:
        """Deliver to every member of the topic with hub key `key` that may receive broadcasts.

        The deliveries count as events (one counter update for all of them); when they reach the rate, every
        channel that received this message is closed after it, as each of Supabase's would on its own count.
        """
        receivers = [
            member
            for member in list(self.topics.get(key, ()))
            if (member is not sender or member.broadcast_self) and member.receives_broadcast
        ]
        for member in receivers:
            message.deliver(member)
        if receivers:
            events = self.quotas.events
            events.add(len(receivers))
            if events.over_logged(EVENTS_LOG):
                for member in receivers:
                    if member.shut_down is not None:
                        member.shut_down(member, EVENTS_MESSAGE)
        return len(receivers)

    def track(self, channel: Channel, meta: dict[str, Any]) -> None:
        diff = self.presence.track(channel.uid, channel.hub_key, channel.presence_key, meta)
        self._presence_diff(channel.hub_key, diff)

    def untrack(self, channel: Channel) -> None:
        diff = self.presence.untrack(channel.uid)
        if diff is not None:
            self._presence_diff(channel.hub_key, diff)

    def _presence_diff(self, key: str, diff: dict[str, Any]) -> None:
        sent = 0
        for member in list(self.topics.get(key, ())):
            if member.receives_presence:
                member.push("presence_diff", diff)
                sent += 1
        if sent:
            self.quotas.presence.add(sent)  # Supabase's dispatcher counts the diffs it delivers

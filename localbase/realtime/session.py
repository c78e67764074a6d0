"""One realtime websocket: the Phoenix channel protocol on top of the hub.

Handles heartbeats, `phx_join` (token check, config, postgres_changes bindings), `phx_leave`,
`broadcast`, `presence` and `access_token`. Every client mistake gets a `phx_reply` with status
`error` and a reason, or closes the socket; nothing a client sends can raise out of here.

Limits: Supabase Realtime's tenant quotas (quotas.py: concurrent users, joins per second, channels per
socket, events and presence per second, presence messages per channel and window) with its replies,
broadcast and presence payloads of at most MAX_PAYLOAD_BYTES (frames are capped at 1 MiB by the
server's `ws_max_size`), and a bounded send queue (`hub.Outbox`). A socket silent for IDLE_TIMEOUT
seconds (clients heartbeat every 25-30 s) is closed.

Private channels (`config.private: true`) are authorized by RLS on `realtime.messages` as on Supabase
(authorization.py): read at join and on every `access_token`, write on the first broadcast or track.
A broadcast the caller may not send is dropped without a reply, a track it may not make is answered
with an error, as Supabase does. With `private_only` (Supabase's "Allow public access" switched off)
a public join is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.websockets import WebSocket, WebSocketDisconnect

from localbase import hops
from localbase.keys import Keys, TokenError
from localbase.realtime import authorization, quotas, subscriptions
from localbase.realtime.authorization import AuthorizationUnavailable
from localbase.realtime.coalesce import SEND_MANY
from localbase.realtime.filters import Binding, BindingError, parse_binding
from localbase.realtime.hub import BroadcastMessage, Channel, Hub, Outbox
from localbase.realtime.protocol import Frame, ProtocolError, decode_binary, decode_text
from localbase.realtime.rls import ALLOWED_ROLES

log = logging.getLogger(__name__)


_CHANGE_ID = re.compile(r'"postgres_changes".*?"record":\{(?:[^{}]*?[,{])?"id":"([^"]+)"')  # hop trace only

MAX_BINDINGS = 100
MAX_PAYLOAD_BYTES = 256 * 1024
IDLE_TIMEOUT = 90.0
EXPIRY_RECHECK = 300.0
MAX_FRAMES_PER_SEND = 256  # frames handed to one SEND_MANY call (the rest follow in the next)


class JoinError(Exception):
    """A join the server refuses; the message is the reply's reason."""


def verify_claims(keys: Keys, token: Any) -> dict[str, Any]:
    """Claims of a token a channel may use; raises JoinError with the reason otherwise."""
    if not isinstance(token, str) or not token:
        raise JoinError("access token missing")
    try:
        claims = keys.verify(token)
    except TokenError as exc:
        raise JoinError(f"Token has expired {int(time.time())}" if exc.expired else f"Invalid token: {exc}") from None
    role = claims.get("role") or "anon"
    if role not in ALLOWED_ROLES:
        raise JoinError(f"Invalid token: role {role!r} is not allowed")
    return claims


class Session:
    def __init__(
        self,
        ws: WebSocket,
        vsn: str,
        *,
        keys: Keys,
        hub: Hub,
        pool: AsyncConnectionPool,
        apikey: str,
        private_only: bool = False,
        limits: quotas.Quotas | None = None,
    ) -> None:
        self.ws = ws
        self.quotas = limits or quotas.Quotas(quotas.QuotaSettings())
        self.presence_windows: dict[str, quotas.ClientPresenceWindow] = {}  # topic -> its presence messages
        self.private_only = private_only
        self.keys = keys
        self.hub = hub
        self.pool = pool
        self.apikey = apikey
        self.outbox = Outbox(vsn, self._overflow)
        self.vsn = vsn
        self.channels: dict[str, Channel] = {}
        self._closing: str | None = None
        self._disconnect = False  # end the socket once the frame being handled is answered
        self._reader: asyncio.Task[None] | None = None
        self._send_now_fn: Callable[[list[str | bytes]], bool] = lambda frames: False

    def _overflow(self, reason: str) -> None:
        log.warning("realtime: dropping a socket: %s", reason)
        self._closing = reason
        if self._reader is not None:
            self._reader.cancel()

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        self._reader = asyncio.create_task(self._read())
        try:
            await asyncio.wait({writer, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._reader.cancel()
            ended = list(self.channels.values())
            for channel in ended:
                self.hub.remove(channel)
            self.channels.clear()
            self.quotas.users.discard(self)
            self.outbox.close()
            if self._closing is not None:
                writer.cancel()
            else:
                try:
                    await asyncio.wait_for(writer, 2.0)
                except (TimeoutError, Exception):  # the peer is gone either way
                    writer.cancel()
            try:
                await asyncio.wait_for(self.ws.close(1008 if self._closing else 1000), 1.0)
            except Exception:  # already closed or the peer is dead
                pass
            self._release(ended)

    def _release(self, ended: list[Channel]) -> None:
        """Break the reference cycles an ended session is part of, so reference counting frees it, its socket's
        protocol and buffers now. The outbox's overflow handler and the channels' ``shut_down`` are this session's
        bound methods, and a reader task cancelled by an overflow keeps the exception whose traceback holds the
        reader's frame: cycles that only a full collection frees, and the stack makes those rare
        (localbase/gctune.py), so under reconnect churn ended sessions piled up in the heap (the soak: 695 of them
        130 s after a restart, with 50 clients connected)."""
        for channel in ended:
            channel.shut_down = None
        self.outbox.detach()
        self._reader = None

    async def _write(self) -> None:
        """Send what the outbox holds: everything queued so far in one send when the server offers `SEND_MANY`.

        With `SEND_MANY` the outbox also writes a frame at once when nothing is queued or in flight (`_send_now`);
        this task then only drains what queued up while the socket was paused or busy.
        """
        queue = self.outbox.queue
        extension = (self.ws.scope.get("extensions") or {}).get(SEND_MANY, {})
        send_many = extension.get("send")
        if extension.get("send_now") is not None and send_many is not None:
            self._send_now_fn = extension["send_now"]
            self.outbox.direct = self._send_now
        try:
            await self._drain(queue, send_many)
        finally:
            self.outbox.direct = None

    def _send_now(self, frames: list[str | bytes]) -> bool:
        if not self._send_now_fn(frames):
            return False
        if hops.enabled():
            self._mark_written(frames)
        return True

    async def _drain(self, queue: asyncio.Queue[str | bytes | None], send_many: Any) -> None:
        while True:
            item = await queue.get()
            self.outbox.sending = True
            try:
                if not await self._send_batch(queue, item, send_many):
                    return
            finally:
                self.outbox.sending = False

    async def _send_batch(
        self, queue: asyncio.Queue[str | bytes | None], item: str | bytes | None, send_many: Any
    ) -> bool:
        """Send `item` and what follows it in the queue (up to the cap); False when the writer is done."""
        batch: list[str | bytes] = []
        while item is not None:
            self.outbox.taken(item)
            batch.append(item)
            if send_many is None or len(batch) >= MAX_FRAMES_PER_SEND or queue.empty():
                break
            item = queue.get_nowait()
        try:
            if send_many is not None and batch:
                await send_many(batch)
            else:
                for frame in batch:
                    if isinstance(frame, bytes):
                        await self.ws.send_bytes(frame)
                    else:
                        await self.ws.send_text(frame)
        except Exception:  # a send to a closed socket ends the session
            return False
        if hops.enabled():
            self._mark_written(batch)
        return item is not None

    def _mark_written(self, frames: list[str | bytes]) -> None:
        subs = ",".join(sorted({str(c.claims.get("sub")) for c in self.channels.values()}))
        for frame in frames:
            if isinstance(frame, str) and (found := _CHANGE_ID.search(frame)) is not None:
                hops.mark("frame_written", found[1], to=subs)

    async def _read(self) -> None:
        while True:
            try:
                # not `wait_for`: it wraps each receive in a task of its own, and an exception it re-raises is in a
                # cycle with its frame (whose future holds the exception), which held this frame and so the session
                async with asyncio.timeout(IDLE_TIMEOUT):
                    message = await self.ws.receive()
            except (TimeoutError, WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    frame = decode_binary(message["bytes"])
                elif message.get("text") is not None:
                    frame = decode_text(self.vsn, message["text"])
                else:
                    continue
            except ProtocolError as exc:
                # nothing in a malformed frame can be trusted to address a reply: say why and close
                self.outbox.frame(Frame("phoenix", "phx_error", {"reason": f"malformed frame: {exc}"}))
                return
            try:
                await self.handle(frame)
            except Exception:  # a bug must cost one reply, not the server
                log.exception("realtime: error handling %s on %s", frame.event, frame.topic)
                self.reply(frame, "error", {"reason": "internal error"})
            if self._disconnect:
                return

    # replies ------------------------------------------------------------------------------------

    def reply(self, frame: Frame, status: str, response: dict[str, Any]) -> None:
        self.outbox.frame(
            Frame(frame.topic, "phx_reply", {"status": status, "response": response}, frame.ref, frame.join_ref)
        )

    def close_channel(self, channel: Channel, ref: str | None = None) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
            self.presence_windows.pop(channel.topic, None)
        self.hub.remove(channel)
        channel.outbox.frame(Frame(channel.topic, "phx_close", {}, ref or channel.join_ref, channel.join_ref))

    # dispatch -----------------------------------------------------------------------------------

    async def handle(self, frame: Frame) -> None:
        if frame.topic == "phoenix":
            if frame.event == "heartbeat":
                self.reply(frame, "ok", {})
            else:
                self.reply(frame, "error", {"reason": f"unknown event {frame.event!r} on topic phoenix"})
            return
        if frame.event == "phx_join":
            await self.join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        if frame.event == "phx_leave":
            self.reply(frame, "ok", {})
            self.close_channel(channel)
        elif frame.event == "broadcast":
            await self.broadcast(channel, frame)
        elif frame.event == "presence":
            await self.presence(channel, frame)
        elif frame.event == "access_token":
            await self.access_token(channel, frame)
        else:
            self.reply(frame, "error", {"reason": f"unknown event {frame.event!r}"})

    async def join(self, frame: Frame) -> None:
        try:
            channel, errors = await self._prepare_join(frame)
        except JoinError as exc:
            self.reply(frame, "error", {"reason": str(exc)})
            # as Supabase: over the join rate, the socket is disconnected too (after this reply)
            self._disconnect = str(exc) == quotas.JOIN_RATE_REASON
            return
        old = self.channels.get(frame.topic)
        if old is not None:  # Phoenix: a second join of a topic replaces the first
            self.close_channel(old)
        self.channels[frame.topic] = channel
        self.presence_windows[frame.topic] = quotas.ClientPresenceWindow(self.quotas.settings, self.quotas.clock)
        self.quotas.users.add(self)
        self._schedule_expiry(channel)
        self.reply(frame, "ok", {"postgres_changes": [{**b.raw, "id": b.id} for b in channel.bindings]})
        self.hub.add(channel)
        if errors:
            channel.live = True
            channel.system("postgres_changes", "error", "; ".join(errors))

    async def _prepare_join(self, frame: Frame) -> tuple[Channel, list[str]]:
        if not frame.topic.startswith("realtime:") or frame.topic == "realtime:":
            raise JoinError("topic must be realtime:<name>")
        config = frame.payload.get("config") or {}
        if not isinstance(config, dict):
            raise JoinError("config must be an object")
        private = config.get("private") is True
        if not private and self.private_only:
            raise JoinError("PrivateOnly: This project only allows private channels")
        self._check_join_quotas(frame.topic)
        broadcast = config.get("broadcast") or {}
        presence = config.get("presence") or {}
        raw_bindings = config.get("postgres_changes") or []
        if not isinstance(broadcast, dict) or not isinstance(presence, dict) or not isinstance(raw_bindings, list):
            raise JoinError("config.broadcast and config.presence must be objects, config.postgres_changes a list")
        if len(raw_bindings) > MAX_BINDINGS:
            raise JoinError(f"at most {MAX_BINDINGS} postgres_changes bindings per channel")
        token = frame.payload.get("access_token") or self.apikey
        claims = verify_claims(self.keys, token)
        key = presence.get("key") or ""
        if not isinstance(key, str):
            raise JoinError("config.presence.key must be a string")
        presence_enabled = bool(presence.get("enabled"))
        policies = await self._authorize_read(frame.topic, claims, presence_enabled) if private else None
        bindings: list[Binding] = []
        errors: list[str] = []
        try:
            bindings = [parse_binding(raw) for raw in raw_bindings]
            if bindings:
                errors = await subscriptions.resolve(self.pool, bindings, str(claims.get("role") or "anon"))
        except BindingError as exc:
            raise JoinError(str(exc)) from None
        channel = Channel(
            self.outbox,
            frame.topic,
            frame.join_ref or frame.ref,
            claims,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
            presence_key=key or str(uuid.uuid4()),
            presence_enabled=presence_enabled,
            bindings=bindings,
            private=private,
            policies=policies,
            shut_down=self._shut_down,
        )
        return channel, errors

    def _check_join_quotas(self, topic: str) -> None:
        """Supabase's join limits, in its order: users, then the join rate (a join it lets through counts),
        then channels per socket."""
        limits, settings = self.quotas, self.quotas.settings
        if self not in limits.users and len(limits.users) >= settings.max_concurrent_users:
            raise JoinError(quotas.JOIN_USERS_REASON)
        if limits.joins.over():
            raise JoinError(quotas.JOIN_RATE_REASON)
        limits.joins.add()
        if topic not in self.channels and len(self.channels) >= settings.max_channels_per_client:
            raise JoinError(quotas.CHANNELS_REASON)

    def _shut_down(self, channel: Channel, message: str) -> None:
        """Supabase's `shutdown_response`: a system error on the channel, then the channel is closed."""
        if self.channels.get(channel.topic) is not channel:
            return  # closed already (a delivery over the quota can reach a channel its session just shut down)
        channel.system("system", "error", message)
        self.close_channel(channel)

    async def _authorize_read(self, topic: str, claims: dict[str, Any], presence: bool) -> authorization.Policies:
        sub_topic = topic.removeprefix("realtime:")
        try:
            policies = await authorization.read(self.pool, sub_topic, claims, presence=presence)
        except AuthorizationUnavailable as exc:
            log.warning("realtime: cannot evaluate policies for %s: %s", sub_topic, exc)
            raise JoinError("Realtime was unable to connect to the project database") from None
        if not policies.can_read:
            raise JoinError(authorization.unauthorized_reason(sub_topic))
        return policies

    async def _may_write(self, channel: Channel, extension: authorization.Extension) -> bool:
        policies = channel.policies
        if policies is None:
            return True  # public channel
        field = "broadcast_write" if extension == "broadcast" else "presence_write"
        allowed = getattr(policies, field)
        if allowed is None:
            try:
                allowed = await authorization.write(self.pool, channel.sub_topic, channel.claims, extension)
            except AuthorizationUnavailable as exc:
                log.warning("realtime: cannot evaluate policies for %s: %s", channel.sub_topic, exc)
                return False  # not cached: the next attempt asks again
            setattr(policies, field, allowed)
        return bool(allowed)

    # token lifetime -----------------------------------------------------------------------------

    def _schedule_expiry(self, channel: Channel) -> None:
        if channel.expiry is not None:
            channel.expiry.cancel()
        exp = channel.claims.get("exp")
        if not isinstance(exp, int | float):
            return
        delay = max(0.0, min(EXPIRY_RECHECK, float(exp) - time.time()))
        channel.expiry = asyncio.get_running_loop().call_later(delay, self._check_expiry, channel)

    def _check_expiry(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is not channel:
            return
        exp = channel.claims.get("exp")
        if isinstance(exp, int | float) and exp <= time.time():
            channel.system("system", "error", f"Token has expired {int(time.time()) - int(exp)} seconds ago")
            self.close_channel(channel)
        else:
            self._schedule_expiry(channel)

    async def access_token(self, channel: Channel, frame: Frame) -> None:
        token = frame.payload.get("access_token")
        if token is None:
            return  # clients send null when signed out locally; the channel keeps its claims until they expire
        try:
            claims = verify_claims(self.keys, token)
            if channel.private:
                await self._reauthorize(channel, claims)
        except JoinError as exc:
            if self.channels.get(channel.topic) is channel:
                channel.system("system", "error", str(exc))
                self.close_channel(channel)
            return
        channel.set_claims(claims)
        self._schedule_expiry(channel)

    async def _reauthorize(self, channel: Channel, claims: dict[str, Any]) -> None:
        """Policies again with the new claims; a read right that was there and is gone closes the channel."""
        before = channel.policies
        try:
            policies = await authorization.read(self.pool, channel.sub_topic, claims, presence=channel.presence_enabled)
        except AuthorizationUnavailable as exc:
            log.warning("realtime: cannot evaluate policies for %s: %s", channel.sub_topic, exc)
            raise JoinError("Realtime was unable to connect to the project database") from None
        if not policies.can_read:  # Supabase's wording here has no "Unauthorized: " prefix
            raise JoinError(f"You do not have permissions to read from this Channel topic: {channel.sub_topic}")
        if before is not None and (
            (before.broadcast_read and not policies.broadcast_read)
            or (before.presence_read and not policies.presence_read)
        ):
            raise JoinError(f"You no longer have permission to read from this Channel topic: {channel.sub_topic}")
        channel.policies = policies  # write rights are asked again on the next send or track

    # broadcast and presence ---------------------------------------------------------------------

    async def broadcast(self, channel: Channel, frame: Frame) -> None:
        event = frame.payload.get("event")
        if not isinstance(event, str) or not event:
            self.reply(frame, "error", {"reason": "broadcast needs an event name"})
            return
        if frame.binary_payload is not None:
            size = len(frame.binary_payload)
            message = BroadcastMessage(event, binary=frame.binary_payload)
        else:
            payload = frame.payload.get("payload", {})
            size = len(json.dumps(payload))
            message = BroadcastMessage(event, payload=payload)
        if size > MAX_PAYLOAD_BYTES:
            self.reply(frame, "error", {"reason": f"payload too large: at most {MAX_PAYLOAD_BYTES} bytes"})
            return
        if not await self._may_write(channel, "broadcast"):
            return  # as Supabase: dropped, no reply even with ack
        events = self.quotas.events
        events.add()
        if events.over():
            self._shut_down(channel, quotas.EVENTS_MESSAGE)
            return
        self.hub.broadcast(channel.hub_key, message, sender=channel)
        if channel.broadcast_ack:
            self.reply(frame, "ok", {})

    async def _enable_presence(self, channel: Channel) -> bool:
        """A track on a channel joined without presence turns it on, as Supabase does; on a private channel
        that first asks whether the caller may read presence (not asked at join)."""
        if channel.policies is not None and channel.policies.presence_read is None:
            try:
                asked = await authorization.read(self.pool, channel.sub_topic, channel.claims, presence=True)
            except AuthorizationUnavailable as exc:
                log.warning("realtime: cannot evaluate policies for %s: %s", channel.sub_topic, exc)
                return False
            channel.policies.presence_read = asked.presence_read
        channel.presence_enabled = True
        return True

    async def presence(self, channel: Channel, frame: Frame) -> None:
        window = self.presence_windows.get(channel.topic)
        if window is not None and not window.allow():
            self._shut_down(channel, quotas.CLIENT_PRESENCE_MESSAGE)
            return
        event = frame.payload.get("event")
        if event == "track":
            if channel.private and not await self._may_write(channel, "presence"):
                self.reply(frame, "error", {})
                return
            meta = frame.payload.get("payload") or {}
            if not isinstance(meta, dict):
                self.reply(frame, "error", {"reason": "presence payload must be an object"})
                return
            if len(json.dumps(meta)) > MAX_PAYLOAD_BYTES:
                self._shut_down(channel, quotas.TRACK_SIZE_MESSAGE)
                return
            if not channel.presence_enabled and not await self._enable_presence(channel):
                self.reply(frame, "error", {})
                return
            if self.quotas.presence.over():
                self._shut_down(channel, quotas.PRESENCE_RATE_MESSAGE)
                return
            self.quotas.presence.add()
            self.hub.track(channel, meta)
        elif event == "untrack":
            self.hub.untrack(channel)
        else:
            self.reply(frame, "error", {"reason": f"unknown presence event {event!r}"})
            return
        self.reply(frame, "ok", {})

"""Supabase Realtime's tenant quotas, with its defaults and the replies its clients get when they are over.

The stack is one tenant. What Supabase Realtime enforces (its `config/runtime.exs`, `Tenant` schema,
`RealtimeChannel.join/3`, `UserSocket.connect/3`, `BroadcastHandler`, `PresenceHandler`), and what a client
meets here, so that whatever would fail on a Supabase project fails on localbase first:

- max_concurrent_users (200): sockets that joined a channel, whole stack. A new socket's handshake gets
  429 `{"error":"Too many connected users"}`; a join from a socket not yet counted gets
  "ConnectionRateLimitReached: Too many connected users".
- max_joins_per_second (100): joins, whole stack. The join gets "ClientJoinRateLimitReached: Too many
  joins per second" and the socket is closed; a new socket's handshake 429 "Too many joins per second".
- max_channels_per_client (100): channels of one socket; "ChannelRateLimitReached: Too many channels".
- max_events_per_second (100): broadcasts, whole stack, counted where they are sent and again for every
  channel they are delivered to (Supabase's `MessageDispatcher` sends each receiving channel
  `:update_rate_counter`). A client broadcast over the rate: the sending channel gets the system error "Too many
  messages per second" and is closed, the broadcast not relayed; a delivery that reaches the rate: the message
  is delivered, then that system error closes the receiving channel (`hub.Hub.broadcast`). REST broadcasts
  over the rate 429 "You have exceeded your rate limit"; a batch that would pass it 429 "Too many messages to
  broadcast, please reduce the batch size" (broadcast_api.py). Broadcasts from the database over the rate are
  dropped and logged (db_broadcast.py).
- postgres_changes: the same limit on its own counter (Supabase's `db_events`, counting each change once per
  subscription it goes to), looked at every 100 changes (Supabase's `poll_max_changes`). While over, the capture
  drops the rest of a batch, sending nothing (Supabase's poller skips a poll's changes), logs
  "MessagePerSecondRateLimitReached: Too many postgres changes messages per second" once, and closes nothing:
  subscribers miss those changes (capture.py).
- max_presence_events_per_second (1000): presence tracks and every presence_diff delivered (Supabase's
  dispatcher counts the diffs it sends), whole stack; a track over it gets the system error "Too many presence
  messages per second", channel closed.
- client_presence_max_calls / client_presence_window_ms (5 / 30000): presence messages of one channel per
  window; system error "Client presence rate limit exceeded", channel closed.
- A track over the payload limit (Supabase: 3000 KB; here session.MAX_PAYLOAD_BYTES, lower): system error
  "Track message size exceeded", channel closed.

Each is set by `LOCALBASE_REALTIME_<NAME>` (upper case) in the stack's environment.

A rate is Supabase's `RateCounter`: counts per 5 s tick, the last 12 ticks kept, average = sum / ticks / 5;
over while the average is at or above the limit. Here a rate is over when Supabase's average is, or when the
average its next tick will have at the least (the tick under way, as counted so far, in place of the oldest)
is: a burst is refused within its first tick instead of one tick later, never later than on Supabase.
`max_bytes_per_second` is a tenant field Supabase enforces nowhere; it is not mirrored.

Own code rather than a rate-limit library: the quotas must behave as Supabase's (its averaging window, its
trigger and release, its replies), which a token bucket would not.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
TICKS_KEPT = 12

TOO_MANY_USERS = "Too many connected users"
TOO_MANY_JOINS = "Too many joins per second"
JOIN_USERS_REASON = f"ConnectionRateLimitReached: {TOO_MANY_USERS}"
JOIN_RATE_REASON = f"ClientJoinRateLimitReached: {TOO_MANY_JOINS}"
CHANNELS_REASON = "ChannelRateLimitReached: Too many channels"
EVENTS_MESSAGE = "Too many messages per second"
PRESENCE_RATE_MESSAGE = "Too many presence messages per second"
CLIENT_PRESENCE_MESSAGE = "Client presence rate limit exceeded"
TRACK_SIZE_MESSAGE = "Track message size exceeded"
REST_RATE_MESSAGE = "You have exceeded your rate limit"
REST_BATCH_MESSAGE = "Too many messages to broadcast, please reduce the batch size"
DB_EVENTS_LOG = "MessagePerSecondRateLimitReached: Too many postgres changes messages per second"
EVENTS_LOG = f"MessagePerSecondRateLimitReached: {EVENTS_MESSAGE}"


@dataclass(frozen=True)
class QuotaSettings:
    max_concurrent_users: int = 200
    max_joins_per_second: int = 100
    max_channels_per_client: int = 100
    max_events_per_second: int = 100
    max_presence_events_per_second: int = 1000
    client_presence_max_calls: int = 5
    client_presence_window_ms: int = 30_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QuotaSettings:
        """The settings from `LOCALBASE_REALTIME_<FIELD>`; a value that is not a positive integer is an error."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for item in fields(cls):
            name = f"LOCALBASE_REALTIME_{item.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {raw!r}")
            values[item.name] = value
        return cls(**values)


class RateCounter:
    """Events per second averaged over the last TICKS_KEPT ticks (and the one under way), as Supabase's."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.ticks: deque[int] = deque(maxlen=TICKS_KEPT)
        self.current = 0
        self.tick_started = clock()
        self.triggered = False  # over when `over_logged` last looked

    def _roll(self) -> None:
        elapsed = int((self.clock() - self.tick_started) // TICK_SECONDS)
        if elapsed <= 0:
            return
        self.ticks.append(self.current)
        for _ in range(min(elapsed - 1, TICKS_KEPT)):
            self.ticks.append(0)
        self.current = 0
        self.tick_started += elapsed * TICK_SECONDS

    def average(self) -> float:
        """The larger of Supabase's average now and the least its next tick will give."""
        self._roll()
        ticks = list(self.ticks)
        now = sum(ticks) / len(ticks) / TICK_SECONDS if ticks else 0.0
        following = [self.current, *ticks[-(TICKS_KEPT - 1) :]]
        return max(now, sum(following) / len(following) / TICK_SECONDS)

    def over(self) -> bool:
        """Whether the limit is reached (the average at or above it)."""
        return self.average() >= self.limit

    def over_logged(self, message: str) -> bool:
        """`over`, logging `message` as an error when the counter turns over (Supabase's `log_fn`, once a trigger)."""
        over = self.over()
        if over and not self.triggered:
            log.error("realtime: %s", message)
        self.triggered = over
        return over

    def add(self, count: int = 1) -> None:
        self._roll()
        self.current += count


class Quotas:
    """The stack's counters: sockets counted as users, and the joins, events, postgres_changes and presence rates."""

    def __init__(self, settings: QuotaSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.users: set[object] = set()  # sockets with at least one joined channel
        self.joins = RateCounter(settings.max_joins_per_second, clock)
        self.events = RateCounter(settings.max_events_per_second, clock)
        self.db_events = RateCounter(settings.max_events_per_second, clock)  # postgres_changes, Supabase's own counter
        self.presence = RateCounter(settings.max_presence_events_per_second, clock)
        self.clock = clock

    def refuse_socket(self) -> str | None:
        """Why a new socket is refused at its handshake (429), or None."""
        if len(self.users) >= self.settings.max_concurrent_users:
            return TOO_MANY_USERS
        if self.joins.over():
            return TOO_MANY_JOINS
        return None


class ClientPresenceWindow:
    """One channel's presence messages per window (Supabase's `limit_client_presence_event`)."""

    def __init__(self, settings: QuotaSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_calls = settings.client_presence_max_calls
        self.window = settings.client_presence_window_ms / 1000
        self.clock = clock
        self.reset_at: float | None = None
        self.counter = 0

    def allow(self) -> bool:
        now = self.clock()
        if self.reset_at is None or now > self.reset_at:
            self.counter, self.reset_at = 1, now + self.window
            return True
        if self.counter >= self.max_calls:
            return False
        self.counter += 1
        return True

"""``CatchUp``: when realtime broke or may have dropped changes, a pull runs at once, not at the periodic one.

Supabase Realtime drops ``postgres_changes`` silently when the project is over its events/s quota: its poller
skips a poll's changes while the tenant's ``db_events`` rate counter is triggered (averaged over 12 ticks of 5 s),
sends the channel nothing and closes nothing (localbase does the same, localbase/README.md). A client cannot see
what it was not sent, so this watches what it can see:

- the channel breaking (``CHANNEL_ERROR``, ``CLOSED``, ``TIMED_OUT``) after it was subscribed: a pull now (what
  committed before the break; the rejoin asks for another, for what committed during it), and the status says
  live updates were interrupted until a pull after the rejoin has run;
- a burst: ``burst`` changes within ``window`` seconds means the desk may be at its project's quota, where the
  tail of a burst is dropped with nothing arriving after it. Once the changes stop for ``settle`` seconds, one
  pull checks (the ordinary pull: settings, one ``sync_status`` question, the pages of what changed, the
  digest). A stream that keeps flowing is not being dropped (over the quota a client receives nothing at all),
  so it is not checked until it pauses; checks that find nothing are at least ``spacing`` seconds apart (a desk
  near its quota at a person's pace, whose agents see a burst every few seconds, pays one pull per agent per
  ``spacing``);
- evidence: a check that brought messages from others that realtime had not delivered means changes were
  dropped, and the status says it caught up. The quota's average spans ``hold`` seconds, during which more
  changes may be dropped with nothing at all arriving, so pulls repeat every ``recheck`` seconds until ``hold``
  seconds pass without new evidence.

A desk below its quota pays nothing while quiet or steady (no timer runs, no request is made) and one check
after a burst. Timers run on the event loop that calls ``change``/``state``; requests go through ``want_pull``
(the loop's wake: a pull asked for during a pull gets one more after it, never two at once). Own code: a few timers
with these rules (a burst, a settle, an evidence-driven hold matching Supabase's rate window), which no debounce
library models.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from sync.models import LiveState

SUBSCRIBED = "SUBSCRIBED"


class CatchUp:
    burst = 20  # changes within `window` seconds that make a burst
    window = 10.0
    settle = 1.0  # seconds without a change after a burst before the check
    recheck = 5.0  # seconds between the pulls while drops are evident
    spacing = 30.0  # seconds between burst checks while none found anything
    hold = 65.0  # Supabase's rate average spans 12 ticks of 5 s: drops may go on that long after the last seen
    shown = 30.0  # seconds "caught up" stays on the status

    def __init__(
        self,
        want_pull: Callable[[], None],
        on_live: Callable[[LiveState], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.want_pull, self.on_live, self.clock = want_pull, on_live, clock
        self.checks = 0  # catch-up pulls asked for (for tests and the benchmark)
        self._seen: deque[float] = deque()  # times of the last `burst` changes
        self._was_live = False
        self._broken = False  # the channel broke; caught up by a pull that starts after the rejoin
        self._asked_at: float | None = None  # when a catch-up pull was last asked for (its pull starts later)
        self._last_check = -1e9
        self._evident_until = -1e9  # drops seen: pulls repeat until then
        self._timer: asyncio.TimerHandle | None = None
        self._shown: asyncio.TimerHandle | None = None
        self._closed = False  # realtime stopped on purpose: what the channel says meanwhile is no break
        self._showing: LiveState = "live"

    def open(self) -> None:
        """Realtime (re)starts: a new first join, nothing broken."""
        self._closed = self._was_live = self._broken = False
        self._asked_at = None
        if self._showing != "live":
            self._set("live")

    # --- what realtime says ---------------------------------------------------------------------------

    def change(self) -> None:
        """A change was delivered."""
        if self._closed:
            return
        now = self.clock()
        seen = self._seen
        seen.append(now)
        while len(seen) > self.burst:
            seen.popleft()
        if len(seen) >= self.burst and now - seen[0] <= self.window:
            evident = now < self._evident_until
            self._arm(max(now + self.settle, self._last_check + (self.recheck if evident else self.spacing)))

    def state(self, name: str) -> None:
        """The channel's state as realtime-py reports it."""
        if self._closed:
            return
        if name == SUBSCRIBED:
            if self._broken:
                self._ask()  # the rejoin's pull (the applier asks for it too): its end shows "caught up"
            self._was_live = True
            return
        if self._was_live and not self._broken:
            self._broken = True
            self._set("interrupted")
            self._ask()  # what committed before the break, without waiting for the rejoin

    def pulled(self, started: float, news: int, *, live: bool) -> None:
        """A pull that began at ``started`` (``clock`` time) ended well, bringing ``news`` messages from others
        the cache did not have; ``live``: the channel is subscribed."""
        if self._asked_at is None or started < self._asked_at:
            return  # not a pull asked for here (or it began before the ask: the asked one is still owed)
        self._asked_at = None
        if self._closed:
            return
        if self._broken:
            if not live:
                return  # the rejoin's pull is still to come
            self._broken = False
            self._caught_up()
            return
        if news:  # realtime had skipped them: this pull caught up, and more may be skipped for a while
            self._evident_until = self.clock() + self.hold
            self._caught_up()
        if self.clock() < self._evident_until:
            self._arm(self.clock() + self.recheck)

    def close(self) -> None:
        """Realtime stops on purpose (sign-out, a new role, the engine closing): no more pulls from here."""
        self._closed = True
        for handle in (self._timer, self._shown):
            if handle is not None:
                handle.cancel()
        self._timer = self._shown = None
        if self._showing != "live":  # its timer would have put it back; a successor (a new role) starts at "live"
            self._set("live")

    # --- timers ---------------------------------------------------------------------------------------

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, at - self.clock()), self._check)

    def _check(self) -> None:
        self._timer = None
        self._seen.clear()
        self._last_check = self.clock()
        self._ask()

    def _ask(self) -> None:
        self.checks += 1
        self._asked_at = self.clock()
        self.want_pull()

    def _caught_up(self) -> None:
        self._set("caught-up")
        if self._shown is not None:
            self._shown.cancel()
        self._shown = asyncio.get_running_loop().call_later(self.shown, self._settled)

    def _settled(self) -> None:
        self._shown = None
        if not self._broken:
            self._set("live")

    def _set(self, state: LiveState) -> None:
        if state != "caught-up" and self._shown is not None:
            self._shown.cancel()
            self._shown = None
        self._showing = state
        self.on_live(state)

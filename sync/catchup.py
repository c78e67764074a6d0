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
  dropped, and the status says it caught up. Realtime may still be on its way with rows the pull read (a loaded
  desk's channel trails its commits), so the pull's message ids are judged ``late`` seconds after it ended: only
  those realtime has not delivered by then (nor before the pull, ``memory`` ids back) count as dropped. The
  quota's average spans ``hold`` seconds, during which more changes may be dropped with nothing at all arriving,
  so pulls repeat every ``recheck`` seconds until ``hold`` seconds pass without new evidence.

A desk below its quota pays nothing while quiet or steady (no timer runs, no request is made) and one check
after a burst. Timers run on the event loop that calls ``change``/``state``; requests go through ``want_pull``
(the loop's wake: a pull asked for during a pull gets one more after it, never two at once). Own code: a few timers
with these rules (a burst, a settle, an evidence-driven hold matching Supabase's rate window), which no debounce
library models.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection

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
    late = 5.0  # seconds realtime has, after a pull ended, to deliver the rows it read before they count as dropped
    memory = 10_000  # message ids realtime delivered, newest kept: a pull's rows among them were not dropped

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
        self._delivered: OrderedDict[str, None] = OrderedDict()  # the last `memory` message ids realtime delivered
        self._unconfirmed: set[str] = set()  # a pull's new messages realtime had not delivered when it ended
        self._verdict: asyncio.TimerHandle | None = None  # when the unconfirmed ones are judged dropped
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

    def change(self, message_id: str | None = None) -> None:
        """A change was delivered (``message_id``: of a message row)."""
        if self._closed:
            return
        if message_id is not None:
            self._unconfirmed.discard(message_id)
            delivered = self._delivered
            delivered[message_id] = None
            delivered.move_to_end(message_id)
            if len(delivered) > self.memory:
                delivered.popitem(last=False)
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

    @property
    def judging(self) -> bool:
        """A check's new messages wait for realtime's late deliveries before they count as dropped."""
        return self._verdict is not None

    def pulled(self, started: float, news: Collection[str], *, live: bool) -> None:
        """A pull that began at ``started`` (``clock`` time) ended well, bringing ``news``: the ids of the message
        rows it applied where messages from others were new to the cache; ``live``: the channel is subscribed."""
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
        missed = {mid for mid in news if mid not in self._delivered}
        if missed:  # realtime has `late` seconds to deliver them; the rest was skipped
            self._unconfirmed |= missed
            if self._verdict is not None:
                self._verdict.cancel()
            self._verdict = asyncio.get_running_loop().call_later(self.late, self._judge)
            return
        self._go_on()

    def _judge(self) -> None:
        self._verdict = None
        if self._unconfirmed:  # realtime had skipped them: this pull caught up, and more may be skipped for a while
            self._unconfirmed = set()
            self._evident_until = self.clock() + self.hold
            self._caught_up()
        self._go_on()

    def _go_on(self) -> None:
        if self.clock() < self._evident_until:
            self._arm(self.clock() + self.recheck)

    def close(self) -> None:
        """Realtime stops on purpose (sign-out, a new role, the engine closing): no more pulls from here."""
        self._closed = True
        for handle in (self._timer, self._shown, self._verdict):
            if handle is not None:
                handle.cancel()
        self._timer = self._shown = self._verdict = None
        self._unconfirmed = set()
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

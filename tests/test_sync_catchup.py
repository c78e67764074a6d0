"""``CatchUp`` (sync/catchup.py), its logic alone: which realtime signals ask for a pull, how often, and what the
status says. Timings are shortened; the stack tests (tests/test_sync_live_overload.py) run it for real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from sync.catchup import CatchUp
from sync.live import STEADY_S, RealtimeLink
from sync.models import LiveState
from tests.helpers import wait_for


class Probe:
    def __init__(self) -> None:
        self.asked = 0
        self.asked_at: list[float] = []  # when each pull was asked for (the catch-up's clock)
        self.shown: list[LiveState] = []
        self.catch_up = CatchUp(self.ask, self.shown.append)
        self.catch_up.settle, self.catch_up.recheck, self.catch_up.hold, self.catch_up.shown = 0.05, 0.1, 0.5, 0.2
        self.catch_up.spacing, self.catch_up.late = 2.0, 0.1

    def ask(self) -> None:
        self.asked += 1
        self.asked_at.append(time.monotonic())

    def pulled(self, news: Collection[str] = (), live: bool = True) -> None:
        self.catch_up.pulled(time.monotonic(), news, live=live)

    def burst(self) -> None:
        for _ in range(self.catch_up.burst):
            self.catch_up.change()


async def test_a_trickle_asks_nothing_and_a_burst_one_check_once_it_stops() -> None:
    probe = Probe()
    probe.catch_up.state("SUBSCRIBED")
    for _ in range(probe.catch_up.burst - 1):
        probe.catch_up.change()
    assert probe.catch_up._timer is None and probe.asked == 0  # nothing armed: nothing will be asked
    probe.catch_up.change()  # the burst-th change within the window
    await wait_for(lambda: probe.asked == 1, what="the check")
    probe.pulled()  # realtime had it all
    probe.burst()  # another burst at once: its check waits for the spacing
    await wait_for(lambda: probe.asked == 2, what="the next burst's check, a spacing after the first")
    # asyncio may run a timer up to its clock's resolution early
    tolerance = asyncio.get_running_loop()._clock_resolution  # type: ignore[attr-defined]
    assert probe.asked_at[1] - probe.asked_at[0] >= probe.catch_up.spacing - tolerance - 1e-3
    probe.pulled()
    assert probe.catch_up._timer is None and not probe.catch_up.judging  # nothing more will be asked
    assert probe.asked == 2 and probe.shown == []
    probe.catch_up.close()


async def test_a_check_that_finds_skipped_messages_rechecks_through_the_hold_and_says_caught_up() -> None:
    probe = Probe()
    probe.catch_up.state("SUBSCRIBED")
    probe.burst()
    await wait_for(lambda: probe.asked == 1, what="the check")
    probe.pulled(news={"m1", "m2", "m3"})  # realtime never delivers them
    assert probe.catch_up.judging and probe.shown == []
    await wait_for(lambda: probe.shown == ["caught-up"], what="the drop judged after realtime's grace")
    answered, quiet_since = 1, time.monotonic()
    while time.monotonic() - quiet_since < 1.0:  # answer every recheck until none comes for a second
        if probe.asked > answered:
            answered, quiet_since = probe.asked, time.monotonic()
            probe.pulled()
        await asyncio.sleep(0.01)
    # rechecks every `recheck` seconds while the hold lasts (at least one), none after it
    assert 2 <= probe.asked <= 1 + probe.catch_up.hold / probe.catch_up.recheck + 1
    await wait_for(lambda: probe.shown[-1] == "live", what="the status back to live")
    probe.catch_up.close()


async def test_messages_realtime_delivers_after_the_check_read_them_are_no_drop() -> None:
    """review15b: a check that read rows realtime was still delivering counted them as dropped, and a loaded desk
    pulled every `recheck` seconds for the whole hold. Rows realtime delivered before the pull ended, or delivers
    within `late` seconds after, are not evidence."""
    probe = Probe()
    probe.catch_up.late = 0.5
    probe.catch_up.state("SUBSCRIBED")
    probe.catch_up.change("early")  # delivered before the pull, applied by it first (the applier's queue trailing)
    probe.burst()
    await wait_for(lambda: probe.asked == 1, what="the check")
    probe.pulled(news={"early", "late 1", "late 2"})
    probe.catch_up.change("late 1")  # realtime trailing the pull
    probe.catch_up.change("late 2")
    await wait_for(lambda: not probe.catch_up.judging, what="the verdict")
    assert probe.shown == [] and probe.catch_up._timer is None and probe.asked == 1  # no drop, no rechecks
    probe.catch_up.close()


async def test_a_broken_channel_asks_at_once_and_is_caught_up_by_a_pull_after_the_rejoin() -> None:
    probe = Probe()
    probe.catch_up.state("CHANNEL_ERROR")  # before it was ever subscribed: the first join's own pull covers it
    assert probe.asked == 0 and probe.shown == []
    probe.catch_up.state("SUBSCRIBED")
    probe.catch_up.state("CHANNEL_ERROR")
    probe.catch_up.state("CLOSED")  # the same break: one pull
    assert probe.asked == 1 and probe.shown == ["interrupted"]
    probe.pulled(live=False)  # what came before the break; still not rejoined
    assert probe.shown == ["interrupted"]
    probe.catch_up.state("SUBSCRIBED")
    assert probe.asked == 2
    probe.pulled(live=True)
    assert probe.shown == ["interrupted", "caught-up"]
    await wait_for(lambda: probe.shown[-1] == "live", what="the status back to live")
    probe.catch_up.close()


async def test_a_pull_that_began_before_the_ask_does_not_count() -> None:
    probe = Probe()
    probe.catch_up.state("SUBSCRIBED")
    began = time.monotonic()
    probe.catch_up.state("CHANNEL_ERROR")
    probe.catch_up.state("SUBSCRIBED")
    probe.catch_up.pulled(began, (), live=True)  # it read the server before the rejoin
    assert probe.shown == ["interrupted"]
    probe.pulled(live=True)
    assert probe.shown == ["interrupted", "caught-up"]
    probe.catch_up.close()


async def test_stopping_realtime_on_purpose_is_no_break() -> None:
    probe = Probe()
    probe.catch_up.state("SUBSCRIBED")
    probe.catch_up.close()  # the engine stops: its channel's CLOSED follows
    probe.catch_up.state("CLOSED")
    for _ in range(probe.catch_up.burst):
        probe.catch_up.change()
    await asyncio.sleep(0.2)
    assert probe.asked == 0 and probe.shown == []
    probe.catch_up.open()  # started again: a new first join
    probe.catch_up.state("CHANNEL_ERROR")
    assert probe.asked == 0
    probe.catch_up.close()


def test_channels_closed_soon_after_their_join_wait_longer_and_a_steady_one_starts_over() -> None:
    """review15b: a server closing every channel at once got a new join (and its catch-up pull) every 0.2 s, for
    good. Closes soon after a join are counted, and the supervisor waits backoff_delay(count - 1) before the next
    join; a channel that lived STEADY_S counts as a fresh start."""
    link = RealtimeLink(remote=None)  # type: ignore[arg-type]  # no client needed: the channel's states only
    for expected in (1, 2, 3):
        link._state("SUBSCRIBED", None)
        link._state("CLOSED", None)
        assert link._closes == expected
    link._state("SUBSCRIBED", None)
    link._subscribed_at -= STEADY_S + 1  # lived long enough
    link._state("CLOSED", None)
    assert link._closes == 0
    link._stopping = True  # closing on purpose (sign-out, a new role) is no close by the server
    link._state("CLOSED", None)
    assert link._closes == 0

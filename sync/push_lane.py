"""``PushLane``: a local write is pushed at once, beside whatever round the sync loop is in.

The loop's round is token → push → pull, and a pull is several requests (every synced table, then the
avatars). A message written while a round pulls used to wait for that pull to end before its push began:
the hop trace of ``e2e_latency`` (bench/README.md) showed that wait as most of the time between the
keypress and the other side's screen (p50 0.7 s of 1.0 s on the shared machine). The lane is a second
task that only pushes: woken by a local write, it sends the outbox right away; the loop keeps everything
else (pulls, periodic rounds, backoff, the error states).

Rules that keep the two apart:
  * one push at a time: the loop's push and the lane's share one lock (``SyncLoop.push_lock``), so an
    outbox entry is never in two requests at once, and the order of the outbox is the order on the wire;
  * the lane pushes only while the loop is ``online``; otherwise (offline and backing off, connecting,
    needs-sign-in) the write wakes the loop exactly as before the lane, so a broken network is not hit
    twice per write and the loop's backoff and error states stay the only ones;
  * a push that fails in the lane is handed to the loop (woken; its round pushes again and classifies the
    error), never retried here;
  * a push that sent something asks the loop for a pull (as the round does after its push) only while
    realtime is not subscribed. While it is, what the push changed on the server (the rows, and whatever
    triggers changed with them) comes back as realtime changes, and anything realtime misses ends in a
    resubscription, which runs a pull. A pull is some twenty requests (every synced table, settings, the
    visible tickets, avatars); after every message sent and every read marker it was, with 50 clients
    chatting, most of the stack's work and the CPU every other hop waited for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sync.live import cancel_for_sure

log = logging.getLogger(__name__)


class PushLane:
    def __init__(
        self,
        push: Callable[[], Awaitable[int]],
        online: Callable[[], bool],
        hand_over: Callable[[], None],
        want_pull: Callable[[], None],
        live: Callable[[], bool] = lambda: False,
    ) -> None:
        """``push`` sends the outbox (under the loop's push lock) and returns how many entries went;
        ``online`` says whether the loop is in its online state; ``hand_over`` wakes the loop to push a write
        itself; ``want_pull`` asks the loop for a pull; ``live`` says whether realtime is subscribed."""
        self._push, self._online, self._hand_over, self._want_pull = push, online, hand_over, want_pull
        self._live = live
        self._wanted: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wanted = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sync-push-lane")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_for_sure(task)

    def push_soon(self) -> None:
        """A local write happened: push it now (thread-safe); before ``start`` (or offline) the loop is woken."""
        if self._wanted is None or self._loop is None or self._task is None or self._task.done():
            self._hand_over()
            return
        self._loop.call_soon_threadsafe(self._wanted.set)

    async def _run(self) -> None:
        assert self._wanted is not None
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            if not self._online():
                self._hand_over()  # the loop's round pushes and owns the error states and backoff
                continue
            try:
                sent = await self._push()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop pushes again and classifies it (offline, refresh, sign-in)
                log.info("push lane: %s: %s; left to the sync loop", type(exc).__name__, exc)
                self._hand_over()
                continue
            if sent and not self._live():
                self._want_pull()  # a pull after a push, as the round does, while later pushes go on

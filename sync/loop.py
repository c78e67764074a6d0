"""``SyncLoop``: the background loop and its rounds, for the signed-in user's parts.

    wake (realtime (re)subscribed | timer | retry backoff | a push that sent something | a local write
          while not online | the realtime probe hearing the server again after it said offline)
      → make sure the token is fresh (refresh when close to expiry or after a 401)
      → push the outbox → pull by cursor → publish SyncStatus

A local write during a long pull (a first sync of a big desk takes minutes) does not wait for the pull to
end: the puller calls back between the pages it applies, and the outbox is pushed right there, in the same
round (one task, so push and pull never write the cache at the same time); the rows it changed come back
by cursor later in that pull or in the next one, which the push asks for.

A local write while online is pushed at once by the ``PushLane`` (sync/push_lane.py), beside a round that may
be pulling; the between-pages push above serves the rounds the lane hands writes to (not online: a first
sync, a reconnect). The loop's push and the lane's take turns on ``push_lock``.

Errors steer the loop through the tree in sync/errors.py: RetryableError → state ``offline`` and
exponential backoff with jitter, cut short by a reconnect; AuthError → one refresh, then retry;
a refused refresh → ``needs-sign-in`` and the loop ends (the session and the outbox stay: the same user
signing in again starts it anew).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sync.account import Account
from sync.decisions import backoff_delay
from sync.errors import AuthError, RetryableError, SyncError
from sync.live import cancel_for_sure
from sync.push_lane import PushLane
from sync.signed_in import SignedIn
from sync.status import StatusBoard

log = logging.getLogger(__name__)


class SyncLoop:
    poll_interval: float = 60.0  # periodic catch-up pull, even with realtime up
    retry_base: float = 0.5  # backoff after a retryable failure: base·2^attempt, capped, jittered
    retry_cap: float = 30.0

    def __init__(
        self,
        account: Account,
        board: StatusBoard,
        current: Callable[[], SignedIn | None],
        after_pull: Callable[[SignedIn], Awaitable[bool]] | None = None,
    ) -> None:
        """``current`` gives the signed-in user's parts, None when nobody is signed in. ``after_pull`` runs after
        every pull that ended well and says whether it replaced the parts (the user's role changed: the engine's
        ``_follow_role``); the round then ends there."""
        self.account = account
        self.board = board
        self.current = current
        self.after_pull = after_pull
        self.pull_wanted = True  # a pull is owed: asked for by realtime or a wake, or a pull that failed
        self.push_wanted = False  # a local write is waiting to be pushed (pushed between a pull's pages)
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attempt = 0
        self._round_lock = asyncio.Lock()
        self.push_lock = asyncio.Lock()  # one push at a time: the round's or the lane's
        self.lane = PushLane(
            self._lane_push,
            lambda: self.board.current.state == "online",
            hand_over=lambda: self.wake(push=True),
            want_pull=lambda: self.wake(pull=True),
            live=lambda: (parts := self.current()) is not None and parts.live.subscribed,
        )

    @property
    def pull_pending(self) -> bool:
        """Whether a pull is owed: asked for by realtime or a wake, or a pull that failed."""
        return self.pull_wanted

    @property
    def ended(self) -> bool:
        """The loop ran and returned (at needs-sign-in)."""
        return self._task is not None and self._task.done()

    def start(self) -> bool:
        """Run the loop on the running event loop unless it runs already; returns whether it started."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._task is not None and not self._task.done():
            return False
        self.pull_wanted = True
        self.board.set(state="connecting")
        self._task = asyncio.create_task(self._run(), name="sync-engine")
        self.lane.start()
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        await self.lane.stop()
        await cancel_for_sure(task)

    def wake(self, pull: bool = False, push: bool = False) -> None:
        """Run a sync round now (thread-safe); ``push``: a local write is waiting, push it even between the
        pages of a running pull."""
        if pull:
            self.pull_wanted = True
        if push:
            self.push_wanted = True
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def reach(self, up: bool) -> None:
        """The realtime probe's verdict (sync/live.py): a server that stopped answering says offline now (a dead
        network showed "online" for a minute, until a request timed out), so the user knows replies will queue;
        one that answers again gets a round now, whose success says online. Any round's outcome overrides it."""
        if not up and self.board.current.state == "online":
            self.board.set(state="offline", last_error="the server does not answer")
        elif up and self.board.current.state == "offline":
            self.wake()

    def push_soon(self) -> None:
        """A local write: push it now through the lane (the loop when not online or not started; thread-safe)."""
        self.lane.push_soon()

    async def _run(self) -> None:
        assert self._wake is not None
        next_pull = 0.0
        while True:
            self._wake.clear()
            delay = self.poll_interval
            try:
                pulled = await self.sync_once(pull=self.pull_wanted or self.account.clock.monotonic() >= next_pull)
                if pulled:
                    next_pull = self.account.clock.monotonic() + self.poll_interval
                self._attempt = 0
            except asyncio.CancelledError:
                raise
            except AuthError as exc:
                if exc.refused:
                    self.board.set(state="needs-sign-in", last_error=exc.reason(), syncing=False)
                    return  # the outbox and session stay; sign_in() for the same user resumes
                delay = self._backoff(exc)
            except SyncError as exc:
                delay = self._backoff(exc)
            except Exception as exc:  # a bug must not kill sync for good: report, back off, retry
                log.exception("sync round failed")
                delay = self._backoff(RetryableError(f"{type(exc).__name__}: {exc}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _backoff(self, exc: SyncError) -> float:
        delay = backoff_delay(self._attempt, self.account.clock.random, base=self.retry_base, cap=self.retry_cap)
        self._attempt += 1
        self.board.set(state="offline", last_error=exc.reason(), syncing=False, progress=None)
        log.info("sync offline (%s); retry in %.1fs", exc, delay)
        return delay

    # --- the rounds -----------------------------------------------------------------------------------

    def _signed_in(self) -> SignedIn:
        parts = self.current()
        if parts is None:
            raise AuthError("not signed in", refused=True)
        return parts

    def count(self) -> None:
        """Publish the signed-in user's outbox counts."""
        parts = self.current()
        self.board.count(parts.cache if parts is not None else None)

    async def sync_once(self, pull: bool = True) -> bool:
        """One round: fresh token, push, pull. Raises the sync error tree. Returns whether it pulled.
        A pull still owed (asked for by realtime, or a pull that failed) is done even with ``pull=False``."""
        self._signed_in()
        async with self._round_lock:
            parts = self._signed_in()  # the parts may have been replaced while this waited (a new role)
            self.board.set(syncing=True)
            try:
                await self.account.ensure_fresh()
                sent = await self._push(parts)
                if not (pull or sent or self.pull_wanted):
                    self.board.set(state="online", last_error=parts.cache.set_aside_note())
                    return False
                self.pull_wanted = False  # a wake(pull=True) during this pull asks for another one
                initial = not parts.cache.initial_sync_done()
                if initial:
                    self.board.set(progress=0.0)
                emit = self.board.emit_with_progress if initial else self.board.emit
                started = self.account.clock.monotonic()
                try:
                    result = await self.account.with_refresh(
                        lambda: parts.puller.pull(emit, between=lambda: self._push_meanwhile(parts))
                    )
                except BaseException:
                    # still wanted: the next round (after backoff) retries it instead of leaving the
                    # cache and "last synced" behind until the periodic pull
                    self.pull_wanted = True
                    raise
                if initial:
                    await parts.cache.mark_initial_sync_done()
                self.board.set(
                    state="online",
                    last_synced_at=datetime.now(UTC),
                    last_error=parts.cache.set_aside_note(),
                    progress=None,
                )
                self._pulled(parts, started, result.news)
                if await self._replaced(parts):
                    return True
                await parts.avatars.refresh()
                await parts.canned_files.refresh()
                return True
            finally:
                self.count()
                self.board.set(syncing=False)

    async def _push_meanwhile(self, parts: SignedIn) -> None:
        """Between a pull's pages: push what was written since the round began (and pull again after)."""
        if self.push_wanted and await self._push(parts):
            self.pull_wanted = True  # our changes come back by cursor: make sure a pull sees them

    async def _push(self, parts: SignedIn) -> int:
        async with self.push_lock:
            if self.current() is not parts:  # replaced while this waited (a new role): the next round pushes
                self.push_wanted = True
                return 0
            self.push_wanted = False  # this push sends everything written so far
            result = await self.account.with_refresh(parts.pusher.push)
        self.count()
        if result.sent:
            # the server has our changes: that is a sync, whatever a pull after it does
            self.board.set(state="online", last_synced_at=datetime.now(UTC), last_error=parts.cache.set_aside_note())
        return result.sent

    async def _lane_push(self) -> int:
        parts = self._signed_in()
        await self.account.ensure_fresh()
        return await self._push(parts)

    async def push(self) -> int:
        """Flush the outbox now (no pull); returns how many entries the server acknowledged."""
        self._signed_in()
        async with self._round_lock:
            parts = self._signed_in()
            try:
                await self.account.ensure_fresh()
                return await self._push(parts)
            finally:
                self.count()

    async def pull(self) -> int:
        """Catch up from the server now (no push); returns the number of rows applied."""
        self._signed_in()
        async with self._round_lock:
            parts = self._signed_in()
            await self.account.ensure_fresh()
            started = self.account.clock.monotonic()
            result = await self.account.with_refresh(lambda: parts.puller.pull(self.board.emit))
            self.board.set(state="online", last_synced_at=datetime.now(UTC), last_error=parts.cache.set_aside_note())
            self._pulled(parts, started, result.news)
            await self._replaced(parts)
        return result.rows

    @staticmethod
    def _pulled(parts: SignedIn, started: float, news: set[str]) -> None:
        """A pull ended well: realtime's catch-up learns whether it was the one it asked for (sync/catchup.py)."""
        parts.live.catch_up.pulled(started, news, live=parts.live.subscribed)

    async def _replaced(self, parts: SignedIn) -> bool:
        if self.after_pull is None:
            return False
        async with self.push_lock:  # no push of the lane's into a cache being closed
            return await self.after_pull(parts)

"""Pull: bring the cache up to the server's truth by its change cursor.

For each table, pages of ``sync_<table>(after_xid, after_id)`` (≤ 1000 rows, keyset order, until an
empty page) are applied together with the new cursor in one SQLite transaction, so a crash mid-pull resumes
where it stopped. Fetching runs ahead of applying (up to ``PREFETCH`` pages in flight or waiting) while the
writer thread applies. The server's cursor never skips a row committed late (see the migration's header),
so the pull is gap-free.

The initial sync (until the cache is marked done, so also one resumed after a kill) is the bulk case and is
shaped for throughput (issue 15; measured in bench/scale.py): the pages go into one SQLite transaction that
the writer holds open across them and commits every ``INITIAL_BATCH`` rows (one commit and one pass over the
indexes' pages per 100,000 rows instead of per page; the pages already downloaded join one statement), the
progress bar and the change events follow the commits (what they announce survives a kill -9; one event per
commit naming the tickets, not one per ticket), messages are staged in a file of their own and moved into the
cache at the end of their phase (sync/cache/staging.py: no index work per row; previews and tombstones go in at
once), the search index is built once at the end (``Cache.build_initial_indexes``, while the server answers the
prune's question, then ``Cache.finish_initial_sync``),
and a per-row progress total is asked of the server (``sync_counts``: every table in one request, RLS applied; while
the first tables download, awaited before the first figure) and added to what the cache already holds, so the bar of
a resumed sync continues where the killed one stopped. Between the start and the end of an initial sync, search does
not find the messages pulled so far. The initial sync's messages come as arrays (``sync_message_rows``), bound as
they are.

A later pull (the initial sync done) first asks which tables have rows past their cursor, every table in one
request (``sync_status``: a superset of what each table's pages would return), and pulls only those: a caught-up
pull, which every client makes at every poll, is one question instead of one empty page per table. For the tables
it did not name, the next question starts at the answer's horizon (kept in memory, for this identity), past the
rows written meanwhile that this user may not see, so it does not scan them again.

Three things the cursor cannot show are handled explicitly:

- an attachment the server deleted leaves no row to pull: its tombstone does (``attachment_deletions``, paged after
  the attachments by a cursor of its own), and the cached row leaves with its file;

- a ticket that just became visible (new here, or reassigned to me) has older messages below the
  cursor: its thread and read markers are fetched by ticket id (backfill), noted in the cache with
  the tickets page that revealed it, so a backfill cut short by the network is resumed by the next pull;
- a ticket that stopped being visible never shows up again: cached ticket ids are compared with
  the server's visible ids, and the missing ones leave the cache (unless local unsent work on them
  must stay visible to the user).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sync import bulk_gc, events, scope
from sync.cache import Cache
from sync.cache.attachment_deletes import DELETIONS
from sync.cache.db import TABLES as ORDER
from sync.cache.db import Applied
from sync.errors import SyncError
from sync.models import STAFF_ROLES
from sync.remote import BATCH_TABLES, PAGE, CountAsk, Remote, Status
from sync.workspace_rows import CURSOR_TABLES, SNAPSHOT_TABLES

log = logging.getLogger(__name__)


# rows (server dicts; the initial sync's messages as ``MESSAGE_ROW`` arrays) and the cursor after them
_Page = tuple[list[Any], tuple[int, int]]
PREFETCH = 8  # pages fetched ahead of the writer
# the initial sync: rows per SQLite transaction (the writer holds it open across pages, sync/cache/files.py),
# rows per statement (the pages already downloaded, joined) and pages that may wait for the writer. Random uuid
# keys put each batch's index entries all over the indexes, so a commit rewrites about as many pages as the
# indexes have, whatever the batch's size: fewer commits are the lever (issue 15). Progress is announced per
# commit (what a kill -9 keeps)
INITIAL_BATCH = 100_000
INITIAL_CHUNK = 10_000
INITIAL_PREFETCH = 3  # pages of up to 10,000 rows (``Remote.pull_batch``): ~15 MB of rows each
# the tables after the messages, downloaded while the staged messages move (seconds of the writer alone at 1M):
# up to 8 pages each (the read markers are most of it, ~6 MB per page of 10,000)
AHEAD_PREFETCH = 8
# the tables fetched ahead while the staged messages move: only those whose pages keep the newer of two rows (read
# markers keep the later time). The other tables' upserts take a row as it comes, so a page fetched before the move
# and applied after it would undo a live change applied meanwhile (a tag renamed by another agent came back with
# its old name until the next pull)
AHEAD_TABLES = frozenset({"ticket_reads"})
BACKFILLED_DECORATIONS = ("ticket_tags", "ticket_sla", "ticket_snoozes")  # a newly visible ticket's rows (staff)
_NO_FUNCTION = frozenset({"PGRST202", "42883"})  # PostgREST / PostgreSQL: no such function (an older server)
HORIZON_TTL_S = 600.0  # a question starts from the cache's cursors again at least this often (``Puller._changed``)
_NOT_SYNCED = "22023"  # sync_changed: a table it does not know (an older server than this client)


def _tables(staff: bool) -> list[str]:
    """The tables a pull brings, in order: the workspace and message revisions are staff business (RLS shows
    customers nothing)."""
    return [t for t in ORDER if staff or (t not in CURSOR_TABLES and t != "message_revisions")]


def _after(row: Any) -> tuple[int, int]:
    """The cursor just past a pulled row (a dict, or a ``MESSAGE_ROW`` array: change_xid, change_id last)."""
    if isinstance(row, dict):
        return int(row["change_xid"]), int(row["change_id"])
    return int(row[-2]), int(row[-1])


@dataclass
class PullResult:
    rows: int = 0
    # the message rows applied in tickets with messages from others new to the cache (after the initial sync:
    # realtime missed them, or is still on its way with them; sync/catchup.py tells which)
    news: set[str] = field(default_factory=set)
    backfilled: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


@dataclass
class _Progress:
    """Rows of the initial sync: what the cache held when this run started plus what it applied, of the
    total the server announced (None when it could not say). The server's counts are asked while the first
    tables download (``pending``) and awaited before the first figure is announced (``settle``)."""

    done: int = 0
    total: int | None = None
    pending: asyncio.Future[int | None] | None = None

    @property
    def overall(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    async def settle(self, held: int = 0) -> None:
        """The server's remaining rows known (``held``: rows this run applied so far, not in ``done`` yet)."""
        if self.pending is not None:
            remaining, self.pending = await self.pending, None
            self.total = None if remaining is None else remaining + self.done - held

    async def drop(self) -> None:
        """The pull ended without needing the counts (an error, a sign-out, the app closing): stop asking, and
        wait until the questions are over. Left running, a count could still be opening its connection when
        the engine closes its HTTP client, and the socket opened then was never closed (a ResourceWarning
        at a random later moment; the counts are asked all at once, so many connections open together)."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        pending.cancel()
        await asyncio.wait({pending})  # raises nothing of the counts'; a cancellation of this pull still goes
        if not pending.cancelled():
            pending.exception()  # retrieved: no "never retrieved" warning


class Puller:
    def __init__(self, cache: Cache, remote: Remote) -> None:
        self.cache = cache
        self.remote = remote
        self.emit: Callable[[events.Event], None] = lambda _: None  # the running pull's (one at a time)
        self.between: Callable[[], Awaitable[None]] | None = None  # the running pull's, after each page applied
        self._since: str | None = None  # the running pull's partial-sync bound (sync/scope.py)
        self._news: set[str] = set()  # the running pull's ``PullResult.news``
        # the SLA settings tables have no cursor: read whole on the first pull and after realtime said so
        self.snapshots_due = True
        self.batches = True  # the initial sync asks for pages of 10,000 (False: the server has no sync_batch)
        self.message_rows = True  # ... of messages as arrays (False: the server has no sync_message_rows)
        self.asks_changed = True  # a later pull asks which tables changed first (False: no sync_status)
        self.asks_digest = True  # a prune compares digests before listing (False: no visible_tickets_digest)
        self.pulls_deletions = True  # deleted attachments' tombstones are pulled (False: no sync_attachment_deletions)
        # per table, where the next question starts when it is past the cache's cursor: the last answer's horizon
        # for a table it did not name (``_changed``); this session's identity only (``forget_horizons``)
        self._asked_from: dict[str, tuple[int, int]] = {}
        self._asked_since = 0.0  # time.monotonic() of the oldest horizon kept (HORIZON_TTL_S bounds what it hides)
        self._identity = 0  # bumped by ``forget_horizons``: an answer asked before it sets no horizon
        # the running pull's tables fetched ahead of their turn (the initial sync's move): queue and fetcher
        self._ahead: dict[str, tuple[asyncio.Queue[_Page], asyncio.Future[None]]] = {}

    async def pull(
        self,
        emit: Callable[[events.Event], None],
        *,
        check_visibility: bool = True,
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> PullResult:
        """Every table by cursor, then backfills and pruning; ``emit`` gets the change and progress events;
        ``between`` runs after every page (or batch) applied and every backfill (the loop pushes local writes
        there, so a long first sync does not hold them back)."""
        if self.cache.initial_sync_done():
            return await self._pull(emit, check_visibility, between, initial=False)
        with bulk_gc.relaxed():  # millions of short-lived rows: the collector runs less often (sync/bulk_gc.py)
            return await self._pull(emit, check_visibility, between, initial=True)

    async def _pull(
        self,
        emit: Callable[[events.Event], None],
        check_visibility: bool,
        between: Callable[[], Awaitable[None]] | None,
        initial: bool,
    ) -> PullResult:
        self.emit = emit
        self.between = between
        result = PullResult()
        self._news = set()
        days = self.cache.sync_scope_days()
        self._since = scope.since(days) if days is not None else None  # partial sync: the scope's bound
        staff = self.cache.role in STAFF_ROLES
        if initial:  # its messages are staged (sync/cache/staging.py); the staged ones count as cached
            await self.cache.begin_staging()
        progress = await self._plan(staff) if initial else _Progress()
        if not initial:  # first: a changed setting (staff_require_mfa) may show rows below the last horizons
            await self._settings()
        asked = [*_tables(staff), DELETIONS] if self.pulls_deletions else _tables(staff)
        tables = asked if initial else await self._changed(asked)
        backfill: set[str] = set()
        self._ahead = {}
        try:
            for table in tables:
                if table == DELETIONS:  # after the attachments: a re-inserted file's row is there already
                    await self._pull_deletions(result)
                else:
                    await self._pull_table(table, result, initial, backfill, progress)
        finally:
            await progress.drop()
            for table, (_, fetcher) in list(self._ahead.items()):  # the pull ended before their turn
                await self._stop(table, fetcher)
            self._ahead = {}
        if initial:
            await self._settings()
        if staff and self.snapshots_due:
            await self._pull_snapshots(result)
        backfill |= await self.cache.pending_backfills()  # incl. those an earlier pull could not finish
        for ticket_id in sorted(backfill):
            await self.backfill(ticket_id, emit, result)
            await self._between()
        await self._end(result, check_visibility, initial)
        result.news = self._news
        return result

    async def _end(self, result: PullResult, check_visibility: bool, initial: bool) -> None:
        """The prune, and the initial sync's end. Its search index and unread state are built while the server
        lists the visible tickets (the writer thread idled through that request, seconds at 100,000 tickets; the
        prune's own write waits for the build)."""
        if not check_visibility:
            if initial:
                await self.cache.finish_initial_sync()
            return
        built = asyncio.ensure_future(self.cache.build_initial_indexes()) if initial else None
        try:
            await self._prune(result, initial)
        except BaseException as exc:
            if built is not None:  # not left running on the writer; the prune's error is the one raised
                if isinstance(exc, asyncio.CancelledError):
                    built.cancel()  # the engine is stopping: the build rolls back, the next pull does it again
                await asyncio.wait([built])
                if not built.cancelled():
                    built.exception()
            raise
        if built is not None:
            await built
            await self.cache.finish_initial_sync(built=True)

    async def _plan(self, staff: bool) -> _Progress:
        """The initial sync's row total: cached rows plus what the server still has past each cursor. The
        cached rows are counted now (before any is applied); the server is asked meanwhile, all tables at once
        (``_Progress.settle`` waits for it): on a million-row desk its counts took seconds before the first
        page was asked for (issue 15)."""
        progress = _Progress()
        asks: list[CountAsk] = []
        for table in ORDER:
            if table in CURSOR_TABLES and not staff:
                continue
            progress.done += await self.cache.acount(table)
            cursor = await self.cache.cursor(table)
            scoped = self._since is not None and table in scope.SCOPED_TABLES
            asks.append(CountAsk(table, cursor, self._since if scoped else None))
        progress.pending = asyncio.ensure_future(self._remaining(asks))
        return progress

    async def _changed(self, tables: list[str]) -> list[str]:
        """The tables with rows past their cursor, asked in one request (``Remote.status``, ``rpc sync_status``)
        before a pull that is not the initial sync. What it names is a superset of what the tables' pages return
        (the same cursor and RLS, no horizon or scope), so a table it leaves out is one whose first page would have
        come back empty: skipping it loses nothing (a row that commits after the question is past the cursor
        still, for the next pull). A caught-up pull was one empty page per table, 5 requests for a customer and
        15 for staff, every poll of every client (bench/README.md, e2e, eighth pass); now one.

        For a table left out, the next question starts at the answer's horizon instead of the cache's cursor: no
        row this user may see lies below it, and every transaction below it had ended, so the rows between are
        other users' (another customer's messages, staff rows). Asked from the cache's cursor (the user's own
        last row), each question walked every row written since by anyone — for a customer with a quiet ticket,
        the desk's whole traffic since, at every poll. The horizon is kept in memory only and for this identity:
        a row below it that the user may see *later* without it being written again (the session reaches aal2
        in a project that requires two-step sign-in for staff, or the user's role changes) would be skipped, so
        ``forget_horizons`` drops them when the session's level rises, when the project's settings changed
        (``staff_require_mfa``: the settings are read before the question), when a pull finds any profile changed
        (a role), and in any case every ``HORIZON_TTL_S``, for a change of what the user may see that nothing here
        notices; the cache's cursors, which the pages read, only ever move with rows
        the user was given. A server without ``sync_status``, or with one older than this client's tables, or an
        answer of another shape, gets every table, as before (and is not asked again)."""
        if not self.asks_changed:
            return tables
        if self._asked_from and time.monotonic() - self._asked_since > HORIZON_TTL_S:
            self.forget_horizons()  # a change of what the user may see that nothing here noticed waits no longer
        cursors = {table: max(await self.cache.cursor(table), self._asked_from.get(table, (0, 0))) for table in tables}
        identity = self._identity
        try:
            status = await self.remote.status(cursors)
        except SyncError as exc:
            if exc.code not in _NO_FUNCTION and exc.code != _NOT_SYNCED:
                raise
            status = None
            log.info("no sync_status on this server for these tables (%s): every table is pulled", exc)
        if status is None:
            self.asks_changed = False
            return tables
        if "profiles" in status.changed:  # a role may have changed: what this user may see may have grown
            self.forget_horizons()
        if self._identity == identity:  # not asked as who the user was before (e.g. aal1)
            self._keep_horizons(status, cursors)
        return [table for table in tables if table in status.changed]

    def _keep_horizons(self, status: Status, asked: dict[str, tuple[int, int]]) -> None:
        """Where the next question for each table starts: its cursor for a table named (its pages return rows),
        the answer's horizon for one not named."""
        for table, cursor in asked.items():
            if table in status.changed:
                self._asked_from.pop(table, None)
            elif (status.horizon, 0) > cursor:
                if not self._asked_from:
                    self._asked_since = time.monotonic()
                self._asked_from[table] = (status.horizon, 0)

    def forget_horizons(self) -> None:
        """The next question starts at the cache's cursors again: what this user may see may have grown without
        the rows being written (a session that reached aal2, a changed role)."""
        self._asked_from.clear()
        self._identity += 1

    async def _remaining(self, asks: list[CountAsk]) -> int | None:
        """The server's rows still to pull, all tables in one request (``Remote.counts``): asked one request per
        table, together they opened a connection each (~15 at once, and a pull cut short left some of those
        sockets never closed), and in turn they held the first progress figure for ~15 round trips. A server
        without ``sync_counts`` is asked table by table; one without counts at all gives None (the bar runs by
        table instead)."""
        try:
            return sum(await self.remote.counts(asks))
        except SyncError as exc:
            if exc.code not in _NO_FUNCTION:
                log.info("no row count for the progress bar: %s", exc)
                return None
        total = 0
        for ask in asks:
            try:
                if ask.since is not None:
                    total += await self.remote.count_scoped(ask.table, ask.after, ask.since)
                else:
                    total += await self.remote.count(ask.table, ask.after)
            except SyncError as exc:
                log.info("no row count for the progress bar: %s", exc)
                return None
        return total

    def _fetch_ahead(self, table: str) -> None:
        """The read markers download while the writer moves the staged messages (their cursors are read before
        the move starts: the writer thread takes work in order; AHEAD_TABLES says why only they)."""
        staff = self.cache.role in STAFF_ROLES
        for later in _tables(staff)[_tables(staff).index(table) + 1 :]:
            if later in AHEAD_TABLES:
                self._ahead[later] = self._fetcher(later, True, AHEAD_PREFETCH)

    async def _pull_table(
        self, table: str, result: PullResult, initial: bool, backfill: set[str], progress: _Progress
    ) -> None:
        pages, fetcher = self._pages(table, initial)
        done = held = 0  # rows applied; of them, in the initial sync's transaction not committed yet
        waiting = Applied()  # what the held rows changed, announced once they are committed
        try:
            while True:
                rows, last = await self._next(pages, fetcher)
                ended = not rows
                if initial and not ended:
                    rows, last, ended = self._batch(pages, rows, last)
                if rows and not initial:
                    await self._apply(table, rows, last, backfill)
                    done += len(rows)
                    result.rows += len(rows)
                    await self._between()
                elif initial and (rows or held):
                    commit = ended or held + len(rows) >= INITIAL_BATCH
                    waiting.merge(await self.cache.apply_page(table, rows, last, initial=True, commit=commit))
                    held += len(rows)
                    if commit:  # what the bar and the events announce is stored: a kill resumes after it
                        await progress.settle(result.rows)
                        done += held
                        result.rows += held
                        progress.done += held
                        held = 0
                        # one event per commit naming the tickets (their messages included), not one per ticket:
                        # the inbox re-reads either way, and a thread opened meanwhile was fetched whole at once
                        waiting.tickets |= set(waiting.messages)
                        waiting.messages = {}
                        self._announce(waiting, backfill)
                        waiting = Applied()
                        self.emit(events.SyncProgress(done, None, table, progress.overall))
                    await self._between()  # a local write to push commits the held rows first (files.py)
                if ended:
                    break
            if initial and table == "messages":  # the staged rows into the cache's table (sync/cache/staging.py)
                self._fetch_ahead(table)
                self._announce(await self.cache.unstage(), backfill)
            if initial:
                await progress.settle(result.rows)
                self.emit(events.SyncProgress(done, done, table, progress.overall))  # this phase is complete
        finally:
            await self._stop(table, fetcher)
            if initial and table == "tickets":  # also when the phase failed: the inbox needs them offline
                await self.cache.end_tickets_bulk()

    def _pages(self, table: str, initial: bool) -> tuple[asyncio.Queue[_Page], asyncio.Future[None]]:
        """A table's pages: fetched ahead already, or from a fetcher started now. The initial sync's tickets phase
        starts the messages' too: their first pages download while the writer applies the tickets (it was busy and
        the server idle, at 100,000 tickets); a message page fetched before a change keeps the newer row either way
        (the staged rows' move and the previews' upsert keep the later ``change_xid``, schema v16)."""
        if initial and table == "tickets":
            self._ahead["messages"] = self._fetcher("messages", True)
        ahead = self._ahead.pop(table, None)
        return ahead if ahead is not None else self._fetcher(table, initial)

    def _fetcher(
        self, table: str, initial: bool, depth: int | None = None
    ) -> tuple[asyncio.Queue[_Page], asyncio.Future[None]]:
        """A table's pages, fetched ahead into a queue of ``depth`` pages (by default what the writer keeps up
        with)."""
        pages: asyncio.Queue[_Page] = asyncio.Queue(depth or (INITIAL_PREFETCH if initial else PREFETCH))
        return pages, asyncio.ensure_future(self._fetch_all(table, pages, initial))

    async def _between(self) -> None:
        if self.between is not None:
            await self.between()

    async def _fetch_all(self, table: str, pages: asyncio.Queue[_Page], initial: bool) -> None:
        after = await self.cache.cursor(table)
        while True:
            if self._since is not None and table in scope.SCOPED_TABLES:
                rows = await self.remote.pull_scoped(table, after, self._since)
            elif initial and self.batches and table in BATCH_TABLES:
                rows = await self._pull_batch(table, after)
            else:
                rows = await self.remote.pull(table, after)
            if rows:
                after = _after(rows[-1])
            # only an empty page ends a table (a project's max rows may cut pages below PAGE, so a
            # short page proves nothing)
            await pages.put((rows, after))
            if not rows:
                return

    async def _pull_batch(self, table: str, after: tuple[int, int]) -> list[Any]:
        """Pages of 10,000 (``sync_batch``; messages as arrays, ``sync_message_rows``); a server without the
        function gets the page format before it (``sync_batch``, then ``sync_<table>`` pages)."""
        if table == "messages" and self.message_rows:
            try:
                return await self.remote.pull_message_rows(after)
            except SyncError as exc:
                if exc.code not in _NO_FUNCTION:
                    raise
                log.info("no sync_message_rows on this server (%s): pages of objects", exc)
                self.message_rows = False
        try:
            return await self.remote.pull_batch(table, after)
        except SyncError as exc:
            if exc.code not in _NO_FUNCTION:
                raise
            log.info("no sync_batch on this server (%s): pages of %d", exc, PAGE)
            self.batches = False
            return await self.remote.pull(table, after)

    @staticmethod
    def _batch(
        pages: asyncio.Queue[_Page],
        rows: list[Any],
        last: tuple[int, int],
    ) -> tuple[list[Any], tuple[int, int], bool]:
        """Initial sync: every page already downloaded joins this statement (up to INITIAL_CHUNK rows);
        returns the rows, their cursor and whether the table's empty page was among them."""
        while len(rows) < INITIAL_CHUNK and not pages.empty():
            more, after = pages.get_nowait()
            if not more:
                return rows, last, True
            rows, last = rows + more, after
        return rows, last, False

    @staticmethod
    async def _stop(table: str, fetcher: asyncio.Future[None]) -> None:
        if not fetcher.done():
            fetcher.cancel()
            await asyncio.wait([fetcher])
        if not fetcher.cancelled() and fetcher.exception() is not None:
            log.debug("prefetch of %s ended with %s", table, fetcher.exception())

    @staticmethod
    async def _next(pages: asyncio.Queue[_Page], fetcher: asyncio.Future[None]) -> _Page:
        """The next downloaded page, or the fetcher's error (it stops at the first one) once the pages
        before it are applied."""
        if not pages.empty():
            return pages.get_nowait()
        getter = asyncio.ensure_future(pages.get())
        try:
            either: list[asyncio.Future[Any]] = [getter, fetcher]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        fetcher.result()  # raises the fetch's error
        return await pages.get()  # it ended normally: its last (empty) page is queued

    async def _pull_deletions(self, result: PullResult) -> None:
        """The server's tombstones of deleted attachments, by their own cursor: each page's rows and files leave the
        cache with the cursor past it (``Cache.drop_deleted_attachments``). A server without them (an older
        migration set) is not asked again."""
        after = await self.cache.cursor(DELETIONS)
        while True:
            try:
                rows = await self.remote.pull(DELETIONS, after)
            except SyncError as exc:
                if exc.code not in _NO_FUNCTION:
                    raise
                log.info("no sync_attachment_deletions on this server (%s): deleted files stay cached", exc)
                self.pulls_deletions = False
                return
            if not rows:  # only an empty page ends it (a short page proves nothing)
                return
            after = _after(rows[-1])
            # each under its message (a row without one: whatever message the id has here)
            deleted = [(str(r["id"]), None if r.get("message_id") is None else str(r["message_id"])) for r in rows]
            applied = await self.cache.drop_deleted_attachments(deleted, after)
            result.rows += len(rows)
            self._announce(applied, set())
            await self._between()

    async def _settings(self) -> None:
        """The project's settings and this user's notification preferences (single rows, no cursor); a change
        of the settings re-derives what depends on them (receipts)."""
        settings = await self.remote.app_settings()
        if settings is not None and await self.cache.set_app_settings(settings):
            self.forget_horizons()  # e.g. staff_require_mfa switched off: rows below them became visible
            self.emit(events.TicketsChanged(frozenset(await self.cache.ticket_ids())))
        await self.cache.apply_preferences(await self.remote.notification_preferences())

    async def _pull_snapshots(self, result: PullResult) -> None:
        # due no more from before the reads: a change realtime announces during them (the live applier sets it
        # again) asks for another read; cleared after them, it was lost until the next full pull (60 s or more)
        self.snapshots_due = False
        try:
            for table in SNAPSHOT_TABLES:
                rows = await self.remote.select_where(table, {})
                await self.cache.workspace.apply_snapshot(table, rows)
                result.rows += len(rows)
        except BaseException:
            self.snapshots_due = True
            raise
        self.emit(events.WorkspaceChanged(frozenset(SNAPSHOT_TABLES)))

    async def _apply(self, table: str, rows: list[dict[str, Any]], cursor: tuple[int, int], backfill: set[str]) -> None:
        applied = await self.cache.apply_page(table, rows, cursor, initial=False)
        self._news.update(mid for ids, from_others in applied.messages.values() if from_others for mid in ids)
        self._announce(applied, backfill)

    def _announce(self, applied: Applied, backfill: set[str]) -> None:
        backfill.update(applied.backfill)
        for event in applied.events():
            self.emit(event)

    async def backfill(
        self, ticket_id: str, emit: Callable[[events.Event], None], result: PullResult | None = None
    ) -> None:
        """Fetch a ticket's whole thread and read markers by ticket id (it became visible)."""
        messages = await self.remote.rows_of_ticket("messages", ticket_id)
        files = await self.remote.rows_of_ticket("attachments", ticket_id)
        reads = await self.remote.rows_of_ticket("ticket_reads", ticket_id)
        # revisions are staff-only on the server; a customer does not even ask
        staff = self.cache.role != "customer"
        revisions = await self.remote.rows_of_ticket("message_revisions", ticket_id) if staff else []
        # the ticket's tags and SLA were written while this user could not see it: their rows lie below the cursors
        # (and horizons) of their tables, and nothing writes them again when the ticket is reassigned or released
        decorations = {t: await self.remote.rows_of_ticket(t, ticket_id) for t in BACKFILLED_DECORATIONS if staff}
        applied = await self.cache.apply_backfill(ticket_id, messages, reads, files, revisions, decorations=decorations)
        for event in applied.events():
            emit(event)
        if result is not None:
            result.backfilled.add(ticket_id)
            result.rows += applied.rows

    async def _prune(self, result: PullResult, initial: bool) -> None:
        # the initial sync lists the ids while the writer builds the indexes (``_end``): its own digest would
        # wait for that build on the writer thread
        if not initial and await self._nothing_to_prune():
            return
        visible = await self.remote.visible_ticket_ids()
        gone = await self.cache.prune(visible)
        if gone:
            result.removed |= gone
            self.emit(events.TicketsRemoved(frozenset(gone)))
            self.emit(events.TicketsChanged(frozenset(gone)))

    async def _nothing_to_prune(self) -> bool:
        """Whether the server shows this user exactly the tickets cached from it: the digest of its visible
        tickets (``Remote.visible_tickets_digest``, one small answer) equals the one of the cached ids. Then no
        cached ticket is stale and the listing of every visible id is skipped (an admin of a 100,000-ticket desk
        listed a hundred pages after every pull). Any difference — a ticket reassigned away or deleted, one this
        cache has not pulled yet, a partial sync's scope — lists them as before. A server without the function,
        or with an answer of another shape, is listed every time (and not asked again)."""
        if not self.asks_digest:
            return False
        try:
            theirs = await self.remote.visible_tickets_digest()
        except SyncError as exc:
            if exc.code not in _NO_FUNCTION:
                raise
            theirs = None
        if theirs is None:
            self.asks_digest = False
            return False
        return await self.cache.server_tickets_digest() == theirs

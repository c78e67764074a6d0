"""postgres_changes capture: logical decoding of committed changes, typed, RLS-checked, delivered in order.

Mechanism, and why. A temporary logical replication slot with the `pgoutput` plugin, created by the
capture's own connection when the service starts (temporary: it disappears with that session, so a
stopped or crashed stack never leaves a slot pinning WAL), read with
`pg_logical_slot_get_binary_changes(..., 'publication_names', 'supabase_realtime')`:
  * logical decoding emits a transaction only after it commits, whole, in commit order, and never
    one that rolled back, which are exactly the guarantees clients need; triggers + NOTIFY would see
    rows before commit (and need a follow-up read that races with later writes);
  * pgoutput filters by the publication for us and describes each relation (names, type OIDs,
    key columns) in-band, so a table added to the publication needs no code;
  * values come in PostgreSQL's text format and are turned into the JSON REST returns: common types
    by a fixed rewrite (values.py), anything else by PostgreSQL itself (`text::type` then `to_jsonb`).
The slot is not polled: the capture streams it over the replication protocol (walstream.py), so the
walsender pushes each transaction as soon as it commits and its WAL is flushed (with `synchronous_commit =
on`, as on Supabase, the committing backend flushes and wakes the walsender itself; a transaction that asks
for an asynchronous commit wakes the WAL writer at once, localbase running PostgreSQL with
`wal_writer_flush_after = 0` and `wal_writer_delay = 1ms` as the backstop, where the defaults would make it
wait up to 200 ms) and the capture sleeps until then: no fixed interval on the hot path.
Everything streamed is decoded, also with no postgres_changes subscriber (cheap; it keeps relations
known and the slot confirmed). A channel is reported "Subscribed to PostgreSQL" once it is registered
and the stream is running, so every change that commits after the client saw that message reaches it.

Per batch (whatever the stream brought since the last one): decode, find the channels whose
bindings match each change (table, event, filters on the typed record), check RLS for INSERT/UPDATE
once per distinct subscriber identity in one round trip
(rls.py), then enqueue the events in commit order. The check first waits until the batch's transactions are
visible to a fresh snapshot (`await_visible`): the walsender can send a commit a moment before the committing
backend leaves the proc array, and a check in that moment would approve the new row against its old version.
DELETE is not RLS-checked (the row is gone), as
on Supabase; a role that may not SELECT the primary key gets walrus's 401 error instead of an INSERT or
UPDATE, and nothing of a DELETE (stricter than Supabase); on RLS tables `old_record` keeps
only the primary key. An UPDATE's unchanged TOASTed values (long texts) are not in the WAL; they are
read from the row by primary key, so they can already show a later committed update of that column,
which is delivered right after.

Deliveries count toward the stack's postgres_changes rate (quotas.py: Supabase's `db_events`, one per change and
subscription it goes to, the limit `max_events_per_second`): looked at and updated every POLL_MAX_CHANGES changes
of a batch, as Supabase's poller does once a poll (of at most `poll_max_changes` = 100 changes; counted here in
changes that reach a subscriber). While the rate is over, the rest of the batch is dropped (a whole batch before
its RLS checks), as Supabase's poller skips a poll's changes: nothing is sent, nothing is closed, subscribers miss
those changes, the drop is logged when the rate turns over.

If the capture's session fails it starts over on a new slot; channels that were live are sent a
postgres_changes error first (see `_reset_live_channels`), because changes in the gap are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from localbase import hops
from localbase.realtime import quotas
from localbase.realtime.hub import Channel, Hub, Outbox, keying
from localbase.realtime.matching import Matcher, Plan
from localbase.realtime.pgoutput import UNCHANGED, Change, Decoder, Relation, Transaction
from localbase.realtime.rls import ANSWER_SHIFT, Checks, Group, RlsChecker, check_function, check_function_name
from localbase.realtime.subscriptions import PUBLICATION
from localbase.realtime.values import convert_row
from localbase.realtime.walstream import WalStream

log = logging.getLogger(__name__)

WAIT_AT_MOST = 1.0  # seconds without data before the loop looks around (keepalives, feedback)
MAX_CHANGES_PER_POLL = 5000  # pgoutput messages decoded per batch
POLL_MAX_CHANGES = 100  # Supabase's `poll_max_changes`: its poller checks the postgres_changes rate once a poll
RLS_WORKERS = 3  # backends that run RLS checks, in parallel for large batches, while the slot is polled again
MAX_PENDING = 20_000  # decoded events waiting for their RLS check; beyond this the slot keeps them instead
UNAUTHORIZED = "Error 401: Unauthorized"  # walrus (realtime.apply_rls): the role may not SELECT the primary key
NO_PRIMARY_KEY = "Error 400: Bad Request, no primary key"
# what a role's channels get from one event (`_authorize`), besides one of the errors above; compared by identity
_KEEP = "keep"  # the change as it is: no RLS check (a DELETE, a table without RLS, service_role)
_SKIP = "skip"  # nothing: a DELETE the role may not SELECT
_CHECK = "check"  # the change if the subscriber's RLS check sees the row


@dataclass
class Event:
    """One change ready for delivery: typed values and who may receive it."""

    relation: Relation
    change: Change
    commit_timestamp: str
    record: dict[str, Any]
    old_record: dict[str, Any]
    targets: list[tuple[Channel, list[int]]]
    xid: int = 0  # the transaction's (32-bit, from the WAL)
    errors: dict[int, str] = field(default_factory=dict)  # channel uid -> the error it gets instead of the row
    # ``hub.keying()`` when its targets were matched: a target channel keyed after it (new claims while the change
    # was checked or delivered) is left out, as its check and columns were for claims it no longer has
    keyed_by: int = field(default_factory=keying)


@dataclass
class _Asked:
    """One table's RLS questions in a batch: per distinct identity (claims JSON; the role is the claims') its group
    index, role and the keys (indexes into the batch's keys) it asks about, in the order first asked."""

    group_of: dict[str, int] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)


def _commit_timestamp(tx: Transaction) -> str:
    # as walrus: UTC (the decoder's times are), milliseconds (truncated), `Z`; isoformat costs a third of strftime
    return tx.commit_time.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


class Capture:
    def __init__(self, db_url: str, hub: Hub) -> None:
        self.db_url = db_url
        self.hub = hub
        self.slot = f"localbase_realtime_{os.getpid()}"
        self.rls = RlsChecker()
        self.decoder = Decoder()
        self._types: dict[int, tuple[str, str]] = {}  # type oid -> (typname, SQL type)
        self._conn: AsyncConnection[Any] | None = None
        self._workers: list[AsyncConnection[Any]] = []
        self._pending: list[Event] = []
        self._pending_ready = asyncio.Event()
        self._checker: asyncio.Task[None] | None = None
        self.batches = 0
        self.dropped = 0  # changes dropped over the postgres_changes rate
        self.matcher = Matcher(hub.pg_channels)

    async def run(self) -> None:
        """Poll forever; reconnect (with a new slot) if the database connection is lost."""
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception:  # log, back off, start over with a fresh slot
                log.exception("realtime capture failed; restarting")
                await asyncio.sleep(1.0)
            finally:
                if self._checker is not None:
                    self._checker.cancel()
                    self._checker = None
                self._pending = []
                for extra in self._workers:
                    with contextlib.suppress(Exception):
                        await extra.close()
                self._workers = []
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None

    async def _session(self) -> None:
        conn = await AsyncConnection.connect(self.db_url, autocommit=True)
        self._conn = conn
        await self.rls.setup(conn)
        await conn.execute("set timezone = 'UTC'")
        stream = await WalStream.open(self.db_url, self.slot, PUBLICATION)
        try:
            self._reset_live_channels()
            for _ in range(RLS_WORKERS):
                self._workers.append(await AsyncConnection.connect(self.db_url, autocommit=True))
            self.decoder = Decoder()
            self._checker = asyncio.create_task(self._check_loop(conn))
            scanned = -1  # the channel set's version last looked through: only a join or a leave changes it
            while True:
                self.hub.pg_joined.clear()  # before the snapshot: a join from here on wakes the next wait
                # the stream is running: every transaction that commits from now on reaches these channels
                channels = self.hub.pg_channels
                if channels.version != scanned:
                    scanned = channels.version
                    for channel in list(channels):
                        if not channel.live:
                            channel.live = True
                            channel.system("postgres_changes", "ok", "Subscribed to PostgreSQL")
                messages = await stream.read(MAX_CHANGES_PER_POLL, self.hub.pg_joined, WAIT_AT_MOST)
                if messages:
                    await self.process(conn, messages)
                self._raise_if_checker_failed()
        finally:
            stream.close()

    def _reset_live_channels(self) -> None:
        """Tell channels that were live on a previous slot that changes may have been missed.

        The old slot was temporary and died with its session, so whatever committed between its last
        poll and the new slot was never decoded. Like Supabase Realtime when its replication connection
        fails, each such channel gets a postgres_changes error: clients report CHANNEL_ERROR and
        rejoin, and a rejoin is when an offline-first client runs its catch-up pull.
        """
        for channel in list(self.hub.pg_channels):
            if channel.live:
                channel.live = False
                channel.system(
                    "postgres_changes",
                    "error",
                    "realtime capture restarted: changes may have been missed; rejoin to resubscribe",
                )

    async def process(self, conn: AsyncConnection[Any], messages: list[bytes]) -> None:
        """Decode one batch of streamed pgoutput messages and queue its events for the RLS checker."""
        self.batches += 1
        read_at = time.time()
        transactions = [tx for tx in (self.decoder.feed(m) for m in messages) if tx is not None]
        if not self.hub.pg_channels:
            return  # decoded (relations and transactions stay consistent), nobody to tell
        events = await self._events(conn, transactions)
        if hops.enabled():  # with the commit record's time and the moment the stream's bytes were read
            committed = {tx.xid: str(tx.commit_time.timestamp()) for tx in transactions}
            for event in events:
                hops.mark("decoded", str(event.record.get("id")), commit=committed[event.xid], read=str(read_at))
        if events:
            self._pending.extend(events)
            self._pending_ready.set()
        self._raise_if_checker_failed()
        while len(self._pending) > MAX_PENDING:  # the checker is behind: stop reading, the walsender waits
            await asyncio.sleep(0.002)
            self._raise_if_checker_failed()

    async def _check_loop(self, conn: AsyncConnection[Any]) -> None:
        """Check and deliver everything decoded so far, batch after batch, in commit order.

        Runs beside the polling loop: while one batch's RLS checks run on the worker backends the slot is
        polled again, and the longer checks take, the bigger (and cheaper per change) the next batch is.
        """
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            batch, self._pending = self._pending, []
            if batch:
                limit = self.hub.quotas.db_events
                if limit.over_logged(quotas.DB_EVENTS_LOG):
                    self.dropped += len(batch)
                    continue
                await self._authorize(conn, batch)
                if hops.enabled():
                    for event in batch:
                        hops.mark("rls_checked", str(event.record.get("id")))
                # the rate is looked at every POLL_MAX_CHANGES changes, as often as Supabase's poller does
                for start in range(0, len(batch), POLL_MAX_CHANGES):
                    if start and limit.over_logged(quotas.DB_EVENTS_LOG):
                        self.dropped += len(batch) - start
                        break
                    limit.add(await self._deliver(conn, batch[start : start + POLL_MAX_CHANGES]))

    def _raise_if_checker_failed(self) -> None:
        if self._checker is not None and self._checker.done():
            self._checker.result()  # re-raises its failure (the capture restarts), or says it stopped
            raise RuntimeError("the realtime RLS checker stopped")

    # typing ---------------------------------------------------------------------------------------

    async def _type_info(self, conn: AsyncConnection[Any], oids: set[int]) -> None:
        missing = [o for o in oids if o not in self._types]
        if missing:
            cur = await conn.execute(
                "select oid::int8, typname::text, format_type(oid, null) from pg_type where oid = any(%s)", (missing,)
            )
            for oid, typname, type_sql in await cur.fetchall():
                self._types[int(oid)] = (str(typname), str(type_sql))

    async def _typed(
        self, conn: AsyncConnection[Any], relation: Relation, tuples: list[list[Any]]
    ) -> list[dict[str, Any]]:
        """Typed JSON objects for text tuples; UNCHANGED and key-only NULLs are dropped later.

        Common types are rewritten in Python (values.py); a batch with anything else is cast by PostgreSQL.
        """
        await self._type_info(conn, {c.type_oid for c in relation.columns})
        names = [c.name for c in relation.columns]
        typnames = [self._types[c.type_oid][0] for c in relation.columns]
        fast = [convert_row(names, typnames, values) for values in tuples]
        if all(row is not None for row in fast):
            return [row for row in fast if row is not None]
        cols = [f"c{i}" for i in range(len(relation.columns))]
        record_def = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in ["n", *cols])
        select = sql.SQL(", ").join(
            sql.SQL("t.{}::{} as {}").format(
                sql.Identifier(c), sql.SQL(self._types[col.type_oid][1]), sql.Identifier(col.name)
            )
            for c, col in zip(cols, relation.columns, strict=True)
        )
        query = sql.SQL(
            "select t.n::int, to_jsonb(r) from jsonb_to_recordset(%s::jsonb) as t({}) "
            "cross join lateral (select {}) r order by t.n::int"
        ).format(record_def, select)
        payload = [
            {"n": str(i), **{c: (None if v is UNCHANGED else v) for c, v in zip(cols, values, strict=True)}}
            for i, values in enumerate(tuples)
        ]
        cur = await conn.execute(query, (json.dumps(payload),))
        return [dict(r[1]) for r in await cur.fetchall()]

    # matching: which channels a change goes to (matching.py) -------------------------------------

    async def _events(self, conn: AsyncConnection[Any], transactions: list[Transaction]) -> list[Event]:
        pending: list[tuple[Relation, Change, str, Plan]] = []
        xid_of: dict[int, int] = {}  # id(change) -> its transaction
        for tx in transactions:
            stamp = ""  # made for the first change anybody may receive: most of a transaction's are for nobody
            for change in tx.changes:
                relation = self.decoder.relations.get(change.relation_oid)
                if relation is None:
                    continue
                plan = self.matcher.plan(relation.schema, relation.name, change.kind)
                if plan.candidates:
                    stamp = stamp or _commit_timestamp(tx)
                    pending.append((relation, change, stamp, plan))
                    xid_of[id(change)] = tx.xid
        if not pending:
            return []
        # type all needed tuples, one query per relation
        by_relation: dict[int, list[list[Any]]] = {}
        for relation, change, _, _ in pending:
            bucket = by_relation.setdefault(relation.oid, [])
            for values in (change.new, change.old):
                if values is not None:
                    bucket.append(values)
        typed: dict[int, list[dict[str, Any]]] = {}
        for oid, tuples in by_relation.items():
            typed[oid] = await self._typed(conn, self.decoder.relations[oid], tuples)
        cursor = dict.fromkeys(typed, 0)
        events: list[Event] = []
        for relation, change, stamp, plan in pending:
            record: dict[str, Any] = {}
            old: dict[str, Any] = {}
            if change.new is not None:
                record = self._present(relation, change.new, typed[relation.oid][cursor[relation.oid]], False)
                cursor[relation.oid] += 1
                if any(v is UNCHANGED for v in change.new):
                    await self._fill_unchanged(conn, relation, change, record)
            if change.old is not None:
                old = self._present(
                    relation, change.old, typed[relation.oid][cursor[relation.oid]], change.old_is_key_only
                )
                cursor[relation.oid] += 1
            subject = old if change.kind == "DELETE" else record
            targets = plan.targets(subject)
            if targets:
                events.append(Event(relation, change, stamp, record, old, targets, xid_of[id(change)]))
        return events

    async def _fill_unchanged(
        self, conn: AsyncConnection[Any], relation: Relation, change: Change, record: dict[str, Any]
    ) -> None:
        """Complete an UPDATE whose unchanged TOASTed values the WAL does not carry, from the row as it is now."""
        keys = [c for c in relation.columns if c.is_key]
        if not keys or any(c.name not in record for c in keys):
            return
        await self._type_info(conn, {c.type_oid for c in keys})
        where = sql.SQL(" and ").join(
            sql.SQL("t.{} = ({}::jsonb ->> {})::{}").format(
                sql.Identifier(c.name), sql.Placeholder("pk"), sql.Literal(c.name), sql.SQL(self._types[c.type_oid][1])
            )
            for c in keys
        )
        query = sql.SQL("select to_jsonb(t) from {} t where {}").format(
            sql.Identifier(relation.schema, relation.name), where
        )
        pk = json.dumps({c.name: record[c.name] for c in keys})
        cur = await conn.execute(query, {"pk": pk})
        row = await cur.fetchone()
        if row is None:
            return  # deleted since: the DELETE follows; those columns stay out of this record
        current = dict(row[0])
        assert change.new is not None
        for col, value in zip(relation.columns, change.new, strict=True):
            if value is UNCHANGED and col.name in current:
                record[col.name] = current[col.name]

    @staticmethod
    def _present(relation: Relation, values: list[Any], typed: dict[str, Any], key_only: bool) -> dict[str, Any]:
        out = {}
        for col, value in zip(relation.columns, values, strict=True):
            if value is UNCHANGED or (key_only and not col.is_key):
                continue
            out[col.name] = typed.get(col.name)
        return out

    # RLS ------------------------------------------------------------------------------------------

    async def _authorize(self, conn: AsyncConnection[Any], events: list[Event]) -> None:
        """Keep, per event, only the channels whose subscriber may read the row (fails closed).

        The questions go to `rls.visible` per table: the batch's changed keys once, and per distinct identity (role
        + claims) the keys it needs answered, so the arguments grow with identities + rows, not their product.
        What a channel gets depends on its role (privileges) and, where RLS is checked, its identity: the role's
        outcome is decided once per event, and the per-channel loop only looks it up (it runs for every subscriber).
        """
        keys_of: dict[str, tuple[list[dict[str, Any]], dict[str, int]]] = {}  # fn -> (keys, key index by pk JSON)
        xids: set[int] = set()
        asked_of: dict[str, _Asked] = {}  # fn -> its identity groups
        wanted: list[tuple[str, list[tuple[Channel, list[int], int]]]] = []  # per event: its check function, targets
        for event in events:
            rel = event.relation
            rls_on = await self.rls.rls_enabled(conn, rel.oid)
            keys = [c.name for c in rel.columns if c.is_key]
            kind = event.change.kind
            needs_check = kind != "DELETE" and rls_on
            fn = check_function_name(rel.oid)
            if needs_check and keys and fn not in keys_of:
                await self._type_info(conn, {c.type_oid for c in rel.columns})
                key_types = [(c.name, self._types[c.type_oid][1]) for c in rel.columns if c.is_key]
                await self.rls.ensure_function(conn, fn, check_function(rel.oid, rel.schema, rel.name, key_types))
                keys_of[fn] = ([], {})
                asked_of[fn] = _Asked()
            outcome: dict[str, str] = {}  # role -> _KEEP, _SKIP, _CHECK or the error its channels get
            for role in {ch.role for ch, _ in event.targets}:
                access = await self.rls.access(conn, role, rel.oid)
                if kind == "DELETE":
                    # stricter than Supabase, which sends a role that may not SELECT the DELETE with no columns
                    outcome[role] = _KEEP if access.can_select else _SKIP
                elif not keys or not access.columns.issuperset(keys):
                    # as walrus: no primary key, or a role that may not read it, gets an error, never the row
                    outcome[role] = NO_PRIMARY_KEY if not keys else UNAUTHORIZED
                elif not needs_check or role == "service_role":
                    outcome[role] = _KEEP
                else:
                    outcome[role] = _CHECK
            per_event: list[tuple[Channel, list[int], int]] = []  # the answer it needs (`rls.answer`), -1: none
            if _CHECK in outcome.values():
                xids.add(event.xid)
                pk = {name: event.record.get(name) for name in keys}
                pk_json = json.dumps(pk, sort_keys=True)
                listed, index = keys_of[fn]
                k = index.get(pk_json)
                fresh = k is None  # a key no group was asked about yet in this batch
                if k is None:
                    k = index[pk_json] = len(listed)
                    listed.append(pk)
                asked = asked_of[fn]
                group_of, rows = asked.group_of, asked.rows
                keyed_by = event.keyed_by
                for channel, ids in event.targets:
                    if channel.keyed > keyed_by:
                        continue  # new claims (maybe another user's) since its targets were matched: not checked
                    verdict = outcome[channel.role]
                    if verdict is _CHECK:
                        g = group_of.get(channel.claims_json)
                        if g is None:
                            g = group_of[channel.claims_json] = len(rows)
                            asked.roles.append(channel.role)
                            rows.append([k])
                        else:
                            # in the order asked: a fresh key is the largest, so only the last can equal it
                            mine = rows[g]
                            if mine[-1] != k and (fresh or k not in mine):
                                mine.append(k)
                        per_event.append((channel, ids, (g << ANSWER_SHIFT) | k))  # rls.answer(g, k), inlined
                    else:
                        self._unchecked(event, channel, ids, verdict, per_event)
            else:
                for channel, ids in event.targets:
                    if channel.keyed <= event.keyed_by:  # as above
                        self._unchecked(event, channel, ids, outcome[channel.role], per_event)
            wanted.append((fn, per_event))
        checks: dict[str, Checks] = {}
        for fn, (listed, _) in keys_of.items():
            every = len(listed)
            asked = asked_of[fn]
            checks[fn] = Checks(
                json.dumps(listed),
                [
                    Group(g, role, claims, None if len(rows) == every else rows)
                    for (claims, g), role, rows in zip(asked.group_of.items(), asked.roles, asked.rows, strict=True)
                ],
                sorted(xids),
            )
        visible = await self.rls.visible(self._workers or [conn], checks)
        nothing: set[int] = set()
        for event, (fn, per_event) in zip(events, wanted, strict=True):
            seen = visible.get(fn, nothing)
            event.targets = [(ch, ids) for ch, ids, needs in per_event if needs < 0 or needs in seen]

    @staticmethod
    def _unchecked(
        event: Event,
        channel: Channel,
        ids: list[int],
        verdict: str,
        per_event: list[tuple[Channel, list[int], int]],
    ) -> None:
        """A channel whose role's outcome needs no RLS check: the change, nothing, or an error instead of the row."""
        if verdict is _SKIP:
            return
        if verdict is not _KEEP:
            event.errors[channel.uid] = verdict
        per_event.append((channel, ids, -1))

    # delivery -------------------------------------------------------------------------------------

    async def _deliver(self, conn: AsyncConnection[Any], events: list[Event]) -> int:
        """Assemble the batch's frames and hand each socket its share in one call, in commit order; return how many
        subscriptions (binding ids) the batch reached, what Supabase counts toward the postgres_changes rate.

        The frames of every event are gathered per socket (`Outbox`) first and put with `put_many`: one direct write
        per socket and batch instead of one per frame (at 500 subscribers the per-frame path was the largest part of
        the stack's time). Order is kept: events are walked in commit order and a socket's frames are appended as met.
        A batch of one event (the usual one when the capture keeps up) puts each frame as it is assembled: there is
        nothing to gather, and the gathering cost ~1 us per frame.
        """
        datas: list[dict[str, str]] = []  # per event: role -> the data it receives (its columns)
        for event in events:  # first every await (cached privileges), so the frames below are put without one
            rel = event.relation
            rls_on = await self.rls.rls_enabled(conn, rel.oid)
            data_of: dict[str, str] = {}
            for role in {ch.role for ch, _ in event.targets}:
                allowed = (await self.rls.access(conn, role, rel.oid)).columns
                data_of[role] = self._data_json(event, allowed, rls_on)
            datas.append(data_of)
        live = self.hub.pg_channels
        tracing = hops.enabled()
        out: dict[Outbox, list[str | bytes]] = {}
        single = len(events) == 1
        reached = 0  # binding ids delivered: counted per event, corrected only off the usual path (one id, delivered)
        for event, data_of in zip(events, datas, strict=True):
            reached += len(event.targets)
            ids_cache: dict[int, str] = {}  # one binding id (the usual case) -> its JSON
            frames: dict[tuple[str, str, str], str] = {}
            errors = event.errors
            keyed_by = event.keyed_by
            for channel, ids in event.targets:
                if channel not in live or channel.keyed > keyed_by:
                    reached -= 1
                    continue  # left, or new claims since it was checked (for the claims before: maybe another user's)
                error = errors.get(channel.uid) if errors else None
                data_json = data_of[channel.role] if error is None else self._error_json(event, error)
                if len(ids) == 1:
                    ids_json = ids_cache.get(ids[0])
                    if ids_json is None:
                        ids_json = ids_cache[ids[0]] = json.dumps(ids)
                else:
                    ids_json = json.dumps(ids)
                    reached += len(ids) - 1
                if tracing:  # before the socket's put: an idle socket's frame is written during it
                    hops.mark("frame_queued", str(event.record.get("id")), to=str(channel.claims.get("sub")))
                frame = channel.change_frame(ids_json, data_json, frames)
                if single:  # one event: a socket's frames are this event's, put as they come (no gathering)
                    channel.outbox.put(frame)
                    continue
                pending = out.get(channel.outbox)
                if pending is None:
                    out[channel.outbox] = [frame]
                else:
                    pending.append(frame)
        for outbox, pending in out.items():
            outbox.put_many(pending)
        return reached

    @staticmethod
    def _error_json(event: Event, error: str) -> str:
        """What Supabase's walrus sends instead of a row: no columns, no values, no commit timestamp."""
        data: dict[str, Any] = {
            "schema": event.relation.schema,
            "table": event.relation.name,
            "commit_timestamp": None,
            "type": event.change.kind,
            "errors": [error],
            "columns": [],
            "record": {},
        }
        if event.change.kind == "UPDATE":
            data["old_record"] = {}
        return json.dumps(data, separators=(",", ":"))

    def _data_json(self, event: Event, allowed: frozenset[str], rls_on: bool) -> str:
        rel = event.relation
        kind = event.change.kind
        columns = [
            {"name": c.name, "type": self._types.get(c.type_oid, ("unknown", ""))[0]}
            for c in rel.columns
            if c.name in allowed
        ]
        data: dict[str, Any] = {
            "schema": rel.schema,
            "table": rel.name,
            "commit_timestamp": event.commit_timestamp,
            "type": kind,
            "errors": None,
            "columns": columns,
        }
        keys = {c.name for c in rel.columns if c.is_key}
        if kind in ("INSERT", "UPDATE"):
            data["record"] = {k: v for k, v in event.record.items() if k in allowed}
        if kind == "UPDATE":
            source = event.old_record or {k: event.record.get(k) for k in keys}
            data["old_record"] = {k: v for k, v in source.items() if k in allowed and (k in keys or not rls_on)}
        if kind == "DELETE":
            old = event.old_record
            data["old_record"] = {k: v for k, v in old.items() if k in allowed and (k in keys or not rls_on)}
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

"""Broadcast from Database: rows that `realtime.send()` writes to `realtime.messages` reach the channels.

Supabase Realtime reads `realtime.messages` inserts from a logical replication slot and sends each
as a broadcast (event = the row's `event`, payload = its `payload`, which `realtime.send` gave an
`id`) to the topic's private or public channel, whichever the row's `private` names. Members of a
private channel receive it only if RLS let them read broadcasts at join, as for client broadcasts.

Here an AFTER INSERT trigger (sql/local) NOTIFYs each broadcast row after its transaction commits,
in commit order, never for a rollback (so the authorization probes, always rolled back, never
arrive). The notification carries the whole row when it fits PostgreSQL's 8000-byte limit, else
only its id, and the row is read back. LISTEN rather than a second decoder on the capture's slot
because these are ephemeral signals: one extra connection, woken at commit, no polling. A broadcast
committed while the listening connection is being re-established is lost, as Supabase's own
broadcasts are when a socket drops. Rows older than RETENTION are deleted hourly (Supabase's janitor
drops old daily partitions).

Each broadcast counts toward the stack's events per second, and so does each delivery of it (hub.py); while the
rate is over, broadcasts from the database are dropped and that is logged, as Supabase's replication connection
does (quotas.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from localbase.realtime import quotas
from localbase.realtime.hub import BroadcastMessage, Hub, hub_key

log = logging.getLogger(__name__)

CHANNEL = "localbase_realtime_broadcast"
RETENTION = "3 days"
CLEANUP_EVERY = 3600.0


class DatabaseBroadcasts:
    def __init__(self, db_url: str, pool: AsyncConnectionPool, hub: Hub) -> None:
        self.db_url = db_url
        self.pool = pool
        self.hub = hub
        self.delivered = 0

    async def run(self) -> None:
        """Listen forever; reconnect after a lost connection."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restarting or gone: try again shortly
                log.info("realtime: broadcast listener restarting: %s", exc)
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        async with await AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            await conn.execute(f"listen {CHANNEL}")
            last_cleanup = 0.0
            while True:
                if time.monotonic() - last_cleanup > CLEANUP_EVERY:
                    last_cleanup = time.monotonic()
                    await self._cleanup()
                gen = conn.notifies(timeout=CLEANUP_EVERY)
                async for note in gen:
                    await self.deliver(note.payload)

    async def _cleanup(self) -> None:
        with contextlib.suppress(Exception):  # an old data dir without the realtime schema
            async with self.pool.connection() as conn:
                await conn.execute(f"delete from realtime.messages where inserted_at < now() - interval '{RETENTION}'")

    async def deliver(self, note: str) -> None:
        try:
            row: dict[str, Any] = json.loads(note)
        except ValueError:
            return
        if "topic" not in row:
            fetched = await self._fetch(row.get("id"))
            if fetched is None:
                return
            row = fetched
        topic, event = row.get("topic"), row.get("event")
        if not isinstance(topic, str) or not isinstance(event, str) or not topic or not event:
            return
        events = self.hub.quotas.events
        if events.over_logged(quotas.EVENTS_LOG):
            return  # Supabase: {:error, :too_many_requests}, the message is not broadcast
        events.add()
        binary = row.get("binary_payload")
        message = (
            BroadcastMessage(event, binary=bytes.fromhex(binary))
            if isinstance(binary, str)
            else BroadcastMessage(event, payload=row.get("payload"))
        )
        self.delivered += self.hub.broadcast(hub_key(f"realtime:{topic}", row.get("private") is not False), message)

    async def _fetch(self, message_id: Any) -> dict[str, Any] | None:
        if not isinstance(message_id, str):
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select json_build_object('topic', topic, 'event', event, 'private', private, 'payload', payload,"
                " 'binary_payload', encode(binary_payload, 'hex')) from realtime.messages where id = %s::uuid",
                (message_id,),
            )
            found = await cur.fetchone()
        return dict(found[0]) if found else None

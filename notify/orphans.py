"""Orphan attachment objects: files in the `attachments` bucket that no `public.attachments` row names (nor a
live `public.canned_reply_files` row: a canned reply's file), older than a grace period, removed through the
Storage API. A file taken off its canned reply is an orphan from then on.

How an orphan comes about: the app uploads a message's files first, then the message, then the rows that
describe the files (sync/README.md); a message discarded or refused after its files reached Storage, or a
client killed for good between the two, leaves objects nobody can see or reach from a ticket. The grace
period protects uploads in progress: a file whose row has not been written *yet* (its client is offline
between the upload and the row) is younger than the grace and is left alone. A client offline for longer
than the grace between those two steps finds its file gone and uploads it again from its queued copy before
sending the message (sync/push.py, which trusts only its own uploads of the last ten minutes), so a shorter
grace costs bytes, never a file, as long as it is longer than that; the default is a week.

Removal goes through Storage (`DELETE /storage/v1/object/<bucket>` with the service role key), never
`delete from storage.objects`: on Supabase the bytes live in S3 and only the Storage API removes both (the
storage schema refuses direct deletes). Run by the `supportchat notify` worker loop when it is given the
project's API URL and, in the environment, its service role key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

log = logging.getLogger("notify")

BUCKET = "attachments"
DEFAULT_GRACE = 7 * 24 * 3600.0  # seconds an object may wait for its row
PURGE_EVERY = 600.0  # seconds between purges in the worker loop
BATCH = 1000  # Storage removes at most 1000 prefixes per request

ORPHANS_SQL = """
select o.name from storage.objects o
where o.bucket_id = %(bucket)s
  and o.created_at < now() - make_interval(secs => %(grace)s)
  and not exists (select 1 from public.attachments a where a.object_path = o.name)
  and not exists (select 1 from public.canned_reply_files c where c.object_path = o.name and c.deleted_at is null)
order by o.created_at
limit %(limit)s
"""


class PurgeError(Exception):
    """Storage refused or failed the removal (the objects stay; the next purge tries again)."""


@dataclass(frozen=True)
class StorageAdmin:
    """The Storage API as the service role: only `remove`, the one call the purge needs."""

    api_url: str
    service_key: str
    timeout: float = 30.0

    def remove(self, names: list[str]) -> list[str]:
        """Remove these objects; returns the names Storage says it removed."""
        headers = {"apikey": self.service_key, "Authorization": f"Bearer {self.service_key}"}
        try:
            response = httpx.request(
                "DELETE",
                f"{self.api_url.rstrip('/')}/storage/v1/object/{BUCKET}",
                json={"prefixes": names},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise PurgeError(f"Storage could not be reached: {exc}") from exc
        if response.status_code >= 400:
            raise PurgeError(f"Storage refused the removal ({response.status_code}): {response.text[:200]}")
        removed: list[Any] = response.json()
        return [str(o["name"]) for o in removed if isinstance(o, dict) and "name" in o]


def find_orphans(conn: psycopg.Connection[Any], grace: float, limit: int = BATCH) -> list[str]:
    rows = conn.execute(ORPHANS_SQL, {"bucket": BUCKET, "grace": grace, "limit": limit}).fetchall()
    conn.commit()
    return [str(r[0]) for r in rows]


def purge_orphans(conn: psycopg.Connection[Any], storage: StorageAdmin, grace: float = DEFAULT_GRACE) -> int:
    """Remove one batch of orphans older than ``grace`` seconds; returns how many went."""
    names = find_orphans(conn, grace)
    if not names:
        return 0
    removed = storage.remove(names)
    log.info("purged %d orphan attachment objects", len(removed))
    if len(removed) < len(names):  # RLS let this key remove less: not the service role key?
        log.warning(
            "Storage removed %d of %d orphan objects; is the key the service role key?", len(removed), len(names)
        )
    return len(removed)

"""Orphan Storage objects: attachment files and avatar pictures nobody names any more.

**Attachments**: files in the `attachments` bucket that no `public.attachments` row names (nor a
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

**Avatars**: pictures in the `avatars` bucket that no `profiles.avatar_url` names (the app deletes the
previous picture when a user replaces or removes theirs, and queues the delete until it succeeds, but a
signed-out or uninstalled app, or a deleted user, leaves them), older than the same grace period (by their
last write: a picture uploaded again, as when a user goes back to an earlier picture, is young again). The
purge runs with the service role's rights, so it must never take a picture a profile still uses, whatever a
user does meanwhile: names are compared exactly (a profile can only name a picture in its own folder,
`avatars/<its id>/<file>`, checked by a trigger, so nobody's profile can keep or release anybody else's
picture), and the candidates are checked again while the profiles of their folders are locked (`for share`)
for the length of the Storage call: a user who points their profile back at a candidate in that moment either
committed first (the re-check keeps the picture) or waits for the purge and is then refused, because a profile
may only name a picture that exists (migration 20261202000100), and uploads it again.

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
AVATARS = "avatars"
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

AVATAR_ORPHANS_SQL = """
select o.name from storage.objects o
where o.bucket_id = 'avatars'
  and greatest(o.created_at, o.updated_at) < now() - make_interval(secs => %(grace)s)
  and not exists (select 1 from public.profiles p where p.avatar_url = 'avatars/' || o.name)
order by o.created_at
limit %(limit)s
"""

# the candidates' folder owners, locked until the Storage call is done (a profile update waits)
LOCK_OWNERS_SQL = """
select p.id from public.profiles p
where p.id = any(select split_part(n, '/', 1)::uuid from unnest(%(names)s::text[]) n
                 where split_part(n, '/', 1) ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
order by p.id
for share
"""

# under those locks: the candidates still named by no profile
STILL_ORPHANS_SQL = """
select n from unnest(%(names)s::text[]) n
where not exists (select 1 from public.profiles p where p.avatar_url = 'avatars/' || n)
"""


class PurgeError(Exception):
    """Storage refused or failed the removal (the objects stay; the next purge tries again)."""


@dataclass(frozen=True)
class StorageAdmin:
    """The Storage API as the service role: only `remove`, the one call the purge needs."""

    api_url: str
    service_key: str
    timeout: float = 30.0

    def remove(self, names: list[str], bucket: str = BUCKET) -> list[str]:
        """Remove these objects (exact names); returns the names Storage says it removed."""
        headers = {"apikey": self.service_key, "Authorization": f"Bearer {self.service_key}"}
        try:
            response = httpx.request(
                "DELETE",
                f"{self.api_url.rstrip('/')}/storage/v1/object/{bucket}",
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
    _check_removed(removed, names)
    return len(removed)


def purge_avatar_orphans(conn: psycopg.Connection[Any], storage: StorageAdmin, grace: float = DEFAULT_GRACE) -> int:
    """Remove one batch of avatar pictures no profile names, older than ``grace`` seconds; returns how many
    went. The candidates' owners' profiles stay locked while Storage removes them (see the module docstring)."""
    candidates = [str(r[0]) for r in conn.execute(AVATAR_ORPHANS_SQL, {"grace": grace, "limit": BATCH}).fetchall()]
    conn.commit()
    if not candidates:
        return 0
    with conn.transaction():
        conn.execute(LOCK_OWNERS_SQL, {"names": candidates})
        names = [str(r[0]) for r in conn.execute(STILL_ORPHANS_SQL, {"names": candidates}).fetchall()]
        removed = storage.remove(names, AVATARS) if names else []
    log.info("purged %d orphan avatar pictures", len(removed))
    _check_removed(removed, names)
    return len(removed)


def _check_removed(removed: list[str], names: list[str]) -> None:
    if len(removed) < len(names):  # RLS let this key remove less: not the service role key?
        log.warning(
            "Storage removed %d of %d orphan objects; is the key the service role key?", len(removed), len(names)
        )

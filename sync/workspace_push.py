"""Push of ``workspace`` outbox entries (issue 14): one row change per request, each harmless when resent.

    insert   a row with a client-made id: upsert-on-id, ignore-duplicates (a resend changes nothing);
             a ticket tag: upsert on (ticket_id, tag_id) clearing removed_at (re-adding after a removal)
    update   PATCH by key; the updated row comes back. None back: if the row is still readable, RLS
             refused the change (42501); if not, it is gone for this user — both refuse the entry
    delete   PATCH by key setting the tombstone column where it is still null (the server stamps the
             time). None back: already removed (a resend after a lost answer) or gone → done; still
             there and live → refused by RLS. Business hours and holidays have no tombstone on the
             server: a DELETE by key; nothing deleted and the row still there → refused

A refused entry leaves the outbox; the cache shows the server's row again (or, for a refused insert,
the user's row marked failed) with the reason, and the user gets a ``workspace_refused`` Notice
(sync/push.py). A refused insert whose row is in fact on the server (an earlier attempt landed, its
answer was lost) is acknowledged instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.decisions import OutboxEntry
from sync.errors import PermanentError
from sync.remote import Remote
from sync.workspace_rows import LOCAL_ONLY, WRITABLE

_LABEL = {
    "tags": "a tag",
    "ticket_tags": "a ticket's tags",
    "canned_replies": "a canned reply",
    "canned_reply_files": "a canned reply's file",
    "macros": "a macro",
    "saved_views": "a saved view",
    "customer_notes": "a customer note",
    "mentions": "a mention",
    "sla_targets": "the SLA targets",
    "sla_settings": "the SLA settings",
    "sla_business_hours": "the business hours",
    "sla_holidays": "the holidays",
}


def _parts(entry: OutboxEntry) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    table = str(entry.payload["table"])
    row = dict(entry.payload["row"])
    key = {k: row[k] for k in WRITABLE[table].key}
    return table, str(entry.payload["op"]), row, key


def label(entry: OutboxEntry) -> str:
    return _LABEL.get(str(entry.payload.get("table")), "a workspace item")


async def send(remote: Remote, entry: OutboxEntry) -> None:
    """Send one entry; raises the sync error tree (PermanentError when the server refused it)."""
    table, op, row, key = _parts(entry)
    spec = WRITABLE[table]
    if op == "insert":
        if table == "ticket_tags":
            await remote.upsert_merge(table, [{**key, "removed_at": None}], "ticket_id,tag_id")
        elif table == "sla_holidays":  # keyed by the day: adding it again names it anew
            await remote.upsert_merge(table, [row], "day")
        else:  # without the columns the server sets itself (a file's type and size)
            local_only = LOCAL_ONLY.get(table, frozenset())
            await remote.insert_ignore(table, [{k: v for k, v in row.items() if k not in local_only}], "id")
        return
    if op == "update":
        changes = {k: v for k, v in row.items() if k not in spec.key}
        if await remote.update_where(table, key, changes):
            return
        if await remote.select_where(table, key):
            raise PermanentError(f"you may not change {label(entry)}", code="42501")
        raise PermanentError(f"{label(entry)} no longer exists or is no longer yours to see", code="42501")
    if spec.hard_delete:
        await _delete(remote, entry, table, key)
        return
    removed = str(spec.removed)
    if await remote.update_where(table, {**key, removed: None}, {removed: "now"}):
        return
    server = await remote.select_where(table, key)
    if server and server[0].get(removed) is None:
        raise PermanentError(f"you may not remove {label(entry)}", code="42501")


async def _delete(remote: Remote, entry: OutboxEntry, table: str, key: dict[str, Any]) -> None:
    if await remote.delete_where(table, key) or not await remote.select_where(table, key):
        return  # deleted now, or already gone (a resend after a lost answer)
    raise PermanentError(f"you may not remove {label(entry)}", code="42501")


async def already_there(remote: Remote, entry: OutboxEntry) -> bool:
    """Whether a refused insert had in fact landed (its row is on the server, live)."""
    table, op, _, key = _parts(entry)
    if op != "insert":
        return False
    rows = await remote.select_where(table, key)
    spec = WRITABLE[table]
    return bool(rows) and (spec.removed is None or spec.hard_delete or rows[0].get(spec.removed) is None)


async def server_row(remote: Remote, entry: OutboxEntry) -> Mapping[str, Any] | None:
    """The row as the server has it now (to show again after a refusal), or None."""
    table, _, _, key = _parts(entry)
    try:
        rows = await remote.select_where(table, key)
    except PermanentError:
        return None
    return rows[0] if rows else None

"""Reads for the customer context panel (issue 14, item 6): a customer's tickets in this cache, newest
activity first (index ``tickets_customer`` on (customer_id, last_message_at)), with the same unread counts
and previews as the inbox. What the panel shows is what RLS let this user pull: an agent sees the customer's
tickets that are theirs or unassigned, an admin all of them; "first seen" comes from the server (the
profile's ``created_at``), not from the tickets this device happens to have."""

from __future__ import annotations

import sqlite3

from sync.cache import reads
from sync.models import Ticket

# the inbox's own row select and mapping (sync/cache/reads.py), so the panel counts and previews alike


def customer_tickets(conn: sqlite3.Connection, me: str, role: str, customer_id: str, limit: int = 50) -> list[Ticket]:
    params = {"me": me, "staff": role in ("agent", "admin"), "customer": customer_id, "limit": max(1, min(limit, 500))}
    page = (
        "select t.rowid as rid from tickets t where t.customer_id = :customer"
        " order by t.last_message_at desc, t.id limit :limit"
    )
    sql = (
        f"with page as materialized ({page}) "
        + reads._TICKET_SELECT.replace("from tickets t\n", "from page p join tickets t on t.rowid = p.rid\n")
        + " order by t.last_message_at desc, t.id"
    )
    return [reads._ticket(r) for r in conn.execute(sql, params)]


def first_seen(conn: sqlite3.Connection, customer_id: str) -> str | None:
    """When the customer was first seen: their profile's creation on the server (pulled with the profile, so it
    holds offline and whatever tickets this device has), or their oldest ticket here if that is earlier or the
    profile has not arrived yet."""
    row = conn.execute(
        "select min(at) from (select created_at as at from profiles where id = :c"
        " union all select min(created_at) from tickets where customer_id = :c)",
        {"c": customer_id},
    ).fetchone()
    return str(row[0]) if row and row[0] else None

"""Reads for the customer context panel (issue 14, item 6): a customer's tickets in this cache, newest
activity first (index ``tickets_customer`` on (customer_id, last_message_at)), with the same unread counts
and previews as the inbox. What the panel shows is what RLS let this user pull: an agent sees the customer's
tickets that are theirs or unassigned, an admin all of them."""

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


def first_ticket_at(conn: sqlite3.Connection, customer_id: str) -> str | None:
    """When the customer's oldest ticket in this cache was opened."""
    row = conn.execute("select min(created_at) from tickets where customer_id = ?", (customer_id,)).fetchone()
    return str(row[0]) if row and row[0] else None

"""Demo data for the throwaway demo stack: one admin, two agents, three customers, and tickets with
a realistic history (days of back-and-forth, internal notes, every status and priority).

Seeded once per database, directly in SQL as the superuser, with triggers off so history can be
back-dated; the columns the triggers would fill (profiles, cursors, last activity) are filled here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import bcrypt
import psycopg
from psycopg.types.json import Jsonb

PASSWORD = "supportchat-demo"
DOMAIN = "demo.supportchat.local"
ACCOUNTS: list[tuple[str, str, str]] = [
    (f"admin@{DOMAIN}", "admin", "Ada Admin"),
    (f"alice@{DOMAIN}", "agent", "Alice Agent"),
    (f"bob@{DOMAIN}", "agent", "Bob Agent"),
    (f"carol@{DOMAIN}", "customer", "Carol Customer"),
    (f"dave@{DOMAIN}", "customer", "Dave Customer"),
    (f"erin@{DOMAIN}", "customer", "Erin Customer"),
]

# (customer, assignee or None, subject, status, priority, [(who, minutes before now, text, internal)])
TICKETS: list[tuple[str, str | None, str, str, str, list[tuple[str, int, str, bool]]]] = [
    (
        "carol",
        "alice",
        "Invoice shows the wrong VAT number",
        "open",
        "high",
        [
            ("carol", 2900, "Hi, our invoice for October shows an old VAT number. Can you fix it?", False),
            ("alice", 2870, "Hi Carol, sorry about that! Which VAT number should it show?", False),
            ("carol", 2860, "It should be DE 811 907 980.", False),
            ("alice", 2855, "Billing changed the template last week, probably the cause.", True),
            ("alice", 2850, "Thanks, I've asked billing to reissue it. You'll get it by tomorrow.", False),
            ("carol", 35, "Still nothing in my inbox, any news?", False),
        ],
    ),
    (
        "carol",
        None,
        "Cannot export reports to CSV",
        "open",
        "normal",
        [
            ("carol", 180, "When I click Export > CSV nothing happens. Chrome 131 on Windows.", False),
            ("carol", 178, "Same with Firefox, so it's not the browser.", False),
        ],
    ),
    (
        "dave",
        "bob",
        "Two-factor codes not arriving",
        "pending",
        "urgent",
        [
            ("dave", 600, "I don't get the SMS codes anymore and I'm locked out.", False),
            ("bob", 590, "Hi Dave, I can switch you to an authenticator app. Shall I?", False),
            ("bob", 585, "Checked the SMS provider dashboard: deliveries to +44 failing since 09:00.", True),
            ("dave", 560, "Yes please, do it.", False),
            ("bob", 540, "Done. Please sign in and scan the QR code, then confirm here.", False),
        ],
    ),
    (
        "dave",
        None,
        "Feature request: dark mode for the mobile app",
        "open",
        "low",
        [
            ("dave", 4300, "Would love a dark mode in the mobile app, the web one is great.", False),
        ],
    ),
    (
        "erin",
        "alice",
        "Refund for duplicate charge",
        "resolved",
        "high",
        [
            ("erin", 10000, "I was charged twice for the annual plan.", False),
            ("alice", 9950, "You're right, I see two charges. Refunding the second one now.", False),
            ("alice", 9945, "Refund id re_3Q9 issued, 5-10 days to show.", True),
            ("erin", 9900, "Thank you, that was fast!", False),
        ],
    ),
    (
        "erin",
        None,
        "How do I add a teammate?",
        "open",
        "normal",
        [
            ("erin", 20, "Where do I invite a colleague to our workspace?", False),
        ],
    ),
    (
        "carol",
        "bob",
        "API rate limit too low for nightly sync",
        "open",
        "normal",
        [
            ("carol", 1500, "Our nightly sync hits 429s around 02:00 UTC. Can we get a higher limit?", False),
            ("bob", 1490, "Checking with the platform team what we can do for your plan.", False),
            ("bob", 1480, "Platform says up to 2x is fine for business plans; waiting for sign-off.", True),
        ],
    ),
    (
        "dave",
        "alice",
        "Account closed by mistake",
        "closed",
        "high",
        [
            ("dave", 20000, "My account says closed but I never asked for that.", False),
            ("alice", 19990, "Restored it, it was flagged by an automated rule. Sorry!", False),
            ("dave", 19980, "All good now, thanks.", False),
        ],
    ),
]


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def seed(db_url: str) -> bool:
    """Insert the demo data unless the database already has users; True when it seeded."""
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn, conn.transaction():
        if conn.execute("select exists(select 1 from auth.users)").fetchone() == (True,):
            return False
        conn.execute("set local session_replication_role = replica")
        password = _hash(PASSWORD)
        ids: dict[str, uuid.UUID] = {}
        for email, role, name in ACCOUNTS:
            uid = uuid.uuid4()
            ids[email.split("@")[0]] = uid
            created = now - timedelta(days=30)
            conn.execute(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password,"
                " email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)"
                " values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, %s,"
                " %s, %s, %s, %s, %s)",
                (
                    uid,
                    email,
                    password,
                    created,
                    Jsonb({"provider": "email", "providers": ["email"], "role": role}),
                    Jsonb({"display_name": name}),
                    created,
                    created,
                ),
            )
            conn.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)"
                " values (%s, %s, %s, 'email', %s, %s)",
                (str(uid), uid, Jsonb({"sub": str(uid), "email": email, "email_verified": True}), created, created),
            )
            conn.execute(
                "insert into public.profiles (id, role, display_name, created_at, updated_at, change_xid, change_id)"
                " values (%s, %s, %s, %s, %s, pg_current_xact_id()::text::bigint, nextval('private.change_seq'))",
                (uid, role, name, created, created),
            )
        for customer, assignee, subject, status, priority, thread in TICKETS:
            ticket_id = uuid.uuid4()
            opened = now - timedelta(minutes=thread[0][1])
            last = now - timedelta(minutes=thread[-1][1])
            first_response = next(
                (
                    now - timedelta(minutes=m)
                    for who, m, _, internal in thread
                    if who in ("alice", "bob", "admin") and not internal
                ),
                None,
            )
            conn.execute(
                "insert into public.tickets (id, customer_id, assignee_id, subject, status, priority, created_at,"
                " updated_at, last_message_at, first_response_at, resolved_at, change_xid, change_id)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " pg_current_xact_id()::text::bigint, nextval('private.change_seq'))",
                (
                    ticket_id,
                    ids[customer],
                    ids[assignee] if assignee else None,
                    subject,
                    status,
                    priority,
                    opened,
                    last,
                    last,
                    first_response,
                    last if status in ("resolved", "closed") else None,
                ),
            )
            for who, minutes, text, internal in thread:
                conn.execute(
                    "insert into public.messages (ticket_id, sender_id, content, is_internal, created_at,"
                    " change_xid, change_id)"
                    " values (%s, %s, %s, %s, %s, pg_current_xact_id()::text::bigint, nextval('private.change_seq'))",
                    (ticket_id, ids[who], text, internal, now - timedelta(minutes=minutes)),
                )
            if status in ("resolved", "closed"):
                conn.execute(
                    "insert into public.ticket_reads (ticket_id, user_id, last_read_at, change_xid, change_id)"
                    " values (%s, %s, %s, pg_current_xact_id()::text::bigint, nextval('private.change_seq'))",
                    (ticket_id, ids[customer], last),
                )
        # the SLA rows the triggers would have kept (off above): the demo's inbox shows its SLA badges
        conn.execute("set local session_replication_role = origin")
        conn.execute("select private.recompute_sla(array(select id from public.tickets))")
    return True

"""Demo data for the throwaway demo stack: one admin, two agents, three customers, tickets with a realistic
history (days of back-and-forth, internal notes, every status and priority), and the desk's shared tools: a few
canned replies (with shortcuts and variables) and macros, so "/" in the composer and the Macros page have
something to show.

Seeded once per database, directly in SQL as the superuser, with triggers off so history can be
back-dated; the columns the triggers would fill (profiles, cursors, last activity) are filled here. The shared
tools need no back-dating: they are written afterwards as the demo admin would write them through the data API
(role ``authenticated`` with the admin's JWT claims and a live session, so RLS and the guard and stamp triggers
apply), in the same transaction, and the session row is removed again.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

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

# the desk's shared canned replies: (title, shortcut, body); variables as the composer's picker fills them
# (supportchat_app/canned.py: known names from the ticket, any other name a fill-in field, `|` a fallback)
CANNED: list[tuple[str, str, str]] = [
    (
        "Greeting",
        "hi",
        "Hi {{customer.first_name|there}}, thanks for reaching out! I'm {{agent.first_name}} and I'll take care of"
        " this for you.",
    ),
    (
        "Ask for details to reproduce",
        "details",
        "Thanks {{customer.first_name|}}! To reproduce this, could you tell us your browser and operating system,"
        " and attach a screenshot of what you see?",
    ),
    (
        "Refund issued",
        "refund",
        "Hi {{customer.first_name|there}}, I've issued a refund of {{amount}} to your original payment method."
        " It usually shows on your statement within 5-10 business days.",
    ),
    (
        "Inviting a teammate",
        "invite",
        "An admin of your workspace can invite a colleague from Settings > Members > Invite: enter their email"
        " and pick a role. They get an email with a link to join.",
    ),
    (
        "Anything else?",
        "bye",
        "Is there anything else I can help you with on ticket #{{ticket.id}}? If not, I'll mark it resolved:"
        " just reply here and it reopens.",
    ),
]

# the desk's tags the macros use: (name, colour)
TAGS: list[tuple[str, str]] = [("billing", "#d97706"), ("waiting on customer", "#64748b")]

# the desk's shared macros: (name, reply or None, actions as the macros table holds them; tag names in
# add_tags / remove_tags stand for their ids)
MACROS: list[tuple[str, str | None, dict[str, Any]]] = [
    (
        "Close as resolved",
        "Glad we could sort this out, {{customer.first_name|}}! I'm marking this ticket resolved; just reply here"
        " if anything else comes up.",
        {"status": "resolved", "remove_tags": ["waiting on customer"]},
    ),
    (
        "Escalate to billing",
        "Thanks {{customer.first_name|}}, I've passed this to our billing team, who will get back to you here"
        " within one business day.",
        {"priority": "high", "add_tags": ["billing"], "assignee": "none"},
    ),
    (
        "Waiting on customer",
        None,
        {"status": "pending", "assignee": "me", "add_tags": ["waiting on customer"]},
    ),
]


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def seed(db_url: str) -> bool:
    """Insert the demo data unless the database already has users; True when it seeded. A demo database seeded
    before the desk's shared tools were part of the demo gets them once (``_tools_for_older``)."""
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn, conn.transaction():
        if conn.execute("select exists(select 1 from auth.users)").fetchone() == (True,):
            _tools_for_older(conn)
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
        _shared_tools(conn, ids["admin"])
    return True


def _shared_tools(conn: psycopg.Connection[tuple[object, ...]], admin: uuid.UUID) -> None:
    """The shared tags, canned replies and macros, written as the demo admin through the data API would: as
    ``authenticated`` with the admin's claims and a live session (removed afterwards), under RLS and triggers."""
    session = uuid.uuid4()
    conn.execute("insert into auth.sessions (id, user_id, aal) values (%s, %s, 'aal1')", (session, admin))
    claims = {"sub": str(admin), "role": "authenticated", "aal": "aal1", "session_id": str(session)}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
    conn.execute("set local role authenticated")
    tag_ids: dict[str, str] = {}
    for name, color in TAGS:
        row = conn.execute("insert into public.tags (name, color) values (%s, %s) returning id", (name, color))
        tag_ids[name] = str(_one(row.fetchone()))
    for title, shortcut, body in CANNED:
        conn.execute(
            "insert into public.canned_replies (owner_id, title, shortcut, body) values (null, %s, %s, %s)",
            (title, shortcut, body),
        )
    for name, reply, actions in MACROS:
        stored = {key: [tag_ids[t] for t in v] if key.endswith("_tags") else v for key, v in actions.items()}
        conn.execute(
            "insert into public.macros (owner_id, name, reply, actions) values (null, %s, %s, %s)",
            (name, reply, Jsonb(stored)),
        )
    conn.execute("reset role")
    conn.execute("select set_config('request.jwt.claims', '', true)")
    conn.execute("delete from auth.sessions where id = %s", (session,))


def _tools_for_older(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The shared tools for a demo database seeded before they were (the app's demo data dir outlives upgrades):
    written once, when the demo admin is there and the desk has no canned reply, macro or tag at all (removing one
    leaves its tombstone, so a desk whose tools were removed is never refilled). Refused (the demo admin no longer
    an admin, say): logged, and the demo starts without them."""
    row = conn.execute(
        "select id from auth.users where email = %s and not exists (select 1 from public.canned_replies)"
        " and not exists (select 1 from public.macros) and not exists (select 1 from public.tags)",
        (ACCOUNTS[0][0],),
    ).fetchone()
    if row is None:
        return
    try:
        with conn.transaction():
            _shared_tools(conn, uuid.UUID(str(row[0])))
    except psycopg.Error as exc:
        log.warning("the demo's canned replies and macros were not added: %s", exc)


def _one(row: tuple[object, ...] | None) -> object:
    if row is None:
        raise RuntimeError("an insert returned no row")
    return row[0]

"""A reproducible support desk at scale, loaded into a localbase stack through COPY.

`generate(size, seed)` is deterministic (one `random.Random(seed)`, no clock): the same seed gives the same
users, tickets, messages and read markers, byte for byte, so two runs of a benchmark measure the same data.
`load(db_url, desk)` writes it as the superuser (`supabase_admin`, the stack's `db_url`) with psycopg's COPY:

- `auth.users` and `auth.identities` as GoTrue stores them (one bcrypt hash of `tests.conftest.PASSWORD` for
  everyone, so any generated user can sign in); the `on_auth_user_created` trigger makes the profiles, as
  on Supabase, so users go in with triggers on.
- tickets, messages and read markers with `session_replication_role = replica` (triggers off, as
  localbase/demo.py and bench/sync.py seed), stamped the way the triggers would: `change_xid` = the loading
  transaction, `change_id` = a block reserved from `private.change_seq`, tickets' `last_message_at` /
  `first_response_at` / `resolved_at` consistent with their messages.

Shape of the desk (`FULL`): 50 agents and one admin, 5,000 customers, 100,000 tickets over three years
(newest ones open/pending, older ones resolved/closed; 5 % of the open ones unassigned), 1,000,000 messages
(1 to 60 per ticket, skewed short; customer and staff alternate with runs, 7 % internal notes by staff; message
length log-normal, median 80 characters, 1 to 4,000, words drawn Zipf-like from a fixed vocabulary, so
full-text search has common and rare terms), and a read marker for the customer and the assignee of most
tickets. `SMALL` is the same shape for tests.

Why hand-written rather than Faker/mimesis: those generate one value per call through Python objects, which
is minutes for a million messages; slicing a seeded word stream gives realistic lengths and vocabulary at
a few seconds per million, and COPY text is written in large chunks.
"""

from __future__ import annotations

import io
import math
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import bcrypt
import psycopg

from tests.conftest import PASSWORD


@dataclass(frozen=True)
class Size:
    agents: int
    customers: int
    tickets: int
    messages: int


FULL = Size(agents=50, customers=5_000, tickets=100_000, messages=1_000_000)
SMALL = Size(agents=5, customers=50, tickets=1_000, messages=10_000)

EPOCH = datetime(2026, 11, 1, tzinfo=UTC)  # "now" of the generated desk: fixed, so the data is reproducible
SPAN = timedelta(days=3 * 365)
INSTANCE = "00000000-0000-0000-0000-000000000000"
WORDS = (
    "the a to and i you is it my of for in on this that we can not with have be your please thanks hi hello "
    "order account invoice refund payment card login password reset email app update version error crash "
    "screen button settings sync offline message ticket support help issue problem works again still today "
    "yesterday tomorrow week customer agent team billing plan upgrade downgrade cancel subscription trial "
    "export import file attachment upload download report dashboard browser windows mac linux android iphone "
    "notification delay slow fast timeout network server database backup restore delete archive search "
    "filter label priority urgent normal low high status open pending resolved closed assign escalate "
    "sorry understand check looking into fixed deployed workaround confirm screenshot logs details steps "
    "reproduce expected actual happened since after before when why how what which could would should "
    "shipping tracking address delivery package warehouse return exchange discount coupon tax receipt "
    "xylophone quasar zeppelin"  # rare terms: a search bench can ask for something with few hits
).split()


@dataclass
class Desk:
    """The generated rows (as COPY text lines) and the handles benchmarks need."""

    size: Size
    seed: int
    admin: str = ""
    agents: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    users: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, email, role, name)
    tickets: list[str] = field(default_factory=list)  # ids, oldest first
    ticket_rows: list[tuple[str, ...]] = field(default_factory=list)
    message_chunks: list[str] = field(default_factory=list)
    read_rows: list[tuple[str, str, str]] = field(default_factory=list)
    messages: int = 0
    internal: int = 0
    text_bytes: int = 0  # UTF-8 bytes of all message contents: the "raw text" a cache is compared with

    def email(self, user_id: str) -> str:
        return next(email for uid, email, _, _ in self.users if uid == user_id)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ts(at: datetime) -> str:
    return at.isoformat()


def _corpus(rng: random.Random, words: int) -> str:
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(WORDS))]  # Zipf-like: "the" often, "zeppelin" rarely
    return " ".join(rng.choices(WORDS, weights, k=words))


def generate(size: Size = FULL, seed: int = 15) -> Desk:
    rng = random.Random(seed)
    desk = Desk(size, seed)
    desk.admin = _uuid(rng)
    desk.users.append((desk.admin, f"admin-{seed}@desk.supportchat.local", "admin", "Desk Admin"))
    for i in range(size.agents):
        uid = _uuid(rng)
        desk.agents.append(uid)
        desk.users.append((uid, f"agent{i:03d}-{seed}@desk.supportchat.local", "agent", f"Agent {i:03d}"))
    for i in range(size.customers):
        uid = _uuid(rng)
        desk.customers.append(uid)
        desk.users.append((uid, f"customer{i:05d}-{seed}@desk.supportchat.local", "customer", f"Customer {i:05d}"))

    corpus = _corpus(rng, 600_000)
    limit = len(corpus) - 4_100
    # messages per ticket: skewed short, mean = messages / tickets, at least one, at most 60
    mean = size.messages / size.tickets
    counts = [max(1, min(60, int(rng.expovariate(1 / mean)) + 1)) for _ in range(size.tickets)]
    drift = size.messages - sum(counts)  # nudge to the exact total, spread over the tickets
    step = 1 if drift > 0 else -1
    i = 0
    while drift:
        t = i % size.tickets
        if 1 <= counts[t] + step <= 60:
            counts[t] += step
            drift -= step
        i += 1

    chunk = io.StringIO()
    per_chunk = 0
    start = EPOCH - SPAN
    for t, count in enumerate(counts):
        tid = _uuid(rng)
        desk.tickets.append(tid)
        age = t / size.tickets  # later tickets are newer
        created = start + SPAN * age + timedelta(seconds=rng.uniform(0, 3600))
        customer = desk.customers[
            min(size.customers - 1, int(rng.paretovariate(1.2)) - 1)
            if rng.random() < 0.3
            else rng.randrange(size.customers)
        ]
        recent = age > 0.97
        status = rng.choice(("open", "open", "pending")) if recent else rng.choice(("resolved", "closed", "closed"))
        assignee = "" if recent and rng.random() < 0.05 else rng.choice(desk.agents)
        staff = assignee or desk.admin
        priority = rng.choices(("low", "normal", "high", "urgent"), (2, 6, 2, 1))[0]
        subject = corpus[(o := rng.randrange(limit)) : o + rng.randint(12, 60)].strip() or "help"
        at = created
        first_response = ""
        customer_turn = True
        for _ in range(count):
            at += timedelta(seconds=rng.expovariate(1 / 1800) + 1e-3)
            if rng.random() < 0.3:
                customer_turn = not customer_turn
            internal = not customer_turn and rng.random() < 0.07
            sender = customer if customer_turn and not internal else staff
            length = max(1, min(4_000, int(rng.lognormvariate(math.log(80), 0.9))))
            offset = rng.randrange(limit)
            content = corpus[offset : offset + length].strip() or "ok"
            if sender == staff and not internal and not first_response:
                first_response = _ts(at)
            chunk.write(f"{_uuid(rng)}\t{tid}\t{sender}\t{content}\t{'t' if internal else 'f'}\t{_ts(at)}\n")
            desk.messages += 1
            desk.internal += internal
            desk.text_bytes += len(content)  # the vocabulary is ASCII
            per_chunk += 1
            customer_turn = not customer_turn
        if per_chunk >= 20_000:
            desk.message_chunks.append(chunk.getvalue())
            chunk = io.StringIO()
            per_chunk = 0
        resolved = _ts(at + timedelta(hours=1)) if status in ("resolved", "closed") else ""
        desk.ticket_rows.append(
            (
                tid,
                customer,
                assignee,
                subject,
                status,
                priority,
                _ts(created),
                _ts(at),
                _ts(at),
                first_response,
                resolved,
            )
        )
        if rng.random() < 0.9:
            desk.read_rows.append((tid, customer, _ts(at if rng.random() < 0.8 else created)))
        if assignee and rng.random() < 0.9:
            desk.read_rows.append((tid, assignee, _ts(at if status != "open" or rng.random() < 0.5 else created)))
    desk.message_chunks.append(chunk.getvalue())
    return desk


def _null(value: str) -> str:
    return value if value else "\\N"


def _reserve(conn: psycopg.Connection, count: int) -> Iterator[int]:
    """A block of `count` values of private.change_seq, as the stamp trigger would have taken them."""
    row = conn.execute("select nextval('private.change_seq')").fetchone()
    assert row is not None
    first = int(row[0])
    conn.execute("select setval('private.change_seq', %s)", (first + count,))
    return iter(range(first, first + count + 1))


def load(db_url: str, desk: Desk) -> dict[str, float]:
    """COPY the desk into the stack's database in one transaction; returns seconds per phase."""
    timings: dict[str, float] = {}
    password = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    with psycopg.connect(db_url) as conn, conn.transaction():
        started = time.perf_counter()
        with conn.cursor().copy(
            "copy auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
            " raw_app_meta_data, raw_user_meta_data, created_at, updated_at) from stdin"
        ) as copy:
            for uid, email, role, name in desk.users:
                copy.write_row(
                    (
                        INSTANCE,
                        uid,
                        "authenticated",
                        "authenticated",
                        email,
                        password,
                        EPOCH - SPAN,
                        f'{{"provider": "email", "providers": ["email"], "role": "{role}"}}',
                        f'{{"display_name": "{name}"}}',
                        EPOCH - SPAN,
                        EPOCH - SPAN,
                    )
                )
        with conn.cursor().copy(
            "copy auth.identities (provider_id, user_id, identity_data, provider) from stdin"
        ) as copy:
            for uid, email, _, _ in desk.users:
                copy.write_row((uid, uid, f'{{"sub": "{uid}", "email": "{email}", "email_verified": true}}', "email"))
        timings["users"] = time.perf_counter() - started

        conn.execute("set local session_replication_role = replica")  # triggers off: we stamp what they would
        row = conn.execute("select pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        xid = int(row[0])
        stamps = _reserve(conn, len(desk.ticket_rows) + desk.messages + len(desk.read_rows))

        started = time.perf_counter()
        with conn.cursor().copy(
            "copy public.tickets (id, customer_id, assignee_id, subject, status, priority, created_at,"
            " updated_at, last_message_at, first_response_at, resolved_at, change_xid, change_id) from stdin"
        ) as copy:
            buf = io.StringIO()
            for (
                tid,
                customer,
                assignee,
                subject,
                status,
                priority,
                created,
                updated,
                last,
                first,
                resolved,
            ) in desk.ticket_rows:
                buf.write(
                    f"{tid}\t{customer}\t{_null(assignee)}\t{subject}\t{status}\t{priority}\t{created}\t"
                    f"{updated}\t{last}\t{_null(first)}\t{_null(resolved)}\t{xid}\t{next(stamps)}\n"
                )
            copy.write(buf.getvalue())
        timings["tickets"] = time.perf_counter() - started

        started = time.perf_counter()
        with conn.cursor().copy(
            "copy public.messages (id, ticket_id, sender_id, content, is_internal, created_at,"
            " change_xid, change_id) from stdin"
        ) as copy:
            for text in desk.message_chunks:
                stamped = io.StringIO()
                for line in text.splitlines():
                    stamped.write(f"{line}\t{xid}\t{next(stamps)}\n")
                copy.write(stamped.getvalue())
        timings["messages"] = time.perf_counter() - started

        started = time.perf_counter()
        with conn.cursor().copy(
            "copy public.ticket_reads (ticket_id, user_id, last_read_at, change_xid, change_id) from stdin"
        ) as copy:
            buf = io.StringIO()
            for tid, uid, at in desk.read_rows:
                buf.write(f"{tid}\t{uid}\t{at}\t{xid}\t{next(stamps)}\n")
            copy.write(buf.getvalue())
        timings["reads"] = time.perf_counter() - started
    with psycopg.connect(db_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("analyze public.tickets, public.messages, public.ticket_reads, public.profiles")
        timings["analyze"] = time.perf_counter() - started
    return timings


def main() -> None:
    """`python -m bench.dataset [small]`: generate and time the desk (no stack needed)."""
    import sys

    size = SMALL if sys.argv[1:] == ["small"] else FULL
    started = time.perf_counter()
    desk = generate(size)
    print(
        f"generated {desk.messages} messages ({desk.internal} internal, {desk.text_bytes / 1e6:.1f} MB text),"
        f" {len(desk.tickets)} tickets, {len(desk.read_rows)} read markers in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()

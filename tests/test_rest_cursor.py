"""The change cursor under concurrent writers, pulled through /rest/v1/rpc/sync_messages.

Writers are plain PostgreSQL transactions that overlap, stay open (pg_sleep or a held event),
commit out of order, and sometimes roll back. A reader pulls with its cursor (after_xid, after_id)
through the official client the whole time. It must end with every committed row exactly once and
no rolled-back row. The same scripted interleaving run against a cursor WITHOUT the horizon
condition, and against a sequence-only cursor, skips a row — proof that the test has teeth.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import psycopg
import pytest
from supabase import Client

from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

NAIVE_SQL = """
-- sync_messages exactly, minus the horizon condition
create or replace function public.rest_test_sync_no_horizon(after_xid bigint, after_id bigint, max_rows int)
returns setof public.messages language sql stable as $$
  select * from public.messages r
  where (r.change_xid, r.change_id) > (after_xid, after_id)
  order by r.change_xid, r.change_id limit max_rows $$;
-- the seed's idea: one sequence as the cursor
create or replace function public.rest_test_sync_sequence(after_id bigint, max_rows int)
returns setof public.messages language sql stable as $$
  select * from public.messages r where r.change_id > after_id order by r.change_id limit max_rows $$;
grant execute on function public.rest_test_sync_no_horizon(bigint, bigint, int),
  public.rest_test_sync_sequence(bigint, int) to authenticated;
"""


class Puller:
    """A client-side cursor over one of the pull functions, as the sync engine keeps it."""

    def __init__(self, client: Client, kind: str, tickets: set[str], page: int = 4) -> None:
        self.client = client
        self.kind = kind
        self.tickets = tickets
        self.page = page
        self.xid = 0
        self.id = 0
        self.seen: list[str] = []

    def pull_once(self) -> int:
        """One page; returns how many rows came back."""
        if self.kind == "sequence":
            rows = (
                self.client.rpc("rest_test_sync_sequence", {"after_id": self.id, "max_rows": self.page}).execute().data
            )
        else:
            fn = "sync_messages" if self.kind == "horizon" else "rest_test_sync_no_horizon"
            rows = (
                self.client.rpc(fn, {"after_xid": self.xid, "after_id": self.id, "max_rows": self.page}).execute().data
            )
        for row in rows:
            self.xid, self.id = int(row["change_xid"]), int(row["change_id"])
            if row["ticket_id"] in self.tickets:
                self.seen.append(str(row["id"]))
        return len(rows)

    def drain(self) -> None:
        while self.pull_once() == self.page:
            pass


@pytest.fixture(scope="module")
def customer(stack: StackProcess) -> User:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(NAIVE_SQL)
    return create_user(stack.db_url, "customer")


def new_tickets(db_url: str, owner: User, n: int) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return [
            str(
                conn.execute(
                    "insert into public.tickets (customer_id, subject) values (%s, %s) returning id",
                    (owner.id, f"cursor {i}"),
                ).fetchone()[0]
            )
            for i in range(n)
        ]  # type: ignore[index]


def begin_insert(db_url: str, owner: User, ticket: str, count: int = 1) -> tuple[psycopg.Connection, list[str]]:
    """An open transaction that has written `count` messages (each writer its own ticket, so no row locks
    are shared through the ticket-activity trigger)."""
    conn = psycopg.connect(db_url)
    ids = []
    for _ in range(count):
        mid = str(uuid.uuid4())
        conn.execute(
            "insert into public.messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
            (mid, ticket, owner.id, "concurrent"),
        )
        ids.append(mid)
    return conn, ids


@pytest.mark.parametrize(("kind", "skips"), [("horizon", False), ("no_horizon", True), ("sequence", True)])
def test_scripted_out_of_order_commit(
    stack: StackProcess, customer: User, clients: ClientFactory, kind: str, skips: bool
) -> None:
    """A writes first and commits last; B commits in between; C rolls back."""
    t_a, t_b, t_c = new_tickets(stack.db_url, customer, 3)
    reader = Puller(clients(stack.mint(sub=customer.id)), kind, {t_a, t_b, t_c})
    reader.drain()
    a, a_ids = begin_insert(stack.db_url, customer, t_a)
    b, b_ids = begin_insert(stack.db_url, customer, t_b)
    b.commit()
    reader.drain()  # B is committed, A still open
    c, _c_ids = begin_insert(stack.db_url, customer, t_c)
    reader.drain()
    c.rollback()
    a.commit()
    reader.drain()
    for conn in (a, b, c):
        conn.close()
    committed = set(a_ids + b_ids)
    if skips:
        assert set(reader.seen) == set(b_ids), "a cursor without the horizon must skip A's late commit"
    else:
        assert sorted(reader.seen) == sorted(committed)
        assert len(reader.seen) == len(set(reader.seen))


def test_concurrent_writers_every_committed_row_exactly_once(
    stack: StackProcess, customer: User, clients: ClientFactory
) -> None:
    writers, per_writer = 4, 6
    tickets = new_tickets(stack.db_url, customer, writers)
    committed: set[str] = set()
    rolled_back: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def write(ticket: str, seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with psycopg.connect(stack.db_url) as conn:
                for i in range(per_writer):
                    ids = []
                    for _ in range(rnd.randint(1, 3)):
                        mid = str(uuid.uuid4())
                        conn.execute(
                            "insert into public.messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
                            (mid, ticket, customer.id, f"w{seed}-{i}"),
                        )
                        ids.append(mid)
                    conn.execute("select pg_sleep(%s)", (rnd.uniform(0, 0.25),))  # held open while others commit
                    if i % 4 == 3:
                        conn.rollback()
                        with lock:
                            rolled_back.update(ids)
                    else:
                        conn.commit()
                        with lock:
                            committed.update(ids)
                    time.sleep(rnd.uniform(0, 0.05))
        except BaseException as exc:
            failures.append(exc)

    reader = Puller(clients(stack.mint(sub=customer.id)), "horizon", set(tickets), page=5)
    held_back: list[int] = []

    def read() -> None:
        try:
            while not done.is_set():
                reader.pull_once()
                with lock:
                    held_back.append(len(committed) - len(set(reader.seen) & committed))
                time.sleep(0.01)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(t, n)) for n, t in enumerate(tickets)]
    reading = threading.Thread(target=read)
    reading.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    reading.join(timeout=60)
    assert not failures, failures
    reader.drain()
    assert len(reader.seen) == len(set(reader.seen)), "a row came twice"
    assert set(reader.seen) == committed
    assert not (set(reader.seen) & rolled_back)
    assert rolled_back, "the workload must include rollbacks"
    assert len(committed) >= writers * per_writer // 2


def test_a_long_transaction_delays_but_never_loses(stack: StackProcess, customer: User, clients: ClientFactory) -> None:
    """Rows committed after a long-open transaction began stay invisible to pulls until it ends."""
    t_long, t_quick = new_tickets(stack.db_url, customer, 2)
    reader = Puller(clients(stack.mint(sub=customer.id)), "horizon", {t_long, t_quick})
    reader.drain()
    long_conn, long_ids = begin_insert(stack.db_url, customer, t_long, count=2)
    quick_ids: list[str] = []
    for _ in range(3):
        conn, ids = begin_insert(stack.db_url, customer, t_quick)
        conn.commit()
        conn.close()
        quick_ids += ids
    reader.drain()
    assert reader.seen == []  # held behind the open transaction
    long_conn.commit()
    long_conn.close()
    reader.drain()
    assert sorted(reader.seen) == sorted(long_ids + quick_ids)

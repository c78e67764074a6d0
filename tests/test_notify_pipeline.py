"""The worker's claim-ahead pipeline (notify/worker.py `run`): while one batch goes out over SMTP, the next
is claimed and composed on a second connection under the same token. Against a real localbase and the
SMTP sink: every mail still goes exactly once, and a worker that is stopped hands back the batch it had
claimed ahead at once (not only when its lock drops), so another worker can send it without waiting."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from notify.worker import Settings, Worker
from tests.conftest import create_user
from tests.realtime.support import new_ticket, post
from tests.smtpsink import Sink, running_sink
from tests.stackproc import StackProcess
from tests.test_notify import settled, states, wait_for, worker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Sink, str]]:
    with running_sink() as pair:
        yield pair


def test_a_stopped_worker_hands_back_what_it_claimed_ahead(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer = create_user(stack.db_url, "customer", "Cus pipeline")
    agent = create_user(stack.db_url, "agent", "Agent pipeline")
    tickets = [new_ticket(stack.db_url, customer, agent, f"Pipeline {i}") for i in range(24)]
    for t in tickets:
        post(stack.db_url, agent, t, f"reply on {t}")
    sink.slow = 0.05  # slow replies: the stop lands while a batch is out and the next one is claimed ahead
    w = Worker(
        Settings(
            db_url=stack.db_url,
            smtp_url=url,
            from_address="help@example.test",
            delay=0.0,
            poll=0.05,
            batch=4,
            connections=2,
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=w.run, args=(stop,), daemon=True)
    try:
        thread.start()
        wait_for(lambda: len(sink.to(customer.email)) >= 2, "the first mails")
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
        with psycopg.connect(stack.db_url) as conn:
            held = conn.execute(
                "select count(*) from public.notifications where claimed_by = %s", (w.queue.token,)
            ).fetchone()
        assert held == (0,), "nothing stays claimed by a worker that stopped (still connected)"
        assert "queued" in states(stack.db_url, tickets, customer), "stopped before the end: some are left"
    finally:
        sink.slow = 0.0
        stop.set()
        w.close()
    with worker(stack, url, delay=0.0):
        wait_for(settled(stack.db_url, tickets, customer, len(tickets)), "every notification settled")
    per_ticket = Counter(m.message["X-SupportChat-Ticket"] for m in sink.to(customer.email))
    assert per_ticket == Counter(dict.fromkeys(tickets, 1))

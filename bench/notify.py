"""Notification worker benchmark: mails per second from a queued outbox into a real SMTP server.

notify_worker  10,000 notifications queued (100 customers x 100 tickets, one unread agent reply each,
               so 10,000 mails), drained by one `notify.worker.Worker` (claim in batches of 100,
               read check, compose, DATA, commit `delivering`, ".", batch `sent` marks) into an
               aiosmtpd server on a thread of this process. Baseline: the same 10,000 mails (the bytes
               the worker produced) sent by a plain `smtplib` loop over one connection — no database,
               no composing, no bookkeeping — into the same server. Ratio = worker / plain loop.
"""

from __future__ import annotations

import smtplib
import time
from urllib.parse import urlsplit

import psycopg

from bench.harness import BenchEnv, Figure, figure
from notify.worker import Settings, Worker
from tests.conftest import create_user
from tests.smtpsink import running_sink

CUSTOMERS = 100
TICKETS_EACH = 100


def _seed(env: BenchEnv) -> int:
    """Queue CUSTOMERS x TICKETS_EACH notifications through the real trigger; returns how many."""
    agent = create_user(env.stack.db_url, "agent", "Bench Agent")
    customers = [create_user(env.stack.db_url, "customer", f"Bench Customer {i}") for i in range(CUSTOMERS)]
    with psycopg.connect(env.stack.db_url) as conn, conn.transaction():
        # nothing else in the queue, so the figure is this batch alone
        conn.execute("update public.notifications set state = 'skipped', note = 'bench reset'"
                     " where state in ('queued', 'claimed', 'delivering')")
        conn.execute(
            "insert into public.tickets (customer_id, assignee_id, subject)"
            " select c, %s, 'Bench ticket ' || g from unnest(%s::uuid[]) c, generate_series(1, %s) g",
            (agent.id, [c.id for c in customers], TICKETS_EACH))
        conn.execute(
            "insert into public.messages (ticket_id, sender_id, content)"
            " select t.id, %s, 'Thanks for waiting — the fix for ' || t.subject || ' is rolling out tonight.'"
            " from public.tickets t where t.assignee_id = %s", (agent.id, agent.id))
        row = conn.execute("select count(*) from public.notifications where state = 'queued'").fetchone()
    assert row is not None
    return int(row[0])


def _notify_worker(env: BenchEnv) -> list[Figure]:
    queued = _seed(env)
    with running_sink() as (sink, url):
        worker = Worker(Settings(db_url=env.stack.db_url, smtp_url=url, from_address="help@example.test",
                                 delay=0.0, poll=0.01, batch=100))
        started = time.perf_counter()
        try:
            stats = worker.run(once=True)
        finally:
            worker.close()
        worker_s = time.perf_counter() - started
        mails = list(sink.mails)
        assert stats.mails == queued == len(mails), (stats, queued, len(mails))
        sink.mails.clear()

        parts = urlsplit(url)
        started = time.perf_counter()
        with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25) as smtp:
            for mail in mails:
                smtp.sendmail(mail.sender, mail.recipients, mail.raw)
        plain_s = time.perf_counter() - started
        assert len(sink.mails) == len(mails)
    return [figure("notify_worker", len(mails) / worker_s, "mails/s", "plain smtplib loop, same mails",
                   len(mails) / plain_s, higher_is_better=True, mails=len(mails), goal="ratio >= 0.8")]


BENCHES = {"notify_worker": _notify_worker}

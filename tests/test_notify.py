"""The notification worker against a real localbase and a real SMTP server in this process (issue 13).

Each test makes its own customer and agent, so the mails it looks at are its own; the worker drains
everything that is due in the shared database (other tests' replies included), like a real one would.
Waits are on conditions (rows reaching a state, mails arriving), never on sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from notify.worker import Settings, Worker
from tests.conftest import User, create_user
from tests.realtime.support import as_user, new_ticket, post
from tests.smtpsink import Sink, running_sink
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Sink, str]]:
    with running_sink() as pair:
        yield pair


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def states(db_url: str, ticket_ids: list[str], recipient: User) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select state from public.notifications where ticket_id = any(%s::uuid[]) and recipient_id = %s"
                " order by id",
                (ticket_ids, recipient.id),
            ).fetchall()
        ]


def settled(db_url: str, ticket_ids: list[str], recipient: User, count: int) -> Callable[[], bool]:
    def check() -> bool:
        got = states(db_url, ticket_ids, recipient)
        return len(got) == count and all(s in ("sent", "skipped", "failed") for s in got)

    return check


def new_worker(stack: StackProcess, smtp_url: str, **overrides: Any) -> Worker:
    options: dict[str, Any] = {"delay": 2.0, "poll": 0.05, "retry_base": 0.2, **overrides}
    return Worker(
        Settings(
            db_url=stack.db_url,
            smtp_url=smtp_url,
            from_address="help@example.test",
            app_url="http://app.example.test:8080",
            **options,
        )
    )


@contextmanager
def worker(stack: StackProcess, smtp_url: str, **overrides: Any) -> Iterator[Worker]:
    w = new_worker(stack, smtp_url, **overrides)
    stop = threading.Event()
    thread = threading.Thread(target=w.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield w
    finally:
        stop.set()
        thread.join(30)
        w.close()
    assert not thread.is_alive()


def pair(stack: StackProcess, name: str) -> tuple[User, User, str]:
    customer = create_user(stack.db_url, "customer", f"Cus {name}")
    agent = create_user(stack.db_url, "agent", f"Agent {name}")
    return customer, agent, new_ticket(stack.db_url, customer, agent, f"Subject {name}")


def read_now(stack: StackProcess, user: User, ticket: str) -> None:
    as_user(
        stack.db_url,
        user,
        "insert into public.ticket_reads (ticket_id) values (%s)"
        " on conflict (ticket_id, user_id) do update set last_read_at = now()",
        (ticket,),
    )


def test_three_quick_replies_make_one_mail(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer, agent, ticket = pair(stack, "three")
    post(stack.db_url, customer, ticket, "My <b>printer</b> is on fire")
    with worker(stack, url):
        for text in ("Reply one: unplug it", "Reply two: get the extinguisher", "Reply three: call us back"):
            post(stack.db_url, agent, ticket, text)
        wait_for(settled(stack.db_url, [ticket], customer, 3), "three notifications sent")
    mails = sink.to(customer.email)
    assert len(mails) == 1
    mail = mails[0]
    msg = mail.message
    assert msg["From"].addresses[0].display_name == "Agent three via SupportChat"
    assert msg["From"].addresses[0].addr_spec == "help@example.test"
    assert msg["Subject"] == "Re: Subject three" and msg["X-SupportChat-Ticket"] == ticket
    text, html = mail.text(), mail.html()
    for part in (text, html):
        assert "Reply one" in part and "Reply two" in part and "Reply three" in part
        assert f"http://app.example.test:8080/?t={ticket}" in part
    assert text.index("Reply one") < text.index("Reply two") < text.index("Reply three")
    assert "My <b>printer</b> is on fire" in text  # the thread's earlier message, as context
    assert "My &lt;b&gt;printer&lt;/b&gt;" in html and "<b>printer</b>" not in html  # escaped in HTML
    # the agent was mailed about the customer's message too (assigned ticket, unread)
    assert [m.message["X-SupportChat-Ticket"] for m in sink.to(agent.email)] == [ticket]


def test_no_mail_when_the_customer_read_within_the_delay(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer, agent, ticket = pair(stack, "read")
    with worker(stack, url, delay=3.0):
        post(stack.db_url, agent, ticket, "Seen in the app already")
        post(stack.db_url, agent, ticket, "And this one too")
        read_now(stack, customer, ticket)
        wait_for(settled(stack.db_url, [ticket], customer, 2), "both notifications settled")
        assert states(stack.db_url, [ticket], customer) == ["skipped", "skipped"]
        # a later reply, left unread, is mailed alone
        post(stack.db_url, agent, ticket, "This one was never read")
        wait_for(settled(stack.db_url, [ticket], customer, 3), "the third notification settled")
    mails = sink.to(customer.email)
    assert len(mails) == 1
    assert "This one was never read" in mails[0].text() and "Seen in the app already" in mails[0].text()
    assert "Seen in the app already" not in mails[0].text().split("This one was never read")[0].split(":", 1)[0]


def test_internal_notes_are_never_mailed(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer, agent, ticket = pair(stack, "internal")
    post(stack.db_url, agent, ticket, "customer seems upset, go gently", internal=True)
    assert states(stack.db_url, [ticket], customer) == []
    with worker(stack, url):
        post(stack.db_url, agent, ticket, "Happy to help!")
        wait_for(settled(stack.db_url, [ticket], customer, 1), "the reply's notification settled")
    mails = sink.to(customer.email)
    assert len(mails) == 1
    assert "Happy to help!" in mails[0].text()
    assert "upset" not in mails[0].text() + mails[0].html()


def test_smtp_4xx_is_retried_with_backoff(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer, agent, ticket = pair(stack, "retry")
    sink.refuse[customer.email] = 2
    with worker(stack, url, delay=0.5):
        post(stack.db_url, agent, ticket, "Sent after two refusals")
        wait_for(settled(stack.db_url, [ticket], customer, 1), "the notification settled")
    assert sink.attempts[customer.email] == 3
    assert len(sink.to(customer.email)) == 1
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute(
            "select state, attempts, note from public.notifications where ticket_id = %s and recipient_id = %s",
            (ticket, customer.id),
        ).fetchone()
    assert row is not None and row[0] == "sent" and row[1] == 3 and "451" in row[2]


def test_preferences_are_honoured(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    never, a_never, t_never = pair(stack, "never")
    always, a_always, t_always = pair(stack, "always")
    patient, a_patient, t_patient = pair(stack, "patient")
    sentinel, a_sentinel, t_sentinel = pair(stack, "sentinel")
    for user, pref in (
        (never, {"email": "never"}),
        (always, {"email": "always"}),
        (patient, {"email": "unread", "unread_after_minutes": 60}),
    ):
        cols = ", ".join(pref)
        as_user(
            stack.db_url,
            user,
            f"insert into public.notification_preferences ({cols}) values ({', '.join(['%s'] * len(pref))})",
            tuple(pref.values()),
        )
    with worker(stack, url, delay=1.0):
        post(stack.db_url, a_never, t_never, "never mail me")
        post(stack.db_url, a_patient, t_patient, "wait an hour for me")
        post(stack.db_url, a_always, t_always, "mail me even if I read it")
        read_now(stack, always, t_always)
        post(stack.db_url, a_sentinel, t_sentinel, "sentinel")  # posted last, default delay
        wait_for(settled(stack.db_url, [t_sentinel], sentinel, 1), "the sentinel mailed")
        wait_for(settled(stack.db_url, [t_never], never, 1), "the 'never' row settled")
        wait_for(settled(stack.db_url, [t_always], always, 1), "the 'always' row settled")
    assert len(sink.to(sentinel.email)) == 1
    assert sink.to(never.email) == [] and states(stack.db_url, [t_never], never) == ["skipped"]
    assert len(sink.to(always.email)) == 1 and "mail me even if I read it" in sink.to(always.email)[0].text()
    # older than the sentinel, but its owner asked for an hour: still waiting
    assert sink.to(patient.email) == [] and states(stack.db_url, [t_patient], patient) == ["queued"]


def test_two_workers_never_send_a_mail_twice(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    sink, url = smtp
    customer = create_user(stack.db_url, "customer", "Cus two workers")
    agent = create_user(stack.db_url, "agent", "Agent two workers")
    tickets = [new_ticket(stack.db_url, customer, agent, f"Two workers {i}") for i in range(30)]
    for t in tickets:
        post(stack.db_url, agent, t, f"reply on {t}")
        post(stack.db_url, agent, t, f"second reply on {t}")
    with worker(stack, url, delay=0.0, batch=3), worker(stack, url, delay=0.0, batch=3):
        wait_for(settled(stack.db_url, tickets, customer, 60), "every notification settled")
    per_ticket = Counter(m.message["X-SupportChat-Ticket"] for m in sink.to(customer.email))
    assert per_ticket == Counter(dict.fromkeys(tickets, 1))


def test_kill_9_mid_batch_sends_nothing_twice_and_loses_only_mails_in_flight(
    stack: StackProcess, smtp: tuple[Sink, str]
) -> None:
    sink, url = smtp
    customer = create_user(stack.db_url, "customer", "Cus killed")
    agent = create_user(stack.db_url, "agent", "Agent killed")
    tickets = [new_ticket(stack.db_url, customer, agent, f"Killed {i}") for i in range(40)]
    for t in tickets:
        post(stack.db_url, agent, t, f"reply on {t}")
    sink.slow = 0.03
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supportchat_app",
                "notify",
                "--db-url",
                stack.db_url,
                "--smtp-url",
                url,
                "--delay",
                "0",
                "--poll",
                "0.05",
                "--batch",
                "10",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_for(lambda: len(sink.to(customer.email)) >= 8 or proc.poll() is not None, "the first mails")
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
            if proc.stderr:
                proc.stderr.close()
        before = len(sink.to(customer.email))
        assert before < len(tickets)  # killed mid-batch, not after the end
        with psycopg.connect(stack.db_url) as conn:  # marked `delivering`: their "." may or may not have left
            in_flight = {
                str(r[0])
                for r in conn.execute(
                    "select ticket_id from public.notifications where recipient_id = %s and state = 'delivering'",
                    (customer.id,),
                )
            }
        with worker(stack, url, delay=0.0):
            wait_for(settled(stack.db_url, tickets, customer, len(tickets)), "every notification settled")
    finally:
        sink.slow = 0.0
    per_ticket = Counter(m.message["X-SupportChat-Ticket"] for m in sink.to(customer.email))
    assert set(per_ticket) <= set(tickets) and set(per_ticket.values()) == {1}  # nothing twice
    # lost: at most the mails caught between their `delivering` commit and their "." (notify/worker.py: at most
    # once; a wider window under load made this test fail when it asked for every mail)
    assert set(tickets) - set(per_ticket) <= in_flight
    assert set(states(stack.db_url, tickets, customer)) == {"sent"}


def test_a_non_ascii_address_fails_its_own_group_and_the_batch_goes_out(
    stack: StackProcess, smtp: tuple[Sink, str]
) -> None:
    """Regression (review14, LOW): composing the mail to a non-ASCII address raised UnicodeEncodeError inside the
    claim, so the whole claimed batch failed, and again every round once recovery brought its rows back."""
    sink, url = smtp
    bad, agent, t_bad = pair(stack, "utf8 address")
    good, a_good, t_good = pair(stack, "ascii neighbour")
    address = f"kundé-{bad.id[:8]}@test.supportchat.local"
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update auth.users set email = %s where id = %s", (address, bad.id))
    post(stack.db_url, agent, t_bad, "to an address SMTP cannot carry")
    post(stack.db_url, a_good, t_good, "to a plain address")
    w = new_worker(stack, url, delay=0.0)  # stepped here, not run: before, the step raised
    try:
        for _ in range(20):  # the shared database may hold other tests' due rows: a few rounds at most
            if settled(stack.db_url, [t_bad], bad, 1)() and settled(stack.db_url, [t_good], good, 1)():
                break
            w.step()
    finally:
        w.close()
    assert len(sink.to(good.email)) == 1 and states(stack.db_url, [t_good], good) == ["sent"]
    assert states(stack.db_url, [t_bad], bad) == ["failed"] and sink.to(address) == []
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute(
            "select note from public.notifications where ticket_id = %s and recipient_id = %s", (t_bad, bad.id)
        ).fetchone()
    assert row is not None and "not ASCII" in row[0]


def _notes(db_url: str, ticket: str, recipient: User) -> list[tuple[str, str | None]]:
    with psycopg.connect(db_url) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "select state, note from public.notifications where ticket_id = %s and recipient_id = %s order by id",
                (ticket, recipient.id),
            ).fetchall()
        ]


def test_no_mail_to_whoever_can_no_longer_see_the_message(stack: StackProcess, smtp: tuple[Sink, str]) -> None:
    """Regression (review15): the worker mailed what was queued for a recipient who had since lost sight of it: an
    agent mentioned in an internal note, demoted to customer before the mail went, got the note's text; an agent
    whose ticket went to someone else got the customer's message. Mentions were mailed as their markup."""
    sink, url = smtp
    customer = create_user(stack.db_url, "customer", "Cus sight")
    author = create_user(stack.db_url, "agent", "Agent author")
    demoted = create_user(stack.db_url, "agent", "Agent demoted")
    kept = create_user(stack.db_url, "agent", "Agent kept")
    unassigned = new_ticket(stack.db_url, customer, None, "Subject sight")
    post(
        stack.db_url,
        author,
        unassigned,
        f"@[Agent demoted]({demoted.id}) and @[Agent kept]({kept.id}): refund is secret-42",
        internal=True,
    )
    asker, former, reassigned = pair(stack, "former assignee")
    post(stack.db_url, asker, reassigned, "my card number is 4242")
    # an agent who asked for help on a ticket of their own, handled by a colleague, still sees the replies
    own = new_ticket(stack.db_url, create_user(stack.db_url, "customer", "Cus placeholder"), author, "Own question")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.tickets set customer_id = %s where id = %s", (kept.id, own))
    post(stack.db_url, author, own, "Here is the answer to your own question")
    queued = [(demoted, unassigned), (kept, unassigned), (former, reassigned), (kept, own)]
    for who, t in queued:
        assert [s for s, _ in _notes(stack.db_url, t, who)] == ["queued"], who.name
    new_ticket_owner = create_user(stack.db_url, "agent", "Agent new owner")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.profiles set role = 'customer' where id = %s", (demoted.id,))
        conn.execute("update public.tickets set assignee_id = %s where id = %s", (new_ticket_owner.id, reassigned))
    w = new_worker(stack, url, delay=0.0)
    try:
        for _ in range(20):
            if all(settled(stack.db_url, [t], who, 1)() for who, t in queued):
                break
            w.step()
    finally:
        w.close()
    assert _notes(stack.db_url, unassigned, demoted) == [("skipped", "recipient can no longer see the message")]
    assert sink.to(demoted.email) == []
    assert _notes(stack.db_url, reassigned, former) == [("skipped", "recipient can no longer see the message")]
    assert sink.to(former.email) == []
    assert _notes(stack.db_url, own, kept) == [("sent", None)]  # the ticket's own customer, assigned to another
    mails = [m for m in sink.to(kept.email) if m.message["X-SupportChat-Ticket"] == unassigned]
    assert len(mails) == 1 and _notes(stack.db_url, unassigned, kept)[0][0] == "sent"
    for part in (mails[0].text(), mails[0].html()):
        assert "@Agent demoted and @Agent kept: refund is secret-42" in part and kept.id not in part

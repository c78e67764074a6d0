"""review17: one page of the initial sync had no size bound. `sync_message_rows` and `sync_batch('messages')` answer
up to 10,000 rows as one JSON value, which PostgREST's "Max rows" does not cut (migrations 20261202000300,
20261204000300); a message holds up to 10,000 characters, and a control character is six bytes in JSON. So any
customer could write 10,000 such messages into their own ticket (through REST, a few minutes of requests) and then
make the server build a ~600 MB answer per call, as many calls at once as they liked: the database and the REST
process each held it whole in memory. Now a page ends once it carries 4 MiB of message text (at least one row);
the client already reads on until an empty page, so every row still arrives, in cursor order, exactly once.
(Plain letters here, one byte of JSON each, so that the unfixed server's big answer stays quick to build.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

PAGE_TEXT_BYTES = 4 * 1024 * 1024  # the bound of migration 20261215000100
LONG = 10_000  # the longest message the schema allows, in characters (one byte each here)
COUNT = 600  # 6 MB of text: more than one page's worth


@pytest.fixture
def tickets(stack: StackProcess) -> Iterator[list[str]]:
    """The tickets a test seeds, deleted after it: their many messages must not fill other tests' first pages
    (an admin of the session stack sees every ticket)."""
    made: list[str] = []
    yield made
    for ticket in made:
        sql(stack.db_url, "delete from public.tickets where id = %s", ticket)


def _seed(stack: StackProcess, tickets: list[str], subject: str, content_sql: str, count: int) -> User:
    """A customer (with their own agent: nobody else's unassigned queue) and `count` messages of `content_sql`."""
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    ticket = seed_ticket(stack.db_url, customer, agent, subject)
    tickets.append(ticket)
    sql(
        stack.db_url,
        "insert into public.messages (ticket_id, sender_id, content)"
        f" select %s, %s, {content_sql} from generate_series(1, %s) g",
        ticket,
        customer.id,
        count,
    )
    return customer


def _content_bytes(row: Any) -> int:
    content = row[3] if isinstance(row, list) else row["content"]
    return len(content.encode())


def _ids(row: Any) -> str:
    return str(row[0] if isinstance(row, list) else row["id"])


def _cursor(row: Any) -> tuple[int, int]:
    return (row[8], row[9]) if isinstance(row, list) else (row["change_xid"], row["change_id"])


def test_a_page_of_long_messages_ends_at_the_size_bound_and_the_rest_follow(
    stack: StackProcess, tickets: list[str]
) -> None:
    customer = _seed(stack, tickets, "Long messages", f"repeat('x', {LONG})", COUNT)
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=customer.id)}"}
    calls: dict[str, dict[str, Any]] = {
        "sync_message_rows": {},
        "sync_batch": {"table_name": "messages"},
    }
    with httpx.Client(timeout=60) as client:
        for fn, args in calls.items():
            after = (0, 0)
            seen: list[str] = []
            pages = 0
            while True:
                answer = client.post(
                    f"{stack.api_url}/rest/v1/rpc/{fn}",
                    json={**args, "after_xid": after[0], "after_id": after[1], "max_rows": 10_000},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text
                rows = answer.json()
                if not rows:
                    break
                pages += 1
                text = sum(_content_bytes(r) for r in rows)
                # the rows before the last one stay under the bound: one long row may end a page past it
                assert text - _content_bytes(rows[-1]) < PAGE_TEXT_BYTES, (fn, len(rows), text)
                seen += [_ids(r) for r in rows]
                after = _cursor(rows[-1])
            assert pages >= 2, f"{fn}: {COUNT} messages of {LONG} bytes came in one page"
            assert len(seen) == COUNT == len(set(seen)), fn  # every row, once: the cut page is not the last


def test_a_page_of_short_messages_is_not_cut(stack: StackProcess, tickets: list[str]) -> None:
    """The bound costs the ordinary initial sync nothing: 10,000 messages of ordinary length are still one page."""
    customer = _seed(stack, tickets, "Short messages", "'message number ' || g || repeat(' words', 40)", 10_000)
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=customer.id)}"}
    with httpx.Client(timeout=60) as client:
        for fn, args in (("sync_message_rows", {}), ("sync_batch", {"table_name": "messages"})):
            rows = client.post(
                f"{stack.api_url}/rest/v1/rpc/{fn}", json={**args, "max_rows": 10_000}, headers=headers
            ).json()
            assert len(rows) == 10_000, fn


async def test_the_app_pulls_every_long_message_through_the_cut_pages(
    stack: StackProcess, tickets: list[str], engines: EngineFactory
) -> None:
    """The fix's premise, through the sync engine: a cut page is read on from, never taken for the last one."""
    customer = _seed(stack, tickets, "Long messages, in the app", f"repeat('y', {LONG})", COUNT)
    engine = await engines.open(customer)
    await engine.sync_once()
    assert engine.cache.initial_sync_done()
    assert engine.cache.count("messages") == COUNT

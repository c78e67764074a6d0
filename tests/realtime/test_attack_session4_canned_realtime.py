"""Attacker's review of canned reply files over realtime (``canned_reply_files`` joined the publication in
migration 20261201000410): a customer subscribed to every change of the table and of ``canned_replies``, and
another agent subscribed the same way, hear nothing of an agent's personal reply and its file; the owner does.
Every "nothing" is asserted after a later event on the same socket arrived (the server delivers in commit
order). Held.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.conftest import Users
from tests.realtime.support import as_user, listen, new_ticket, post, signed_in, wait_until
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(90)

PDF = b"%PDF-1.4 card"


async def test_nobody_else_hears_a_personal_canned_reply_or_its_file(stack: StackProcess, users: Users) -> None:
    own_ticket = new_ticket(stack.db_url, users.customer)
    tables = ({"event": "*", "table": "canned_reply_files"}, {"event": "*", "table": "canned_replies"})
    owner = await listen(await signed_in(stack, users.agent), "own-canned", *tables)
    customer = await listen(
        await signed_in(stack, users.customer), "cust-canned", *tables, {"event": "*", "table": "messages"}
    )
    colleague = await listen(await signed_in(stack, users.agent2), "other-canned", *tables)
    [(reply,)] = as_user(
        stack.db_url,
        users.agent,
        "insert into public.canned_replies (owner_id, title, body) values (%s, 'Card', 'Best') returning id::text",
        (users.agent.id,),
    )
    key = f"canned/{reply}/card.pdf"
    up = httpx.post(
        f"{stack.api_url}/storage/v1/object/attachments/{key}",
        content=PDF,
        headers={
            "apikey": stack.anon_key,
            "Authorization": f"Bearer {stack.mint(sub=users.agent.id)}",
            "Content-Type": "application/pdf",
        },
    )
    assert up.status_code == 200, up.text
    as_user(
        stack.db_url,
        users.agent,
        "insert into public.canned_reply_files (canned_reply_id, name, sha256, object_path)"
        " values (%s, 'card.pdf', %s, %s)",
        (reply, "0" * 64, key),
    )
    await wait_until(lambda: bool(owner.records("canned_reply_files")), 10, "the owner's file row")
    # sentinels: the customer's own message; the colleague's own personal reply
    post(stack.db_url, users.customer, own_ticket, "sentinel after the canned file")
    await customer.wait_content("sentinel after the canned file", timeout=10)
    as_user(
        stack.db_url,
        users.agent2,
        "insert into public.canned_replies (owner_id, title, body) values (%s, 'Mine', 'Hi')",
        (users.agent2.id,),
    )
    await wait_until(lambda: any(r.get("title") == "Mine" for r in colleague.records()), 10, "sentinel")
    assert customer.records("canned_reply_files") == [] and customer.records("canned_replies") == []
    assert colleague.records("canned_reply_files") == []
    assert all(r.get("id") != reply for r in colleague.records("canned_replies"))
    # leave no replies behind in the shared agents' pickers (later tests' first syncs)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            "update public.canned_replies set deleted_at = now() where id = %s or (owner_id = %s and title = 'Mine')",
            (reply, users.agent2.id),
        )

"""supabase-js (Node) storage against localbase unchanged: tests/js/storage.mjs manages a bucket and
its objects as the service role (Buffer and Blob uploads, upsert, download, info, exists, list,
limits, signed and public URLs, signed uploads, move, copy, remove) and attacks the attachments
bucket as a customer, another customer, an agent and anon; this test sets up the tickets and checks
the outcome in the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import psycopg
import pytest

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready


@pytest.mark.node
def test_supabase_js_storage(stack: StackProcess, users: Users, db: psycopg.Connection) -> None:
    node = node_ready()

    def ticket(customer: str, status: str = "open") -> str:
        row = db.execute(
            "insert into public.tickets (customer_id, subject, status) values (%s, 'js', %s) returning id::text",
            (customer, status),
        ).fetchone()
        assert row is not None
        return str(row[0])

    def message(ticket_id: str, sender: str) -> str:
        mid = str(uuid.uuid4())
        db.execute(
            "insert into public.messages (id, ticket_id, sender_id, content) values (%s, %s, %s, 'm')",
            (mid, ticket_id, sender),
        )
        return mid

    t_open, t_other = ticket(users.customer.id), ticket(users.customer2.id)
    world = {
        "customer": stack.mint(sub=users.customer.id),
        "customer2": stack.mint(sub=users.customer2.id),
        "agent": stack.mint(sub=users.agent.id),
        "t_open": t_open,
        "t_other": t_other,
        "t_closed": ticket(users.customer.id, "closed"),
        "m_customer": message(t_open, users.customer.id),
        "m_other": message(t_other, users.customer2.id),
    }
    env = {
        **os.environ,
        "SUPABASE_URL": stack.api_url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_role_key,
        "WORLD": json.dumps(world),
    }
    done = subprocess.run(
        [node, "storage.mjs"], check=False, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"service": "ok", "attachments": "ok", "path": f"{t_open}/{world['m_customer']}/from-js.png"}
    # the customer's own removal really removed the row; nothing else was left in the attachments bucket
    assert db.execute(
        "select count(*) from storage.objects where bucket_id = 'attachments' and name like %s", (f"{t_open}/%",)
    ).fetchone() == (0,)
    assert db.execute(
        "select count(*) from storage.objects where name like %s", (f"{t_other}/%/stolen.png",)
    ).fetchone() == (0,)
    assert db.execute("select count(*) from storage.buckets where id like 'js-%%'").fetchone() == (0,)

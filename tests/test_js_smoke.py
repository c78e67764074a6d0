"""supabase-js under Node against the real localbase: tests/js/smoke_rest_auth.mjs signs up and in,
refreshes, hits the admin API, inserts a ticket and a message through REST and reads them back;
this test runs it and checks what it reports against the database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.stackproc import StackProcess

JS_DIR = Path(__file__).parent / "js"


def node_ready() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node 20 is part of the test setup, see .ci/run)")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install tests/js/node_modules"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300)
    return node


@pytest.mark.node
def test_supabase_js_auth_and_rest(stack: StackProcess, db: psycopg.Connection) -> None:
    node = node_ready()
    env = {
        **os.environ,
        "SUPABASE_URL": stack.api_url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_role_key,
    }
    done = subprocess.run(
        [node, "smoke_rest_auth.mjs"], check=False, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["refreshed"] is True and seen["signed_out"] is True
    profile = db.execute("select role, display_name from public.profiles where id = %s", (seen["user_id"],)).fetchone()
    assert profile == ("customer", "JS Alice")
    ticket = db.execute(
        "select customer_id::text, subject from public.tickets where id = %s", (seen["ticket_id"],)
    ).fetchone()
    assert ticket == (seen["user_id"], "JS smoke ticket")
    message = db.execute(
        "select sender_id::text, content from public.messages where id = %s", (seen["message_id"],)
    ).fetchone()
    assert message == (seen["user_id"], "Hello from Node")
    # the agent the admin API created was really deleted, profile and all
    assert db.execute("select 1 from auth.users where id = %s", (seen["agent_id"],)).fetchone() is None
    assert db.execute("select 1 from public.profiles where id = %s", (seen["agent_id"],)).fetchone() is None
    # all sessions of the signed-out user are gone
    assert db.execute("select count(*) from auth.sessions where user_id = %s", (seen["user_id"],)).fetchone() == (0,)

"""supabase-js under Node against localbase's emailed and MFA flows: tests/js/auth_flows.mjs signs in
with an email OTP and a magic link, recovers a password, accepts an invitation, generates a link,
reaches aal2 with TOTP and meets SSO's refusal; this test runs it and checks its report in the database.
tests/js/demo_keys.mjs uses the Supabase CLI's demo keys, hardcoded, against a `--demo` stack.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from localbase import demo
from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready


@pytest.mark.node
def test_supabase_js_email_and_mfa_flows(stack: StackProcess, db: psycopg.Connection) -> None:
    node = node_ready()
    env = {
        **os.environ,
        "SUPABASE_URL": stack.api_url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_role_key,
    }
    done = subprocess.run(
        [node, "auth_flows.mjs"], check=False, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["recovered"] is True and seen["aal"] == "aal2"
    assert db.execute(
        "select role, display_name from public.profiles where id = %s", (seen["invited_user"],)
    ).fetchone() == ("agent", "JS Invitee")
    assert db.execute(
        "select email_confirmed_at is not null from auth.users where id = %s", (seen["otp_user"],)
    ).fetchone() == (True,)


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    proc = StackProcess(tmp_path_factory.mktemp("localbase-demo") / "data", demo=True)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.node
def test_supabase_js_with_the_cli_demo_keys_hardcoded(demo_stack: StackProcess) -> None:
    node = node_ready()
    email, _, _ = demo.ACCOUNTS[1]
    env = {**os.environ, "SUPABASE_URL": demo_stack.api_url, "DEMO_EMAIL": email, "DEMO_PASSWORD": demo.PASSWORD}
    done = subprocess.run(
        [node, "demo_keys.mjs"], check=False, cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"user": email, "tickets": seen["tickets"], "users": len(demo.ACCOUNTS)} and seen["tickets"] >= 3

"""supabase-js under Node against localbase's emailed and MFA flows: tests/js/auth_flows.mjs signs in
with an email OTP and a magic link, recovers a password, accepts an invitation, generates a link,
reaches aal2 with TOTP and meets SSO's refusal; this test runs it and checks its report in the database.
"""

from __future__ import annotations

import json
import os
import subprocess

import psycopg
import pytest

from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready


@pytest.mark.node
def test_supabase_js_email_and_mfa_flows(stack: StackProcess, db: psycopg.Connection) -> None:
    node = node_ready()
    env = {**os.environ, "SUPABASE_URL": stack.api_url, "SUPABASE_ANON_KEY": stack.anon_key,
           "SUPABASE_SERVICE_ROLE_KEY": stack.service_role_key}
    done = subprocess.run([node, "auth_flows.mjs"], check=False, cwd=JS_DIR, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["recovered"] is True and seen["aal"] == "aal2"
    assert db.execute("select role, display_name from public.profiles where id = %s",
                      (seen["invited_user"],)).fetchone() == ("agent", "JS Invitee")
    assert db.execute("select email_confirmed_at is not null from auth.users where id = %s",
                      (seen["otp_user"],)).fetchone() == (True,)

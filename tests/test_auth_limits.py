"""GoTrue's rate limits and real SMTP delivery, on a stack of its own with the limits switched on
(issue 10 item 3, issue 17): an invitation mailed through an SMTP server (aiosmtpd in this process)
to a working link; token refresh, OTP and password sign-in limited per client IP with GoTrue's 429
body, before any bcrypt work; a forged X-Forwarded-For buys no fresh bucket, another address has its own.
"""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from localbase.postgres import free_port
from tests.conftest import create_user
from tests.stackproc import TEST_RATE_LIMITS, StackProcess

SIGN_IN_LIMIT = 10
OTP_LIMIT = 3
REFRESH_LIMIT = 5
EMAIL_LIMIT = 4  # the invitation and the three OTP mails below use them all


@dataclass
class Sink:
    """An SMTP server's DATA handler that keeps every message it accepts."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Sink, int]) -> Iterator[StackProcess]:
    root: Path = tmp_path_factory.mktemp("localbase-limits")
    env = {
        **TEST_RATE_LIMITS,
        "LOCALBASE_RATE_LIMIT_SIGN_IN_SIGN_UPS": str(SIGN_IN_LIMIT),
        "LOCALBASE_RATE_LIMIT_OTP": str(OTP_LIMIT),
        "LOCALBASE_RATE_LIMIT_TOKEN_REFRESH": str(REFRESH_LIMIT),
        "LOCALBASE_RATE_LIMIT_EMAIL_SENT": str(EMAIL_LIMIT),
    }
    proc = StackProcess(root / "data", env=env, args=["--smtp-url", f"smtp://127.0.0.1:{smtp[1]}"])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def auth_post(
    stack: StackProcess,
    path: str,
    body: dict[str, Any],
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as http:
        return http.post(
            f"{stack.api_url}/auth/v1/{path}", json=body, headers={"apikey": stack.anon_key, **(headers or {})}
        )


def test_invitation_goes_out_by_smtp_and_its_link_signs_the_invitee_in(
    limited: StackProcess, smtp: tuple[Sink, int]
) -> None:
    sink, _ = smtp
    address = f"smtp-{uuid.uuid4().hex[:10]}@test.supportchat.local"
    admin = create_client(
        limited.api_url, limited.service_role_key, ClientOptions(auto_refresh_token=False, persist_session=False)
    )
    try:
        invited = admin.auth.admin.invite_user_by_email(address, {"redirect_to": "http://127.0.0.1:8765/welcome"})
        admin.auth.admin.update_user_by_id(invited.user.id, {"app_metadata": {"role": "agent"}})
    finally:
        admin.auth.close()
    mails = [m for m in sink.messages if m["To"] == address]
    assert len(mails) == 1 and mails[0]["Subject"] == "You have been invited"
    text = mails[0].get_body(("plain",))
    assert text is not None
    link = re.search(r"(http://\S+/auth/v1/verify\?\S+)", text.get_content())
    assert link is not None
    landed = httpx.get(link.group(1), follow_redirects=False, timeout=30)
    assert landed.status_code == 303
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed.headers["location"]).fragment).items()}
    client = create_client(limited.api_url, limited.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        client.auth.set_session(params["access_token"], params["refresh_token"])
        client.auth.update_user({"password": "smtp-invitee-Passw0rd"})
        user = client.auth.get_user()
        assert user is not None and user.user.app_metadata["role"] == "agent"
    finally:
        client.auth.close()


def test_token_refresh_is_limited_per_ip(limited: StackProcess) -> None:
    user = create_user(limited.db_url, "customer")
    signed_in = auth_post(limited, "token?grant_type=password", {"email": user.email, "password": user.password})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["refresh_token"]
    statuses = []
    for _ in range(REFRESH_LIMIT + 3):
        answer = auth_post(limited, "token?grant_type=refresh_token", {"refresh_token": token})
        if answer.status_code == 200:
            token = answer.json()["refresh_token"]
        statuses.append(answer.status_code)
    assert statuses[:REFRESH_LIMIT] == [200] * REFRESH_LIMIT
    assert statuses[REFRESH_LIMIT:] == [429] * 3


def test_otp_requests_are_limited_per_ip(limited: StackProcess) -> None:
    answers = [
        auth_post(
            limited,
            "otp",
            {"email": f"otp-{uuid.uuid4().hex[:10]}@test.supportchat.local"},
            headers={"X-Supabase-Api-Version": "2024-01-01"},
        )
        for _ in range(OTP_LIMIT + 2)
    ]
    assert [a.status_code for a in answers] == [200] * OTP_LIMIT + [429] * 2
    assert answers[-1].json() == {"code": "over_request_rate_limit", "message": "Request rate limit reached"}


def test_emails_share_one_hourly_limit(limited: StackProcess, smtp: tuple[Sink, int]) -> None:
    sink, _ = smtp
    assert len(sink.messages) == EMAIL_LIMIT, "the invitation and the OTP mails went out"
    person = create_user(limited.db_url, "customer")
    # from another address, so the per-IP OTP bucket has room: only the email limit can refuse
    refused = auth_post(
        limited,
        "recover",
        {"email": person.email},
        source="127.0.0.3",
        headers={"X-Supabase-Api-Version": "2024-01-01"},
    )
    assert refused.status_code == 429
    assert refused.json() == {"code": "over_email_send_rate_limit", "message": "email rate limit exceeded"}
    assert len(sink.messages) == EMAIL_LIMIT
    with psycopg.connect(limited.db_url) as conn:  # the refused mail left no usable token behind
        assert conn.execute(
            "select coalesce(recovery_token, '') from auth.users where id = %s", (person.id,)
        ).fetchone() == ("",)


def test_thirty_wrong_passwords_meet_429_without_thirty_bcrypt_hashes(limited: StackProcess) -> None:
    victim = create_user(limited.db_url, "admin")
    client = create_client(limited.api_url, limited.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        codes: list[str] = []
        started = time.monotonic()
        for attempt in range(30):
            # a forged X-Forwarded-For must not buy a fresh bucket
            client.auth._headers["X-Forwarded-For"] = f"203.0.113.{attempt}"
            with pytest.raises(AuthApiError) as refused:
                client.auth.sign_in_with_password({"email": victim.email, "password": f"guess-{attempt}"})
            codes.append(refused.value.code or "")
        elapsed = time.monotonic() - started
    finally:
        client.auth.close()
    checked = codes.count("invalid_credentials")  # each of these cost one bcrypt comparison
    assert 1 <= checked <= SIGN_IN_LIMIT + 1, codes
    assert codes.count("over_request_rate_limit") == 30 - checked
    assert codes[-1] == "over_request_rate_limit"
    assert elapsed < 30
    # legacy error shape (no API version header) as GoTrue sends it
    legacy = auth_post(limited, "token?grant_type=password", {"email": victim.email, "password": "x" * 8})
    assert legacy.status_code == 429
    assert legacy.json() == {"code": 429, "error_code": "over_request_rate_limit", "msg": "Request rate limit reached"}
    # the limit is per address: another loopback address still gets an honest answer
    other = auth_post(
        limited, "token?grant_type=password", {"email": victim.email, "password": victim.password}, source="127.0.0.2"
    )
    assert other.status_code == 200, other.text


def test_a_bad_smtp_url_is_a_clear_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "localbase",
            "stack",
            "--smtp-url",
            "mail.example.com:25",
            "--data",
            str(tmp_path / "never"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--smtp-url" in done.stderr and "smtp://" in done.stderr
    assert not (tmp_path / "never").exists(), "nothing was started"

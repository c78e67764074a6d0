"""Two-step sign-in in the app through NiceGUI's simulated `User` on the real stack (issue 17): an agent
turns TOTP on in Settings (QR code and the secret as text, a wrong first code refused with a sentence),
then signing in asks for the code after the password — with the password alone the app holds no session
and shows nothing, a wrong code is refused and the step stays, the right code gives an aal2 session
that syncs and hears realtime, also after a refresh; turning TOTP off needs a current code.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pyotp

from tests.conftest import User as Account
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # noqa: F401 (app_data is a fixture)
    WAIT,
    another_user,
    app_data,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)


def text_of(user: Any, marker: str) -> str:
    return str(user.find(marker=marker).elements.pop().text)


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def wrong_code(totp: pyotp.TOTP) -> str:
    """Six digits that no window the server accepts (the current step ± one) would take."""
    now = time.time()
    valid = {totp.at(now + step) for step in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "123456", "999999", "424242") if code not in valid)


def verified_factors(stack: StackProcess, account: Account) -> int:
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute(
            "select count(*) from auth.mfa_factors where user_id = %s and status = 'verified'", (account.id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def turn_on(user: Any, stack: StackProcess, account: Account) -> pyotp.TOTP:
    """In Settings: set up, scan (read the secret as typed by hand), a wrong code first, then the right one."""
    await user.open("/settings")
    await user.should_see(marker="mfa-setup", retries=WAIT)
    user.find(marker="mfa-setup").click()
    await user.should_see(marker="mfa-secret", retries=WAIT)  # shown once the server enrolled the factor
    qr = user.find(marker="mfa-qr").elements.pop()
    assert str(qr.source).startswith("data:image/svg+xml;base64,")
    totp = pyotp.TOTP(text_of(user, "mfa-secret").replace(" ", ""))
    user.find(marker="mfa-code").type(wrong_code(totp))
    user.find(marker="mfa-confirm").click()
    await eventually(lambda: "not right" in text_of(user, "mfa-message"), "the wrong first code refused")
    assert verified_factors(stack, account) == 0
    user.find(marker="mfa-code").clear().type(totp.now())
    user.find(marker="mfa-confirm").click()
    await eventually(lambda: "is on" in text_of(user, "mfa-message"), "two-step sign-in turned on")
    assert verified_factors(stack, account) == 1
    return totp


async def test_agent_turns_on_totp_then_sign_in_needs_the_code(app_data: Path, stack: StackProcess) -> None:
    agent = create_user(stack.db_url, "agent")
    async with running_app() as first:
        await sign_in(first, agent)
        totp = await turn_on(first, stack, agent)
        session = engine_of(first).session
        assert claims(session.access_token)["aal"] == "aal2", "the enrolling session itself is upgraded"

        second = another_user()  # a fresh browser: sign in from scratch
        await second.open("/signin")
        second.find(marker="email").type(agent.email)
        second.find(marker="password").type(agent.password)
        second.find(marker="signin").click()
        await second.should_see(marker="signin-code", retries=WAIT)
        engine = engine_of(second)
        assert engine.user is None and engine.session is None, "the password alone gives the app no session"
        assert engine.account.sessions.load() is None, "nothing of it is saved"
        await second.open("/")  # the inbox is not reachable: the guard sends the browser back to the code step
        await second.should_see(marker="signin-code", retries=WAIT)
        await second.should_not_see(marker="ticket-count")

        second.find(marker="signin-code").type(wrong_code(totp))
        second.find(marker="signin-verify").click()
        await eventually(lambda: "not right" in text_of(second, "signin-error"), "the wrong code refused")
        assert engine.user is None and engine.account.sessions.load() is None

        second.find(marker="signin-code").type(totp.now())
        second.find(marker="signin-verify").click()
        await eventually(lambda: getattr(engine.user, "email", None) == agent.email, "the two-step sign-in")
        await eventually(lambda: engine.account.sessions.load() is not None, "the aal2 session saved")
        assert claims(engine.session.access_token)["aal"] == "aal2"
        await eventually(
            lambda: engine.status.last_synced_at is not None and not engine.status.syncing, "the first sync at aal2"
        )


async def test_an_aal2_session_keeps_syncing_and_hearing_realtime_across_a_refresh(
    app_data: Path, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")
    customer = create_user(stack.db_url, "customer")
    async with running_app() as user:
        await sign_in(user, agent)
        await turn_on(user, stack, agent)
        engine = engine_of(user)
        before = engine.session
        await engine.account.refresh()  # what the loop does a minute before expiry
        after = engine.session
        assert after.refresh_token != before.refresh_token
        assert claims(after.access_token)["aal"] == "aal2", "a refresh keeps the session's assurance level"

        ticket_id = seed_ticket(
            stack.db_url, customer, agent, f"After refresh {time.time_ns()}", [(customer, "first", False)]
        )
        await eventually(lambda: any(t.id == ticket_id for t in engine.cache.inbox(view="mine")), "the pull")
        applied = engine.parts.live.applied
        seed_message = "heard over realtime with an aal2 token"
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                (ticket_id, customer.id, seed_message),
            )
        await eventually(lambda: engine.parts.live.applied > applied, "the realtime change")
        sent = engine.commands.send_message(ticket_id, "pushed with an aal2 token")
        await eventually(lambda: engine.cache.message(sent.id).local_state == "sent", "the push")


async def test_turning_totp_off_needs_a_current_code(app_data: Path, stack: StackProcess) -> None:
    agent = create_user(stack.db_url, "agent")
    async with running_app() as user:
        await sign_in(user, agent)
        totp = await turn_on(user, stack, agent)
        await user.open("/settings")
        await user.should_see(marker="mfa-off", retries=WAIT)
        user.find(marker="mfa-off").click()
        user.find(marker="mfa-code").type(wrong_code(totp))
        user.find(marker="mfa-confirm").click()
        await eventually(lambda: "not right" in text_of(user, "mfa-message"), "the wrong code refused")
        assert verified_factors(stack, agent) == 1
        user.find(marker="mfa-code").clear().type(totp.now())
        user.find(marker="mfa-confirm").click()
        await eventually(lambda: "is off" in text_of(user, "mfa-message"), "two-step sign-in turned off")
        assert verified_factors(stack, agent) == 0
        await user.should_see(marker="mfa-setup", retries=WAIT)

        again = another_user()  # with the factor gone, the password alone signs in
        await sign_in(again, agent)
        assert claims(engine_of(again).session.access_token)["aal"] == "aal1"


async def test_a_project_requiring_it_tells_staff_why_the_inbox_is_empty(app_data: Path, stack: StackProcess) -> None:
    agent = create_user(stack.db_url, "agent")
    customer = create_user(stack.db_url, "customer")
    ticket_id = seed_ticket(
        stack.db_url, customer, agent, f"Behind two-step {time.time_ns()}", [(customer, "hello", False)]
    )
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.app_settings set staff_require_mfa = true")
    try:
        async with running_app() as user:
            await sign_in(user, agent)
            engine = engine_of(user)
            await user.should_see(marker="mfa-required", retries=WAIT)
            assert engine.cache.ticket(ticket_id) is None, "RLS shows a password-only staff session nothing"
            await turn_on(user, stack, agent)
            await eventually(lambda: engine.cache.ticket(ticket_id) is not None, "the ticket, pulled at aal2")
            await user.open("/")
            await user.should_not_see(marker="mfa-required", retries=WAIT)
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("update public.app_settings set staff_require_mfa = false")

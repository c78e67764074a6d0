"""Account flows in the app through NiceGUI's simulated `User` on the real stack (issue 17): "Forgot
password?" on the sign-in page resets the password with the emailed code; an admin invites a teammate
as agent from the app and the invitee joins with the emailed code, choosing a password, and signs in
as an agent; non-admins cannot reach the invite page.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp
import pytest
from supabase import Client, ClientOptions, create_client

from supportchat_app.account import Account, AccountError
from tests.conftest import Users, create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # noqa: F401 (app_data is a fixture)
    another_user,
    app_data,
    engine_of,
    eventually,
    running_app,
    sign_in,
)


def emailed_code(stack: StackProcess, address: str) -> str | None:
    headers = {"apikey": stack.service_role_key}
    listed = httpx.get(f"{stack.api_url}/inbox/api/v1/messages", headers=headers, timeout=30).json()["messages"]
    mine = [m for m in listed if m["To"][0]["Address"] == address]
    if not mine:
        return None
    text = httpx.get(f"{stack.api_url}/inbox/api/v1/message/{mine[0]['ID']}", headers=headers, timeout=30).json()
    found = re.search(r"code: (\d{6})", text["Text"])
    return found.group(1) if found else None


def text_of(user: object, marker: str) -> str:
    return str(user.find(marker=marker).elements.pop().text)  # type: ignore[attr-defined]


async def test_forgot_password_resets_with_the_emailed_code(app_data: Path, stack: StackProcess) -> None:
    person = create_user(stack.db_url, "customer")
    async with running_app() as user:
        await user.open("/signin")
        user.find(marker="forgot").click()
        user.find(marker="reset-email").type(person.email)
        user.find(marker="reset-send").click()
        await eventually(lambda: "on its way" in text_of(user, "reset-message"), "the code sent")
        await eventually(lambda: emailed_code(stack, person.email) is not None, "the reset mail")
        user.find(marker="reset-code").type(str(emailed_code(stack, person.email)))
        user.find(marker="reset-password").type("reset-by-code-Passw0rd")
        user.find(marker="reset-finish").click()
        await eventually(lambda: "password is set" in text_of(user, "signin-error"), "the reset")
        user.find(marker="password").type("reset-by-code-Passw0rd")
        user.find(marker="signin").click()
        await eventually(lambda: getattr(engine_of(user).user, "email", None) == person.email, "sign-in")


async def test_admin_invites_an_agent_who_joins_with_the_code(
    app_data: Path,
    stack: StackProcess,
    users: Users,
) -> None:
    address = f"joiner-{uuid.uuid4().hex[:10]}@test.supportchat.local"
    async with running_app() as admin:
        await sign_in(admin, users.admin)
        await admin.open("/invite")
        admin.find(marker="invite-email").type(address)
        admin.find(marker="invite-send").click()
        await eventually(lambda: "Invitation sent" in text_of(admin, "invite-message"), "the invitation")
        with psycopg.connect(stack.db_url) as conn:
            assert conn.execute("select role from public.invitations where email = %s", (address,)).fetchone() == (
                "agent",
            )
        await eventually(lambda: emailed_code(stack, address) is not None, "the invitation mail")
        invitee = another_user()  # the invitee's own browser, on their own computer as far as the app knows
        await invitee.open("/signin")
        invitee.find(marker="invited").click()
        invitee.find(marker="join-email").type(address)
        invitee.find(marker="join-code").type(str(emailed_code(stack, address)))
        invitee.find(marker="join-password").type("joined-Passw0rd")
        invitee.find(marker="join-finish").click()
        await eventually(lambda: "joined as agent" in text_of(invitee, "signin-error"), "joining")
        invitee.find(marker="password").type("joined-Passw0rd")
        invitee.find(marker="signin").click()
        await eventually(lambda: getattr(engine_of(invitee).user, "role", None) == "agent", "an agent's sign-in")
        # leave once the new agent's first sync has landed, so the app shuts down with nothing in flight
        await eventually(
            lambda: engine_of(invitee).status.last_synced_at is not None and not engine_of(invitee).status.syncing,
            "the first sync",
        )


async def test_the_invite_page_is_for_admins_only(app_data: Path, users: Users) -> None:
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open("/invite")
        await agent.should_not_see(marker="invite-send")


def with_authenticator(stack: StackProcess) -> tuple[Any, Client, pyotp.TOTP]:
    """A customer with a verified authenticator (TOTP), signed out; a client to check their password with."""
    person = create_user(stack.db_url, "customer")
    client = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False))
    client.auth.sign_in_with_password({"email": person.email, "password": person.password})
    enrolment = client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})
    assert enrolment.totp is not None
    totp = pyotp.TOTP(enrolment.totp.secret)
    client.auth.mfa.challenge_and_verify({"factor_id": enrolment.id, "code": totp.now()})
    client.auth.sign_out()
    return person, client, totp


async def test_a_reset_kept_for_the_authenticator_asks_again_without_spending_it(stack: StackProcess) -> None:
    """Review14b: asked again without the authenticator's code, the kept recovery session was dropped (never signed
    out) and the used email code tried again; now it is still kept, and the code alone finishes the reset."""
    person, client, totp = with_authenticator(stack)
    account = Account(stack.api_url, stack.anon_key)
    await account.send_reset_code(person.email)
    await eventually(lambda: emailed_code(stack, person.email) is not None, "the reset mail")
    code = str(emailed_code(stack, person.email))
    for _ in range(2):
        with pytest.raises(AccountError, match="authenticator app"):
            await account.reset_password(person.email, code, "kept-reset-Passw0rd")
    await account.reset_password(person.email, code, "kept-reset-Passw0rd", totp.now())
    client.auth.sign_in_with_password({"email": person.email, "password": "kept-reset-Passw0rd"})
    client.auth.sign_out()


async def test_forgot_password_of_an_account_with_an_authenticator_asks_for_its_code(
    app_data: Path, stack: StackProcess
) -> None:
    """The server lets only an aal2 session change an MFA user's password (as GoTrue does), so the reset takes the
    authenticator's code too; without it the user is told what to enter, and the old password still works."""
    person, client, totp = with_authenticator(stack)

    async def reset_with(user: object, authenticator: str, used: str | None) -> str:
        """Ask for a code (a new one, not `used`), enter it with the new password and `authenticator`."""
        user.find(marker="reset-send").click()  # type: ignore[attr-defined]
        # the dialog shows the code's field once the request returned (the mail can arrive before that)
        await eventually(lambda: "on its way" in text_of(user, "reset-message"), "the code sent")
        await eventually(lambda: emailed_code(stack, person.email) not in (None, used), "a new reset mail")
        code = str(emailed_code(stack, person.email))
        user.find(marker="reset-code").clear().type(code)  # type: ignore[attr-defined]
        user.find(marker="reset-password").clear().type("reset-with-mfa-Passw0rd")  # type: ignore[attr-defined]
        user.find(marker="reset-authenticator").clear().type(authenticator)  # type: ignore[attr-defined]
        user.find(marker="reset-finish").click()  # type: ignore[attr-defined]
        return code

    async with running_app() as user:
        await user.open("/signin")
        user.find(marker="forgot").click()
        user.find(marker="reset-email").type(person.email)
        await reset_with(user, "", None)
        await eventually(lambda: "authenticator app" in text_of(user, "reset-message"), "the request for the code")
        client.auth.sign_in_with_password({"email": person.email, "password": person.password})  # unchanged
        client.auth.sign_out({"scope": "local"})
        # the emailed code is used up by now: the authenticator's code alone finishes the same reset
        user.find(marker="reset-authenticator").clear().type(totp.now())
        user.find(marker="reset-finish").click()
        await eventually(lambda: "password is set" in text_of(user, "signin-error"), "the reset")
    client.auth.sign_in_with_password({"email": person.email, "password": "reset-with-mfa-Passw0rd"})
    client.auth.sign_out()


async def test_an_invitation_whose_code_auth_refused_is_taken_back(stack: StackProcess, users: Users) -> None:
    """Regression (review14, invitation pre-hijack): the invitation row stayed when Auth refused to send its code
    (and so made no account), leaving an invitation the first to sign the address up would be bound to."""
    address = f"two words-{uuid.uuid4().hex[:8]}@test.supportchat.local"  # the table takes it, Auth refuses it
    async with httpx.AsyncClient(timeout=30) as http:
        signed_in = await http.post(
            f"{stack.api_url}/auth/v1/token?grant_type=password",
            headers={"apikey": stack.anon_key},
            json={"email": users.admin.email, "password": users.admin.password},
        )
    token = signed_in.json()["access_token"]
    with pytest.raises(AccountError, match=r"^The invitation was not sent: .*email address"):
        await Account(stack.api_url, stack.anon_key).invite(token, address, "agent")
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select 1 from public.invitations where email = %s", (address,)).fetchall() == []

"""A password reset that is not finished leaves no session behind (review14b, MEDIUM): the reset signs in with the
emailed code (a recovery session) and, for an account with an authenticator, keeps that session while it asks for
the authenticator's code. Closing the dialog, quitting the app, or a refused new password used to leave it live on
the server (a usable refresh token in the app's memory for as long as it ran). Now each of those signs it out, on
the server and only it (scope local): the user's own session on this device stays. Real localbase, the app's
`Account` and its sign-in page in NiceGUI's simulated browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from supabase import Client, ClientOptions, create_client

from supportchat_app.account import Account, AccountError
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_account import emailed_code, text_of, with_authenticator
from tests.test_app_flows import app_data, eventually, running_app  # noqa: F401 (app_data is a fixture)
from tests.test_sync_support import sql

pytestmark = pytest.mark.timeout(120)


def sessions_of(stack: StackProcess, user_id: str) -> set[str]:
    return {str(r[0]) for r in sql(stack.db_url, "select id from auth.sessions where user_id = %s", user_id)}


def signed_in(stack: StackProcess, email: str, password: str) -> tuple[Client, str]:
    """The user's own session, as on this device: the client and its session id."""
    own = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False))
    own.auth.sign_in_with_password({"email": email, "password": password})
    user = own.auth.get_user()
    assert user is not None
    (session_id,) = sessions_of(stack, user.user.id)
    return own, session_id


async def _asked_for_the_authenticator(stack: StackProcess, user: object, email: str) -> None:
    """On the sign-in page: "Forgot password?", the emailed code and a new password, no authenticator code."""
    await user.open("/signin")  # type: ignore[attr-defined]
    user.find(marker="forgot").click()  # type: ignore[attr-defined]
    user.find(marker="reset-email").type(email)  # type: ignore[attr-defined]
    user.find(marker="reset-send").click()  # type: ignore[attr-defined]
    await eventually(lambda: "on its way" in text_of(user, "reset-message"), "the code sent")
    await eventually(lambda: emailed_code(stack, email) is not None, "the reset mail")
    user.find(marker="reset-code").type(str(emailed_code(stack, email)))  # type: ignore[attr-defined]
    user.find(marker="reset-password").type("abandoned-Passw0rd")  # type: ignore[attr-defined]
    user.find(marker="reset-finish").click()  # type: ignore[attr-defined]
    await eventually(lambda: "authenticator app" in text_of(user, "reset-message"), "the request for the code")


async def _reset_code(stack: StackProcess, email: str) -> tuple[Account, str]:
    """An `Account` as the app makes one, and the recovery code it had emailed to `email`."""
    account = Account(stack.api_url, stack.anon_key)
    await account.send_reset_code(email)
    await eventually(lambda: emailed_code(stack, email) is not None, "the reset mail")
    return account, str(emailed_code(stack, email))


async def test_closing_the_reset_dialog_signs_its_recovery_session_out(app_data: Path, stack: StackProcess) -> None:
    person, client, _ = with_authenticator(stack)
    own, mine = signed_in(stack, person.email, person.password)
    async with running_app() as user:
        await _asked_for_the_authenticator(stack, user, person.email)
        assert len(sessions_of(stack, person.id)) == 2  # the recovery session, kept for the code
        user.find("Cancel").click()
        await eventually(lambda: sessions_of(stack, person.id) == {mine}, "the recovery session signed out")
    assert own.auth.refresh_session().session is not None  # the user's own session is untouched
    own.auth.sign_out()
    client.auth.sign_out()


async def test_a_page_gone_with_a_kept_recovery_session_signs_it_out(app_data: Path, stack: StackProcess) -> None:
    """The browser tab closed (or reloaded) while the reset waited for the authenticator's code: NiceGUI deletes the
    page's client, and the reset's session goes with it, while the app keeps running."""
    person, client, _ = with_authenticator(stack)
    own, mine = signed_in(stack, person.email, person.password)
    async with running_app() as user:
        await _asked_for_the_authenticator(stack, user, person.email)
        assert len(sessions_of(stack, person.id)) == 2
        assert user.client is not None
        user.client.delete()
        await eventually(lambda: sessions_of(stack, person.id) == {mine}, "the recovery session signed out")
    assert own.auth.refresh_session().session is not None
    own.auth.sign_out()
    client.auth.sign_out()


async def test_quitting_the_app_signs_a_kept_recovery_session_out(app_data: Path, stack: StackProcess) -> None:
    person, client, _ = with_authenticator(stack)
    own, mine = signed_in(stack, person.email, person.password)
    async with running_app() as user:
        await _asked_for_the_authenticator(stack, user, person.email)
        assert len(sessions_of(stack, person.id)) == 2
    assert sessions_of(stack, person.id) == {mine}
    assert own.auth.refresh_session().session is not None
    own.auth.sign_out()
    client.auth.sign_out()


async def test_a_mistyped_authenticator_code_then_abandon_leaves_no_session(stack: StackProcess) -> None:
    person, client, _ = with_authenticator(stack)
    own, mine = signed_in(stack, person.email, person.password)
    account, code = await _reset_code(stack, person.email)
    with pytest.raises(AccountError, match="authenticator code was refused"):
        await account.reset_password(person.email, code, "abandoned-Passw0rd", "000000")
    assert len(sessions_of(stack, person.id)) == 2
    await account.abandon_reset()
    assert sessions_of(stack, person.id) == {mine}
    own.auth.sign_out()
    client.auth.sign_out()


async def test_a_refused_new_password_leaves_no_recovery_session(stack: StackProcess) -> None:
    """(Without an authenticator: verifying one ends the account's aal1 sessions, as GoTrue does.)"""
    person = create_user(stack.db_url, "customer")
    own, mine = signed_in(stack, person.email, person.password)
    account, code = await _reset_code(stack, person.email)
    with pytest.raises(AccountError, match="at least 6"):
        await account.reset_password(person.email, code, "short")  # under the server's minimum
    assert sessions_of(stack, person.id) == {mine}
    await account.abandon_reset()  # nothing kept: nothing else signed out
    assert sessions_of(stack, person.id) == {mine}
    own.auth.sign_out()

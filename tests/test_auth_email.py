"""The emailed GoTrue flows through supabase-py against the real localbase (issue 17): magic link
and email OTP, password recovery, resend, reauthentication, admin invite and generate_link, SSO
refused as GoTrue refuses it; the messages are read from the stack's local inbox, and every link
or code is used the way a person would (the link followed, the code typed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import psycopg
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from tests.stackproc import StackProcess

PASSWORD = "mail-flow-Passw0rd"
APP_URL = "http://127.0.0.1:8765/auth/callback"  # a loopback redirect, as a desktop app uses


def new_email() -> str:
    return f"mail-{uuid.uuid4().hex[:12]}@test.supportchat.local"


@pytest.fixture
def client(stack: StackProcess) -> Iterator[Client]:
    c = create_client(
        stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, httpx_client=httpx.Client(timeout=30))
    )
    yield c
    c.auth.close()


@pytest.fixture
def admin(stack: StackProcess) -> Iterator[Client]:
    c = create_client(
        stack.api_url,
        stack.service_role_key,
        ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=httpx.Client(timeout=30)),
    )
    yield c
    c.auth.close()


def inbox(stack: StackProcess, to: str) -> list[dict[str, object]]:
    """Messages to `to`, newest first, with their text (the stack's Mailpit-style inbox API)."""
    headers = {"apikey": stack.service_role_key}
    listed = httpx.get(f"{stack.api_url}/inbox/api/v1/messages", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    mine = [m for m in listed.json()["messages"] if m["To"][0]["Address"] == to]
    return [
        httpx.get(f"{stack.api_url}/inbox/api/v1/message/{m['ID']}", headers=headers, timeout=30).json() for m in mine
    ]


def last_mail(stack: StackProcess, to: str) -> tuple[str, str | None, str]:
    """(subject, link, code) of the newest message to `to`."""
    messages = inbox(stack, to)
    assert messages, f"no mail for {to}"
    text = str(messages[0]["Text"])
    link = re.search(r"(http://\S+/auth/v1/verify\?\S+)", text)
    code = re.search(r"code: (\d{6})", text)
    assert code, text
    return str(messages[0]["Subject"]), link.group(1) if link else None, code.group(1)


def follow(link: str) -> httpx.Response:
    answer = httpx.get(link, follow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return answer


def fragment(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment, keep_blank_values=True).items()}


def test_magic_link_pkce_signs_in_through_the_code_exchange(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_in_with_otp({"email": email, "options": {"email_redirect_to": APP_URL}})
    subject, link, _ = last_mail(stack, email)
    assert subject == "Your Magic Link" and link is not None and "pkce_" in link
    location = follow(link).headers["location"]
    assert location.startswith(APP_URL + "?code=")
    code = parse_qs(urlsplit(location).query)["code"][0]
    res = client.auth.exchange_code_for_session({"auth_code": code, "code_verifier": "", "redirect_to": ""})
    assert res.user is not None and res.user.email == email
    assert res.session is not None
    claims = jwt.decode(res.session.access_token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    assert claims["amr"][0]["method"] == "magiclink"
    # the link works once
    again = follow(link).headers["location"]
    assert fragment(again)["error_code"] == "otp_expired"


def test_email_otp_code_signs_in_once(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_in_with_otp({"email": email})
    _, _, code = last_mail(stack, email)
    res = client.auth.verify_otp({"email": email, "token": code, "type": "email"})
    assert res.session is not None and res.user is not None and res.user.email == email
    with pytest.raises(AuthApiError) as reused:
        client.auth.verify_otp({"email": email, "token": code, "type": "email"})
    assert reused.value.code == "otp_expired" and reused.value.status == 403


def test_otp_without_create_user_refuses_unknown_addresses(client: Client, stack: StackProcess) -> None:
    email = new_email()
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_otp({"email": email, "options": {"should_create_user": False}})
    assert refused.value.code == "otp_disabled"
    assert inbox(stack, email) == []


def test_wrong_otp_is_refused_and_a_second_request_is_rate_limited(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_in_with_otp({"email": email})
    with pytest.raises(AuthApiError) as wrong:
        client.auth.verify_otp({"email": email, "token": "000000", "type": "email"})
    assert wrong.value.code == "otp_expired"
    with pytest.raises(AuthApiError) as again:
        client.auth.sign_in_with_otp({"email": email})
    assert again.value.code == "over_email_send_rate_limit" and again.value.status == 429
    assert "For security purposes" in again.value.message
    assert len(inbox(stack, email)) == 1


def test_password_recovery_by_code_then_new_password(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    client.auth.sign_out()
    client.auth.reset_password_for_email(email, {"redirect_to": APP_URL})
    subject, link, code = last_mail(stack, email)
    assert subject == "Reset Your Password" and link is not None
    res = client.auth.verify_otp({"email": email, "token": code, "type": "recovery"})
    assert res.session is not None
    client.auth.update_user({"password": "brand-new-Passw0rd"})
    client.auth.sign_out()
    with pytest.raises(AuthApiError):
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert client.auth.sign_in_with_password({"email": email, "password": "brand-new-Passw0rd"}).session


def test_recovery_of_an_unknown_address_looks_the_same_and_sends_nothing(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.reset_password_for_email(email)  # no error: no account enumeration
    assert inbox(stack, email) == []


def test_resend_for_a_confirmed_user_sends_nothing(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    client.auth.resend({"type": "signup", "email": email})
    assert inbox(stack, email) == []


def test_reauthenticate_code_is_the_nonce_for_a_password_change(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    client.auth.reauthenticate()
    subject, link, code = last_mail(stack, email)
    assert subject == "Confirm reauthentication" and link is None
    with pytest.raises(AuthApiError) as wrong:
        client.auth.update_user({"password": "other-Passw0rd", "nonce": "123456" if code != "123456" else "654321"})
    assert wrong.value.code == "reauthentication_not_valid"
    client.auth.update_user({"password": "other-Passw0rd", "nonce": code})
    with pytest.raises(AuthApiError):  # the nonce is spent with the change
        client.auth.update_user({"password": "third-Passw0rd", "nonce": code})


def test_invite_accept_set_password_sign_in_with_the_role_the_admin_chose(
    admin: Client, client: Client, stack: StackProcess, db: psycopg.Connection
) -> None:
    email = new_email()
    invited = admin.auth.admin.invite_user_by_email(
        email, {"data": {"display_name": "New Agent"}, "redirect_to": APP_URL}
    )
    assert invited.user.email == email and invited.user.invited_at
    # the role is the admin's choice, set server-side in app_metadata (never user_metadata)
    admin.auth.admin.update_user_by_id(invited.user.id, {"app_metadata": {"role": "agent"}})
    with pytest.raises(AuthApiError):  # no password yet: nobody can sign in as the invitee
        client.auth.sign_in_with_password({"email": email, "password": "any-guess-Passw0rd"})

    subject, link, _ = last_mail(stack, email)
    assert subject == "You have been invited" and link is not None
    params = fragment(follow(link).headers["location"])
    assert params["type"] == "invite" and params["access_token"] and params["refresh_token"]
    client.auth.set_session(params["access_token"], params["refresh_token"])
    client.auth.update_user({"password": PASSWORD})
    client.auth.sign_out()

    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert session.user is not None and session.user.app_metadata["role"] == "agent"
    assert session.user.email_confirmed_at is not None
    profile = client.table("profiles").select("role,display_name").eq("id", session.user.id).single().execute()
    assert profile.data == {"role": "agent", "display_name": "New Agent"}
    assert db.execute("select invited_at is not null from auth.users where id = %s", (session.user.id,)).fetchone() == (
        True,
    )


def test_invite_of_a_registered_address_is_refused(admin: Client, client: Client) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as refused:
        admin.auth.admin.invite_user_by_email(email)
    assert refused.value.code == "email_exists"


def test_invite_needs_the_service_role(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as refused:
        client.auth.admin.invite_user_by_email(new_email())
    assert refused.value.status == 403


def test_generate_link_gives_a_working_link_and_code_without_sending(admin: Client, stack: StackProcess) -> None:
    email = new_email()
    res = admin.auth.admin.generate_link(
        {"type": "signup", "email": email, "password": PASSWORD, "options": {"redirect_to": APP_URL}}
    )
    props = res.properties
    assert props.verification_type == "signup" and props.redirect_to == APP_URL and len(props.email_otp) == 6
    assert inbox(stack, email) == []
    params = fragment(follow(props.action_link).headers["location"])
    assert params["type"] == "signup" and params["access_token"]
    recovery = admin.auth.admin.generate_link({"type": "recovery", "email": email})
    c = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        verified = c.auth.verify_otp({"email": email, "token": recovery.properties.email_otp, "type": "recovery"})
        assert verified.user is not None and verified.user.email == email
    finally:
        c.auth.close()
    with pytest.raises(AuthApiError) as unknown:
        admin.auth.admin.generate_link({"type": "recovery", "email": new_email()})
    assert unknown.value.code == "user_not_found"


def test_sso_answers_saml_disabled(client: Client) -> None:
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_sso({"domain": "example.com"})
    assert refused.value.status == 404 and refused.value.code == "saml_provider_disabled"
    assert refused.value.message == "SAML 2.0 is disabled"


def test_a_forged_or_stale_link_redirects_with_gotrue_error(stack: StackProcess) -> None:
    link = f"{stack.api_url}/auth/v1/verify?token={'0' * 56}&type=magiclink&redirect_to={APP_URL}"
    params = fragment(follow(link).headers["location"])
    assert params["error_code"] == "otp_expired" and params["error"] == "access_denied"


def test_a_redirect_to_another_site_falls_back_to_the_site_url(client: Client, stack: StackProcess) -> None:
    email = new_email()
    client.auth.sign_in_with_otp({"email": email, "options": {"email_redirect_to": "https://evil.example/steal"}})
    _, link, _ = last_mail(stack, email)
    assert link is not None and "evil.example" not in link
    assert follow(link).headers["location"].startswith("http://127.0.0.1:3000")


def test_the_inbox_is_for_the_service_role_only(stack: StackProcess) -> None:
    for key in ("", stack.anon_key):
        answer = httpx.get(f"{stack.api_url}/inbox/api/v1/messages", headers={"apikey": key}, timeout=30)
        assert answer.status_code == 401

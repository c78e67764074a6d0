"""MFA with TOTP through supabase-py's `auth.mfa` against the real localbase (issue 17): enrol,
challenge, verify (the session becomes aal2 with a `totp` amr entry, also after a refresh), a new
sign-in starts at aal1 with aal2 next, wrong and foreign codes and factors are refused, unenrolling
a verified factor needs aal2, a verified challenge cannot be replayed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import jwt
import pyotp
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from tests.stackproc import StackProcess

PASSWORD = "mfa-flow-Passw0rd"


def new_client(stack: StackProcess) -> Client:
    return create_client(
        stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, httpx_client=httpx.Client(timeout=30))
    )


@pytest.fixture
def client(stack: StackProcess) -> Iterator[Client]:
    c = new_client(stack)
    yield c
    c.auth.close()


def signed_up(client: Client) -> str:
    email = f"mfa-{uuid.uuid4().hex[:12]}@test.supportchat.local"
    client.auth.sign_up({"email": email, "password": PASSWORD})
    return email


def claims(client: Client, stack: StackProcess) -> dict[str, object]:
    session = client.auth.get_session()
    assert session is not None
    return dict(jwt.decode(session.access_token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated"))


def enrolled(client: Client) -> tuple[str, pyotp.TOTP]:
    enrolment = client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone app"})
    assert enrolment.totp is not None
    assert enrolment.totp.qr_code.startswith("data:image/svg+xml;utf-8,<?xml")
    assert enrolment.totp.uri.startswith("otpauth://totp/") and enrolment.totp.secret in enrolment.totp.uri
    return enrolment.id, pyotp.TOTP(enrolment.totp.secret)


def test_enrol_challenge_verify_reaches_aal2(client: Client, stack: StackProcess) -> None:
    signed_up(client)
    assert claims(client, stack)["aal"] == "aal1"
    factor_id, totp = enrolled(client)
    challenge = client.auth.mfa.challenge({"factor_id": factor_id})
    verified = client.auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": totp.now()})
    assert verified.access_token
    token = claims(client, stack)
    assert token["aal"] == "aal2"
    assert [entry["method"] for entry in token["amr"]][:2] == ["totp", "password"]  # type: ignore[index]
    level = client.auth.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal2", "aal2")
    factors = client.auth.mfa.list_factors()
    assert [(f.id, f.status) for f in factors.totp] == [(factor_id, "verified")]
    session = client.auth.get_session()
    assert session is not None
    client.auth.refresh_session(session.refresh_token)
    assert claims(client, stack)["aal"] == "aal2", "a refresh keeps the session's assurance level"


def test_new_sign_in_is_aal1_until_the_second_factor(client: Client, stack: StackProcess) -> None:
    email = signed_up(client)
    factor_id, totp = enrolled(client)
    client.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": totp.now()})
    other = new_client(stack)
    try:
        other.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        level = other.auth.mfa.get_authenticator_assurance_level()
        assert (level.current_level, level.next_level) == ("aal1", "aal2")
        with pytest.raises(AuthApiError) as unenrol:
            other.auth.mfa.unenroll({"factor_id": factor_id})
        assert unenrol.value.code == "insufficient_aal"
        with pytest.raises(AuthApiError) as second:  # a password alone cannot add a factor either
            other.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "attacker app"})
        assert second.value.code == "insufficient_aal"
        other.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": totp.now()})
        assert other.auth.mfa.get_authenticator_assurance_level().current_level == "aal2"
        assert other.auth.mfa.unenroll({"factor_id": factor_id}).id == factor_id
        user = other.auth.get_user()
        assert user is not None and not user.user.factors
    finally:
        other.auth.close()


def test_wrong_code_and_foreign_factor_are_refused(client: Client, stack: StackProcess) -> None:
    signed_up(client)
    factor_id, totp = enrolled(client)
    challenge = client.auth.mfa.challenge({"factor_id": factor_id})
    wrong = "000000" if totp.now() != "000000" else "111111"
    with pytest.raises(AuthApiError) as refused:
        client.auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": wrong})
    assert refused.value.code == "mfa_verification_failed"
    assert claims(client, stack)["aal"] == "aal1"
    mallory = new_client(stack)
    try:
        signed_up(mallory)
        with pytest.raises(AuthApiError) as foreign:
            mallory.auth.mfa.challenge({"factor_id": factor_id})
        assert foreign.value.code == "mfa_factor_not_found" and foreign.value.status == 404
        with pytest.raises(AuthApiError):  # nor may she verify with the victim's challenge
            mallory.auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": totp.now()})
    finally:
        mallory.auth.close()


def test_a_verified_challenge_cannot_be_replayed(client: Client, stack: StackProcess) -> None:
    """Replaying a verify request (same challenge, same code) is refused with GoTrue's own answer for a
    challenge already verified; GoTrue keeps no list of used codes, so the same code answers a *new*
    challenge while its 30 s step lasts (the app's two-step sign-in always asks a new challenge)."""
    signed_up(client)
    factor_id, totp = enrolled(client)
    challenge = client.auth.mfa.challenge({"factor_id": factor_id})
    code = totp.now()
    client.auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": code})
    with pytest.raises(AuthApiError) as replayed:
        client.auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": code})
    assert (replayed.value.code, replayed.value.status) == ("mfa_ip_address_mismatch", 422)
    assert replayed.value.message == "Challenge and verify IP addresses mismatch."
    fresh = client.auth.mfa.challenge({"factor_id": factor_id})
    assert client.auth.mfa.verify({"factor_id": factor_id, "challenge_id": fresh.id, "code": totp.now()}).access_token


def test_phone_factors_are_disabled_and_names_are_unique(client: Client) -> None:
    signed_up(client)
    with pytest.raises(AuthApiError) as phone:
        client.auth.mfa.enroll({"factor_type": "phone", "phone": "+15555550100"})
    assert phone.value.code == "mfa_phone_enroll_not_enabled"
    client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "laptop"})
    with pytest.raises(AuthApiError) as same:
        client.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "laptop"})
    assert same.value.code == "mfa_factor_name_conflict"


def test_an_admin_removes_a_lost_factor(client: Client, stack: StackProcess) -> None:
    signed_up(client)
    factor_id, totp = enrolled(client)
    client.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": totp.now()})
    user = client.auth.get_user()
    assert user is not None
    uid = user.user.id
    with pytest.raises(AuthApiError) as not_admin:  # a user's own token is no admin key
        client.auth.admin.mfa.list_factors({"user_id": uid})
    assert not_admin.value.status == 403
    admin = create_client(
        stack.api_url, stack.service_role_key, ClientOptions(auto_refresh_token=False, persist_session=False)
    )
    try:
        listed = admin.auth.admin.mfa.list_factors({"user_id": uid})
        assert [(f.id, f.status) for f in listed] == [(factor_id, "verified")]
        assert admin.auth.admin.mfa.delete_factor({"user_id": uid, "id": factor_id}).id == factor_id
        assert admin.auth.admin.mfa.list_factors({"user_id": uid}) == []
        with pytest.raises(AuthApiError) as gone:
            admin.auth.admin.mfa.delete_factor({"user_id": uid, "id": factor_id})
        assert gone.value.code == "mfa_factor_not_found"
    finally:
        admin.auth.close()
    session = client.auth.get_session()
    assert session is not None
    client.auth.refresh_session(session.refresh_token)
    assert claims(client, stack)["aal"] == "aal1", "without the factor the session is back to aal1"


def test_a_password_alone_cannot_change_an_mfa_users_email_or_password(client: Client, stack: StackProcess) -> None:
    """GoTrue's UserUpdate: with a verified factor, only an aal2 session changes the login (an attacker holding
    the password alone must not lock the owner out and move the account's email to theirs)."""
    email = signed_up(client)
    factor_id, totp = enrolled(client)
    client.auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": totp.now()})
    attacker = new_client(stack)
    try:
        attacker.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        assert claims(attacker, stack)["aal"] == "aal1"
        for change in ({"password": "taken-over-Passw0rd"}, {"email": f"thief-{uuid.uuid4().hex[:8]}@example.com"}):
            with pytest.raises(AuthApiError) as refused:
                attacker.auth.update_user(change)  # type: ignore[arg-type]
            assert refused.value.status == 401
            assert refused.value.code == "insufficient_aal"
        assert attacker.auth.update_user({"data": {"nickname": "still fine"}}).user.user_metadata["nickname"] == (
            "still fine"
        ), "profile data is not the login: aal1 may change it"
        # the owner's aal2 session changes the password; the old one then stops working
        assert client.auth.update_user({"password": "owners-new-Passw0rd"}).user.email == email
    finally:
        attacker.auth.close()
    with pytest.raises(AuthApiError):
        new_client(stack).auth.sign_in_with_password({"email": email, "password": PASSWORD})

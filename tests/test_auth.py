"""/auth/v1 through supabase-py's official clients: sign-up, sign-in, refresh rotation and reuse
detection, get/update user, sign-out scopes, banned users — against the real localbase.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import jwt
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, acreate_client, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from tests.conftest import Users
from tests.stackproc import StackProcess

PASSWORD = "s3cret-Passw0rd"


def new_email() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}@test.supportchat.local"


def anon_client(stack: StackProcess) -> Client:
    """A fresh anon-key client (own in-memory session), as an app would create it.

    One httpx client serves auth and REST: supabase-py drops (without closing) its REST client on
    every auth event, which would leak sockets; a shared client passed in is closed by its owner.
    """
    return create_client(
        stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, httpx_client=httpx.Client(timeout=30))
    )


@pytest.fixture
def client(stack: StackProcess) -> Iterator[Client]:
    c = anon_client(stack)
    yield c
    c.auth.close()


@pytest.fixture
def second(stack: StackProcess) -> Iterator[Client]:
    """Another device of the same person."""
    c = anon_client(stack)
    yield c
    c.auth.close()


def claims_of(token: str, stack: StackProcess) -> dict[str, object]:
    return dict(jwt.decode(token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated"))


def test_sign_up_returns_session_and_creates_profile(
    client: Client, stack: StackProcess, db: psycopg.Connection
) -> None:
    email = new_email()
    res = client.auth.sign_up(
        {"email": email, "password": PASSWORD, "options": {"data": {"display_name": "Pat Newcomer", "role": "admin"}}}
    )
    assert res.session is not None and res.user is not None
    assert res.user.email == email
    assert res.user.user_metadata == {"display_name": "Pat Newcomer", "role": "admin"}
    assert res.user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert res.user.email_confirmed_at is not None and res.user.role == "authenticated"
    assert res.user.identities and res.user.identities[0].provider == "email"
    assert res.session.token_type == "bearer" and res.session.expires_in == 3600
    # the profile trigger fired; a role in user_metadata is ignored
    row = db.execute("select role, display_name from public.profiles where id = %s", (res.user.id,)).fetchone()
    assert row == ("customer", "Pat Newcomer")
    stored = db.execute("select encrypted_password from auth.users where id = %s", (res.user.id,)).fetchone()
    assert stored is not None and stored[0].startswith("$2") and PASSWORD not in stored[0]


def test_access_token_carries_gotrue_claims(client: Client, stack: StackProcess) -> None:
    email = new_email()
    res = client.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"a": 1}}})
    assert res.session is not None and res.user is not None
    header = jwt.get_unverified_header(res.session.access_token)
    assert header["alg"] == "HS256"
    claims = claims_of(res.session.access_token, stack)
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "email",
        "phone",
        "app_metadata",
        "user_metadata",
        "role",
        "aal",
        "amr",
        "session_id",
        "is_anonymous",
    }
    assert claims["iss"] == f"{stack.api_url}/auth/v1"
    assert claims["sub"] == res.user.id and claims["aud"] == "authenticated" and claims["role"] == "authenticated"
    assert claims["email"] == email and claims["phone"] == ""
    assert claims["user_metadata"] == {"a": 1} and claims["aal"] == "aal1" and claims["is_anonymous"] is False
    assert claims["exp"] == claims["iat"] + 3600 == res.session.expires_at  # type: ignore[operator]
    amr = claims["amr"]
    assert isinstance(amr, list) and amr[0]["method"] == "password"
    uuid.UUID(str(claims["session_id"]))


def test_duplicate_sign_up_is_user_already_exists(client: Client) -> None:
    email = new_email()
    client.auth.sign_up({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_up({"email": email.upper(), "password": "another-password"})
    assert err.value.status == 422 and err.value.code == "user_already_exists"


def test_weak_password_lists_reasons(client: Client) -> None:
    with pytest.raises(AuthWeakPasswordError) as err:
        client.auth.sign_up({"email": new_email(), "password": "12345"})
    assert err.value.status == 422 and err.value.code == "weak_password"
    assert err.value.reasons == ["length"]


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.com", "space in@example.com"])
def test_invalid_email_is_validation_failed(client: Client, email: str) -> None:
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_up({"email": email, "password": PASSWORD})
    assert err.value.status == 400 and err.value.code == "validation_failed"


def test_sign_in_with_password(client: Client, users: Users, stack: StackProcess) -> None:
    res = client.auth.sign_in_with_password({"email": users.agent.email, "password": users.agent.password})
    assert res.session is not None and res.user is not None
    assert res.user.id == users.agent.id and res.user.app_metadata["role"] == "agent"
    assert res.user.last_sign_in_at is not None
    assert claims_of(res.session.access_token, stack)["app_metadata"] == res.user.app_metadata
    session = client.auth.get_session()
    assert session is not None and session.access_token == res.session.access_token


@pytest.mark.parametrize("which", ["wrong password", "unknown email"])
def test_bad_credentials(client: Client, users: Users, which: str) -> None:
    email = users.customer.email if which == "wrong password" else new_email()
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_in_with_password({"email": email, "password": "not-the-password"})
    assert err.value.status == 400 and err.value.code == "invalid_credentials"
    assert err.value.message == "Invalid login credentials"


def test_refresh_rotates_token_and_keeps_session(client: Client, stack: StackProcess) -> None:
    first = client.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert first is not None
    second = client.auth.refresh_session().session
    assert second is not None
    assert second.refresh_token != first.refresh_token
    assert claims_of(second.access_token, stack)["session_id"] == claims_of(first.access_token, stack)["session_id"]
    third = client.auth.refresh_session(second.refresh_token).session
    assert third is not None and third.refresh_token not in (first.refresh_token, second.refresh_token)
    assert client.auth.get_user() is not None


def test_replay_of_just_rotated_token_returns_the_active_child(client: Client) -> None:
    """A client that lost the answer to its refresh may retry within the reuse interval."""
    first = client.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert first is not None
    child = client.auth.refresh_session(first.refresh_token).session
    assert child is not None
    again = client.auth.refresh_session(first.refresh_token).session
    assert again is not None and again.refresh_token == child.refresh_token
    # and the child still works
    assert client.auth.refresh_session(child.refresh_token).session is not None


def age_token(db: psycopg.Connection, token: str, seconds: int = 60) -> None:
    """Let time pass for a rotated token: its revocation moves out of the reuse interval."""
    db.execute(
        "update auth.refresh_tokens set updated_at = updated_at - make_interval(secs => %s) where token = %s",
        (seconds, token),
    )


def test_reuse_of_an_older_token_revokes_the_family(client: Client, db: psycopg.Connection) -> None:
    first = client.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert first is not None
    child = client.auth.refresh_session(first.refresh_token).session
    assert child is not None
    grandchild = client.auth.refresh_session(child.refresh_token).session
    assert grandchild is not None
    age_token(db, first.refresh_token)
    with pytest.raises(AuthApiError) as err:
        client.auth.refresh_session(first.refresh_token)  # stolen, replayed later
    assert err.value.status == 400 and err.value.code == "refresh_token_already_used"
    for token in (grandchild.refresh_token, child.refresh_token):  # the whole family is revoked
        age_token(db, token)
        with pytest.raises(AuthApiError) as err:
            client.auth.refresh_session(token)
        assert err.value.code == "refresh_token_already_used"


def test_parent_of_the_active_token_still_gets_it_later(client: Client, second: Client, db: psycopg.Connection) -> None:
    """Two holders of one session (app and sync engine): the one that refreshes second, even much
    later, gets the token the first one got instead of being logged out (as GoTrue does)."""
    first = client.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
    assert first is not None
    child = client.auth.refresh_session(first.refresh_token).session
    assert child is not None
    age_token(db, first.refresh_token, 3600)
    late = second.auth.refresh_session(first.refresh_token).session
    assert late is not None and late.refresh_token == child.refresh_token
    assert late.user.id == child.user.id


def test_unknown_refresh_token(client: Client) -> None:
    with pytest.raises(AuthApiError) as err:
        client.auth.refresh_session("no-such-token")
    assert err.value.status == 400 and err.value.code == "refresh_token_not_found"


def test_get_user_is_not_wrapped_and_uses_the_token(client: Client, users: Users) -> None:
    session = client.auth.sign_in_with_password(
        {"email": users.customer.email, "password": users.customer.password}
    ).session
    assert session is not None
    got = client.auth.get_user(session.access_token)
    assert got is not None and got.user.id == users.customer.id and got.user.email == users.customer.email


def test_update_user_metadata_email_and_password(client: Client, second: Client, stack: StackProcess) -> None:
    email = new_email()
    signed = client.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"a": 1, "b": 2}}})
    assert signed.user is not None
    other = second.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert other is not None
    updated = client.auth.update_user({"data": {"b": None, "c": 3}})
    assert updated.user.user_metadata == {"a": 1, "c": 3}
    new_address = new_email()
    updated = client.auth.update_user({"email": new_address, "password": "brand-new-password"})
    assert updated.user.email == new_address
    # the new password works, the old one does not; the other device was signed out
    fresh = anon_client(stack)
    try:
        assert fresh.auth.sign_in_with_password({"email": new_address, "password": "brand-new-password"}).user
        with pytest.raises(AuthApiError):
            fresh.auth.sign_in_with_password({"email": new_address, "password": PASSWORD})
    finally:
        fresh.auth.close()
    with pytest.raises(AuthApiError) as err:
        second.auth.refresh_session(other.refresh_token)
    assert err.value.code == "refresh_token_not_found"
    assert client.auth.get_user() is not None  # this device's session survives


def test_update_user_same_password_and_weak_password(client: Client) -> None:
    client.auth.sign_up({"email": new_email(), "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.update_user({"password": PASSWORD})
    assert err.value.status == 422 and err.value.code == "same_password"
    with pytest.raises(AuthWeakPasswordError):
        client.auth.update_user({"password": "abc"})


def test_update_user_cannot_touch_app_metadata(client: Client, db: psycopg.Connection) -> None:
    res = client.auth.sign_up({"email": new_email(), "password": PASSWORD})
    assert res.user is not None
    with pytest.raises(AuthApiError) as err:
        client.auth.update_user({"data": {"x": 1}, "app_metadata": {"role": "admin"}})  # type: ignore[typeddict-unknown-key]
    assert err.value.status == 403 and err.value.code == "not_admin"
    row = db.execute(
        "select raw_app_meta_data, raw_user_meta_data from auth.users where id = %s", (res.user.id,)
    ).fetchone()
    assert row is not None and "role" not in row[0] and row[1] == {}
    profile = db.execute("select role from public.profiles where id = %s", (res.user.id,)).fetchone()
    assert profile == ("customer",)


def test_update_user_email_taken(client: Client, users: Users) -> None:
    client.auth.sign_up({"email": new_email(), "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.update_user({"email": users.agent.email})
    assert err.value.status == 422 and err.value.code == "email_exists"


def test_sign_out_global_revokes_every_session(client: Client, second: Client) -> None:
    email = new_email()
    first = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    other = second.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert first is not None and other is not None
    client.auth.sign_out()
    assert client.auth.get_session() is None
    for token in (first.refresh_token, other.refresh_token):
        with pytest.raises(AuthApiError) as err:
            second.auth.refresh_session(token)
        assert err.value.code == "refresh_token_not_found"
    with pytest.raises(AuthApiError) as err:
        second.auth.get_user(other.access_token)
    assert err.value.status == 403 and err.value.code == "session_not_found"


def test_sign_out_local_keeps_other_sessions(client: Client, second: Client) -> None:
    email = new_email()
    first = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    other = second.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert first is not None and other is not None
    client.auth.sign_out({"scope": "local"})
    with pytest.raises(AuthApiError) as err:
        second.auth.get_user(first.access_token)
    assert err.value.code == "session_not_found"
    with pytest.raises(AuthApiError):
        second.auth.refresh_session(first.refresh_token)
    assert second.auth.get_user() is not None
    assert second.auth.refresh_session().session is not None


def test_sign_out_others_keeps_this_session(client: Client, second: Client) -> None:
    email = new_email()
    first = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    other = second.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert first is not None and other is not None
    client.auth.sign_out({"scope": "others"})
    assert client.auth.refresh_session().session is not None
    with pytest.raises(AuthApiError):
        second.auth.refresh_session(other.refresh_token)


def test_banned_user_cannot_sign_in_refresh_or_read(
    client: Client, stack: StackProcess, db: psycopg.Connection
) -> None:
    email = new_email()
    session = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    db.execute("update auth.users set banned_until = now() + interval '1 hour' where email = %s", (email,))
    with pytest.raises(AuthApiError) as err:
        client.auth.refresh_session(session.refresh_token)
    assert err.value.code == "user_banned"
    with pytest.raises(AuthApiError) as err:
        client.auth.get_user(session.access_token)
    assert err.value.status == 403 and err.value.code == "user_banned"
    fresh = anon_client(stack)
    try:
        with pytest.raises(AuthApiError) as err:
            fresh.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        assert err.value.code == "user_banned"
        db.execute("update auth.users set banned_until = now() - interval '1 second' where email = %s", (email,))
        assert fresh.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None
    finally:
        fresh.auth.close()


async def test_async_client_round_trip(stack: StackProcess) -> None:
    client = await acreate_client(stack.api_url, stack.anon_key)
    try:
        email = new_email()
        res = await client.auth.sign_up({"email": email, "password": PASSWORD})
        assert res.session is not None
        refreshed = await client.auth.refresh_session()
        assert refreshed.session is not None and refreshed.session.refresh_token != res.session.refresh_token
        got = await client.auth.get_user()
        assert got is not None and got.user.email == email
        updated = await client.auth.update_user({"data": {"display_name": "Async Person"}})
        assert updated.user.user_metadata == {"display_name": "Async Person"}
        await client.auth.sign_out()
        assert await client.auth.get_session() is None
        with pytest.raises(AuthApiError) as err:
            await client.auth.refresh_session(refreshed.session.refresh_token)
        assert err.value.code == "refresh_token_not_found"
        signed = await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        assert signed.user is not None and signed.user.user_metadata["display_name"] == "Async Person"
        await client.auth.sign_out({"scope": "local"})
    finally:
        await client.auth.close()


def test_session_token_drives_rest_rls(client: Client, second: Client, stack: StackProcess) -> None:
    """The access token a sign-in issues is what PostgREST-style RLS sees: own rows only."""
    client.auth.sign_up({"email": new_email(), "password": PASSWORD})
    ticket = client.table("tickets").insert({"subject": "Printer on fire"}).execute().data[0]
    me = client.auth.get_user()
    assert me is not None and ticket["customer_id"] == me.user.id
    client.table("messages").insert({"ticket_id": ticket["id"], "content": "Please help"}).execute()
    mine = client.table("messages").select("content, sender_id").eq("ticket_id", ticket["id"]).execute().data
    assert mine == [{"content": "Please help", "sender_id": me.user.id}]
    # another customer, signed in through auth, sees nothing of it
    second.auth.sign_up({"email": new_email(), "password": PASSWORD})
    assert second.table("tickets").select("id").eq("id", ticket["id"]).execute().data == []
    assert second.table("messages").select("id").eq("ticket_id", ticket["id"]).execute().data == []
    # after a refresh the rotated session keeps working; after sign-out the client is anon again
    client.auth.refresh_session()
    assert len(client.table("tickets").select("id").eq("id", ticket["id"]).execute().data) == 1
    client.auth.sign_out()
    with pytest.raises(APIError) as err:  # anon has no grant on tickets at all
        client.table("tickets").select("id").eq("id", ticket["id"]).execute()
    assert err.value.code == "42501"


def test_get_claims_verifies_hs256_tokens_with_the_server(client: Client, stack: StackProcess) -> None:
    res = client.auth.sign_up({"email": new_email(), "password": PASSWORD})
    assert res.user is not None and res.session is not None
    claims = client.auth.get_claims()
    assert claims is not None and claims["claims"]["sub"] == res.user.id
    assert httpx.get(f"{stack.api_url}/auth/v1/.well-known/jwks.json").json() == {"keys": []}
    client.auth.sign_out({"scope": "local"})
    with pytest.raises(AuthApiError) as err:  # HS256: get_claims asks GET /user, which knows the session is gone
        client.auth.get_claims(res.session.access_token)
    assert err.value.code == "session_not_found"

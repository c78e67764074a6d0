"""The Auth admin API (/auth/v1/admin/users) through supabase-py's `auth.admin`: CRUD with the
service key, paging, app_metadata.role following into public.profiles, bans — and refusal for
anyone who is not service_role.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from supabase import Client, ClientOptions, acreate_client, create_client
from supabase_auth.errors import AuthApiError

from tests.conftest import Users
from tests.stackproc import StackProcess

PASSWORD = "admin-made-Passw0rd"


def new_email() -> str:
    return f"admin-api-{uuid.uuid4().hex[:12]}@test.supportchat.local"


@pytest.fixture
def service(stack: StackProcess) -> Iterator[Client]:
    c = create_client(
        stack.api_url, stack.service_role_key, ClientOptions(auto_refresh_token=False, persist_session=False)
    )
    yield c
    c.auth.close()


@pytest.fixture
def client(stack: StackProcess) -> Iterator[Client]:
    c = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False))
    yield c
    c.auth.close()


def profile_role(db: psycopg.Connection, user_id: str) -> str | None:
    row = db.execute("select role from public.profiles where id = %s", (user_id,)).fetchone()
    return None if row is None else str(row[0])


def test_create_get_update_delete(service: Client, client: Client, db: psycopg.Connection) -> None:
    email = new_email()
    created = service.auth.admin.create_user(
        {
            "email": email,
            "password": PASSWORD,
            "email_confirm": True,
            "user_metadata": {"display_name": "Made By Admin"},
            "app_metadata": {"role": "agent"},
        }
    ).user
    assert created.email == email and created.email_confirmed_at is not None
    assert created.app_metadata == {"provider": "email", "providers": ["email"], "role": "agent"}
    assert created.user_metadata == {"display_name": "Made By Admin"}
    assert profile_role(db, created.id) == "agent"
    # the new user can sign in with the password the admin set
    signed = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed.user is not None and signed.user.id == created.id

    fetched = service.auth.admin.get_user_by_id(created.id).user
    assert fetched.id == created.id and fetched.last_sign_in_at is not None

    updated = service.auth.admin.update_user_by_id(
        created.id,
        {
            "user_metadata": {"team": "billing"},
            "app_metadata": {"role": "admin"},
        },
    ).user
    assert updated.user_metadata == {"display_name": "Made By Admin", "team": "billing"}
    assert updated.app_metadata["role"] == "admin"
    assert profile_role(db, created.id) == "admin"  # the migration's trigger followed app_metadata.role

    service.auth.admin.delete_user(created.id)
    with pytest.raises(AuthApiError) as err:
        service.auth.admin.get_user_by_id(created.id)
    assert err.value.status == 404 and err.value.code == "user_not_found"
    assert profile_role(db, created.id) is None
    with pytest.raises(AuthApiError) as err:
        client.auth.refresh_session(signed.session.refresh_token if signed.session else "")
    assert err.value.code == "refresh_token_not_found"


def test_role_change_to_customer_and_back(service: Client, users: Users, db: psycopg.Connection) -> None:
    uid = service.auth.admin.create_user({"email": new_email(), "password": PASSWORD, "email_confirm": True}).user.id
    assert profile_role(db, uid) == "customer"
    service.auth.admin.update_user_by_id(uid, {"app_metadata": {"role": "agent"}})
    assert profile_role(db, uid) == "agent"
    service.auth.admin.update_user_by_id(uid, {"app_metadata": {"role": "customer"}})
    assert profile_role(db, uid) == "customer"
    # user_metadata never changes the role
    service.auth.admin.update_user_by_id(uid, {"user_metadata": {"role": "admin"}})
    assert profile_role(db, uid) == "customer"


def test_create_duplicate_is_email_exists(service: Client, users: Users) -> None:
    with pytest.raises(AuthApiError) as err:
        service.auth.admin.create_user({"email": users.customer.email.upper(), "password": PASSWORD})
    assert err.value.status == 422 and err.value.code == "email_exists"


def test_create_without_confirmation_cannot_sign_in(service: Client, client: Client) -> None:
    email = new_email()
    service.auth.admin.create_user({"email": email, "password": PASSWORD})
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert err.value.code == "email_not_confirmed"


def test_list_users_pages(service: Client) -> None:
    made = {service.auth.admin.create_user({"email": new_email(), "password": PASSWORD}).user.id for _ in range(3)}
    first = service.auth.admin.list_users(page=1, per_page=2)
    second = service.auth.admin.list_users(page=2, per_page=2)
    assert len(first) == 2 and len(second) == 2
    assert not {u.id for u in first} & {u.id for u in second}
    # newest first: the three just made lead the list
    newest = [u.id for u in first] + [second[0].id]
    assert set(newest[:3]) == made
    everyone = service.auth.admin.list_users(per_page=1000)
    assert made <= {u.id for u in everyone}


def test_ban_and_unban(service: Client, client: Client) -> None:
    email = new_email()
    uid = service.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user.id
    banned = service.auth.admin.update_user_by_id(uid, {"ban_duration": "24h"}).user
    assert banned.banned_until is not None
    with pytest.raises(AuthApiError) as err:
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert err.value.code == "user_banned"
    unbanned = service.auth.admin.update_user_by_id(uid, {"ban_duration": "none"}).user
    assert unbanned.banned_until is None
    assert client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session is not None
    with pytest.raises(AuthApiError) as err:
        service.auth.admin.update_user_by_id(uid, {"ban_duration": "forever"})
    assert err.value.status == 400 and err.value.code == "validation_failed"


def test_admin_password_change_signs_user_out(service: Client, client: Client) -> None:
    email = new_email()
    uid = service.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user.id
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert session is not None
    service.auth.admin.update_user_by_id(uid, {"password": "changed-by-admin"})
    with pytest.raises(AuthApiError):
        client.auth.refresh_session(session.refresh_token)
    assert client.auth.sign_in_with_password({"email": email, "password": "changed-by-admin"}).session


def test_soft_delete_frees_the_email(service: Client, client: Client) -> None:
    email = new_email()
    uid = service.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}).user.id
    service.auth.admin.delete_user(uid, should_soft_delete=True)
    gone = service.auth.admin.get_user_by_id(uid).user
    assert gone.deleted_at is not None and gone.email in ("", None)
    with pytest.raises(AuthApiError):
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert client.auth.sign_up({"email": email, "password": PASSWORD}).user is not None


def test_admin_api_with_a_user_token_is_not_admin(stack: StackProcess, users: Users) -> None:
    """Even an app-level admin's user token is not an Auth admin: only the service key is."""
    for who in (users.customer, users.admin):
        signer = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False))
        try:
            session = signer.auth.sign_in_with_password({"email": who.email, "password": who.password}).session
            assert session is not None
            token = session.access_token
        finally:
            signer.auth.close()
        c = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(headers={"Authorization": f"Bearer {token}"}, auto_refresh_token=False),
        )
        try:
            with pytest.raises(AuthApiError) as err:
                c.auth.admin.list_users()
            assert err.value.status == 403 and err.value.code == "not_admin"
            with pytest.raises(AuthApiError) as err:
                c.auth.admin.update_user_by_id(who.id, {"app_metadata": {"role": "admin"}})
            assert err.value.code == "not_admin"
        finally:
            c.auth.close()
    # a forged-looking token whose session does not exist is refused before the role is even looked at
    c = create_client(
        stack.api_url,
        stack.anon_key,
        ClientOptions(
            headers={"Authorization": f"Bearer {stack.mint(users.admin.id, role='service_role')}"},
            auto_refresh_token=False,
        ),
    )
    try:
        with pytest.raises(AuthApiError) as err:
            c.auth.admin.list_users()
        assert err.value.status == 403 and err.value.code == "session_not_found"
    finally:
        c.auth.close()


def test_admin_api_with_the_anon_key_is_not_admin(client: Client, users: Users) -> None:
    with pytest.raises(AuthApiError) as err:
        client.auth.admin.delete_user(users.customer.id)
    assert err.value.status == 403 and err.value.code == "not_admin"


def test_admin_api_with_a_signed_in_users_session_is_not_admin(
    client: Client, users: Users, db: psycopg.Connection
) -> None:
    client.auth.sign_in_with_password({"email": users.customer.email, "password": users.customer.password})
    # supabase-py's admin API keeps the key the client was created with; call it with the user's JWT explicitly
    session = client.auth.get_session()
    assert session is not None
    with pytest.raises(AuthApiError) as err:
        client.auth.admin._request(
            "PUT",
            f"admin/users/{users.customer.id}",
            jwt=session.access_token,
            body={"app_metadata": {"role": "admin"}},
        )
    assert err.value.code == "not_admin"
    assert profile_role(db, users.customer.id) == "customer"


def test_expired_service_token_is_rejected(stack: StackProcess) -> None:
    token = stack.mint(None, role="service_role", ttl=-10)
    c = create_client(
        stack.api_url,
        stack.anon_key,
        ClientOptions(headers={"Authorization": f"Bearer {token}"}, auto_refresh_token=False),
    )
    try:
        with pytest.raises(AuthApiError) as err:
            c.auth.admin.list_users()
        assert err.value.status == 403 and err.value.code == "bad_jwt"
    finally:
        c.auth.close()


async def test_async_admin(stack: StackProcess, db: psycopg.Connection) -> None:
    service = await acreate_client(stack.api_url, stack.service_role_key)
    try:
        email = new_email()
        user = (
            await service.auth.admin.create_user(
                {"email": email, "password": PASSWORD, "app_metadata": {"role": "agent"}}
            )
        ).user
        assert profile_role(db, user.id) == "agent"
        got = (await service.auth.admin.get_user_by_id(user.id)).user
        assert got.email == email and got.email_confirmed_at is None
        confirmed = (await service.auth.admin.update_user_by_id(user.id, {"email_confirm": True})).user
        assert confirmed.email_confirmed_at is not None
        started = time.monotonic()
        listed = await service.auth.admin.list_users(per_page=5)
        assert listed and time.monotonic() - started < 5
        await service.auth.admin.delete_user(user.id)
        assert profile_role(db, user.id) is None
    finally:
        await service.auth.close()

"""A validly signed JWT whose `role` claim is not an API role must not reach data: REST switches to
the role named in the token (as PostgREST does), so only the roles `authenticator` may become
(anon, authenticated, service_role) can work; a superuser or login role name must fail cleanly.
Also tokens without `exp` and with a wrong algorithm, and the realtime join with such roles.
"""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.conftest import Users
from tests.stackproc import StackProcess


def _get(stack: StackProcess, token: str, path: str = "messages?select=id&limit=1") -> httpx.Response:
    return httpx.get(
        f"{stack.api_url}/rest/v1/{path}", headers={"apikey": stack.anon_key, "Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize(
    "role",
    ["postgres", "supabase_admin", "authenticator", "supabase_realtime_admin", "pg_read_all_data", "none", "PUBLIC"],
)
def test_token_naming_a_non_api_role_reads_nothing(stack: StackProcess, users: Users, role: str) -> None:
    r = _get(stack, stack.mint(users.admin.id, role=role))
    assert r.status_code in (401, 403), (r.status_code, r.text)
    body = r.json()
    assert isinstance(body, dict) and "code" in body and "Traceback" not in r.text


def test_token_without_exp_is_accepted_like_postgrest(stack: StackProcess, users: Users) -> None:
    token = jwt.encode(
        {"role": "authenticated", "sub": users.customer.id, "iat": int(time.time())},
        stack.jwt_secret,
        algorithm="HS256",
    )
    assert _get(stack, token).status_code == 200


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_token_with_another_hmac_alg_is_refused(stack: StackProcess, users: Users, alg: str) -> None:
    token = jwt.encode({"role": "service_role", "exp": int(time.time()) + 60}, stack.jwt_secret, algorithm=alg)
    r = _get(stack, token)
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"


@pytest.mark.parametrize("select", ["*,users(*)", "*,auth.users(*)", "*,users!profiles_id_fkey(*)"])
def test_embedding_through_a_foreign_key_into_auth_users_is_not_possible(
    stack: StackProcess, users: Users, select: str
) -> None:
    r = _get(stack, stack.mint(users.customer.id), f"profiles?select={select}&id=eq.{users.customer.id}")
    assert r.status_code == 400 and "encrypted_password" not in r.text, r.text

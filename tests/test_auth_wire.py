"""/auth/v1 on the wire, written as an attacker and a strict client would probe it: both GoTrue
error shapes, API keys, forged/expired/`alg:none` tokens, malformed and oversized bodies, unknown
routes, concurrent refreshes. Raw httpx, because these are exactly the requests a well-behaved
client never sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Users
from tests.stackproc import StackProcess

NEW_API = {"X-Supabase-Api-Version": "2024-01-01"}


@pytest.fixture
def http(stack: StackProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{stack.api_url}/auth/v1",
        timeout=30,
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"},
    ) as c:
        yield c


def sign_up(http: httpx.Client) -> dict[str, Any]:
    email = f"wire-{uuid.uuid4().hex[:12]}@test.supportchat.local"
    res = http.post("/signup", json={"email": email, "password": "wire-password"})
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_error_shape_follows_api_version(http: httpx.Client) -> None:
    creds = {"email": "nobody@test.supportchat.local", "password": "whatever1"}
    legacy = http.post("/token?grant_type=password", json=creds)
    assert legacy.status_code == 400
    assert legacy.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    assert legacy.headers["x-sb-error-code"] == "invalid_credentials"
    assert "x-supabase-api-version" not in legacy.headers
    new = http.post("/token?grant_type=password", json=creds, headers=NEW_API)
    assert new.status_code == 400
    assert new.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert new.headers["x-supabase-api-version"] == "2024-01-01"
    later = http.post("/token?grant_type=password", json=creds, headers={"X-Supabase-Api-Version": "2025-06-30"})
    assert later.headers["x-supabase-api-version"] == "2024-01-01" and later.json()["code"] == "invalid_credentials"
    garbage = http.post("/token?grant_type=password", json=creds, headers={"X-Supabase-Api-Version": "yesterday"})
    assert garbage.json()["error_code"] == "invalid_credentials" and "x-supabase-api-version" not in garbage.headers


def test_weak_password_shapes(http: httpx.Client) -> None:
    body = {"email": f"w-{uuid.uuid4().hex[:8]}@test.supportchat.local", "password": "123"}
    legacy = http.post("/signup", json=body)
    assert legacy.status_code == 422
    assert legacy.json()["weak_password"] == {"reasons": ["length"]} and legacy.json()["error_code"] == "weak_password"
    new = http.post("/signup", json=body, headers=NEW_API)
    assert new.json()["code"] == "weak_password" and new.json()["weak_password"] == {"reasons": ["length"]}


def test_api_key_is_required(stack: StackProcess) -> None:
    url = f"{stack.api_url}/auth/v1/settings"
    missing = httpx.get(url)
    assert missing.status_code == 401 and "No API key" in missing.json()["message"]
    forged_key = jwt.encode({"role": "anon", "iss": "supabase"}, "x" * 40, algorithm="HS256")
    wrong = httpx.get(url, headers={"apikey": forged_key})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
    assert httpx.get(url, params={"apikey": stack.anon_key}).status_code == 200
    assert httpx.get(f"{stack.api_url}/auth/v1/health").json()["name"] == "GoTrue"


def test_settings_shape(http: httpx.Client) -> None:
    settings = http.get("/settings").json()
    assert settings["external"]["email"] is True and settings["external"]["phone"] is False
    assert settings["mailer_autoconfirm"] is True and settings["disable_signup"] is False


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        b"\xff\xfe\x00",
        b"",
        b'{"email": 5, "password": "abcdefgh"}',
        b'{"email": "a@b.co", "password": []}',
        b'{"email": "a@b.co", "password": "abcdefgh", "data": "x"}',
        b"[" * 20000,
    ],
)
def test_bad_json_is_a_clear_400(http: httpx.Client, body: bytes) -> None:
    res = http.post("/signup", content=body, headers={"Content-Type": "application/json", **NEW_API})
    assert res.status_code == 400, res.text
    assert res.json()["code"] == "bad_json" and "JSON" in res.json()["message"]


def test_huge_bodies_are_413(http: httpx.Client) -> None:
    big = json.dumps({"email": "a@b.co", "password": "x" * 70_000}).encode()
    declared = http.post("/signup", content=big, headers={"Content-Type": "application/json", **NEW_API})
    assert declared.status_code == 413 and declared.json()["code"] == "request_entity_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed, must still be cut off
        yield b'{"email": "a@b.co", "password": "'
        for _ in range(200):
            yield b"y" * 1024
        yield b'"}'

    streamed = http.post("/token?grant_type=password", content=chunks(), headers=NEW_API)
    assert streamed.status_code == 413
    ok = http.post(
        "/signup",
        json={
            "email": f"s-{uuid.uuid4().hex[:8]}@test.supportchat.local",
            "password": "fine-password",
            "data": {"bio": "z" * 30_000},
        },
    )
    assert ok.status_code == 200


def test_overlong_password_is_refused(http: httpx.Client) -> None:
    res = http.post("/signup", json={"email": "long@test.supportchat.local", "password": "p" * 73}, headers=NEW_API)
    assert res.status_code == 400 and res.json()["code"] == "validation_failed"


def test_forged_expired_and_none_tokens_are_rejected(http: httpx.Client, stack: StackProcess, users: Users) -> None:
    session = sign_up(http)
    real = session["access_token"]
    claims = jwt.decode(real, stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    forged = jwt.encode(claims, "not-the-secret-but-long-enough-to-be-used-32", algorithm="HS256")
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 10}, stack.jwt_secret, algorithm="HS256"
    )
    none_alg = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    hs512 = jwt.encode(claims, stack.jwt_secret, algorithm="HS512")
    tampered_payload = b64({**claims, "role": "service_role"})
    tampered = ".".join([real.split(".")[0], tampered_payload, real.split(".")[2]])
    for token in (forged, expired, none_alg, hs512, tampered, "garbage", "a.b.c"):
        for method, path in (("GET", "/user"), ("PUT", "/user"), ("POST", "/logout")):
            res = http.request(
                method,
                path,
                headers={"Authorization": f"Bearer {token}", **NEW_API},
                json={"data": {"x": 1}} if method == "PUT" else None,
            )
            assert res.status_code == 403, (token, path, res.text)
            assert res.json()["code"] == "bad_jwt"
    no_auth = httpx.get(f"{stack.api_url}/auth/v1/user", headers={"apikey": stack.anon_key, **NEW_API})
    assert no_auth.status_code == 401 and no_auth.json()["code"] == "no_authorization"
    anon = http.get("/user", headers=NEW_API)  # the anon key is a valid JWT without a user
    assert anon.status_code == 403 and anon.json()["code"] == "bad_jwt"
    ghost = stack.mint(str(uuid.uuid4()))
    res = http.get("/user", headers={"Authorization": f"Bearer {ghost}", **NEW_API})
    assert res.status_code == 403 and res.json()["code"] == "user_not_found"
    sessionless = stack.mint(users.customer.id, session_id=None)
    res = http.get("/user", headers={"Authorization": f"Bearer {sessionless}"})
    assert res.status_code == 200 and res.json()["id"] == users.customer.id
    # the real token still works: nothing above damaged the session
    assert http.get("/user", headers={"Authorization": f"Bearer {real}"}).status_code == 200


def test_user_json_shape(http: httpx.Client) -> None:
    session = sign_up(http)
    assert set(session) == {"access_token", "token_type", "expires_in", "expires_at", "refresh_token", "user"}
    user = http.get("/user", headers={"Authorization": f"Bearer {session['access_token']}"}).json()
    assert user == session["user"] | {"last_sign_in_at": user["last_sign_in_at"]}
    for key in (
        "id",
        "aud",
        "role",
        "email",
        "email_confirmed_at",
        "phone",
        "confirmed_at",
        "last_sign_in_at",
        "app_metadata",
        "user_metadata",
        "identities",
        "created_at",
        "updated_at",
        "is_anonymous",
    ):
        assert key in user, key
    assert user["created_at"].endswith("Z")
    identity = user["identities"][0]
    assert identity["id"] == user["id"] and identity["user_id"] == user["id"] and identity["provider"] == "email"
    assert identity["identity_data"]["email"] == user["email"] and identity["identity_data"]["sub"] == user["id"]
    assert "encrypted_password" not in json.dumps(user)


def test_token_endpoint_odd_requests(http: httpx.Client) -> None:
    missing = http.post("/token?grant_type=refresh_token", json={})
    assert missing.status_code == 400 and missing.json() == {
        "error": "invalid_request",
        "error_description": "refresh_token required",
    }
    unsupported = http.post("/token?grant_type=magic", json={}, headers=NEW_API)
    assert unsupported.status_code == 400 and unsupported.json()["code"] == "invalid_credentials"
    no_grant = http.post("/token", json={}, headers=NEW_API)
    assert no_grant.status_code == 400
    nothing = http.post("/token?grant_type=password", json={"password": "x"}, headers=NEW_API)
    assert nothing.status_code == 400 and nothing.json()["code"] == "validation_failed"
    anonymous = http.post("/signup", json={}, headers=NEW_API)
    assert anonymous.status_code == 422 and anonymous.json()["code"] == "anonymous_provider_disabled"


def test_logout_scope_is_checked(http: httpx.Client) -> None:
    session = sign_up(http)
    auth = {"Authorization": f"Bearer {session['access_token']}", **NEW_API}
    bad = http.post("/logout?scope=everyone", headers=auth)
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"
    done = http.post("/logout?scope=local", headers=auth)
    assert done.status_code == 204 and done.content == b""
    again = http.get("/user", headers=auth)
    assert again.status_code == 403 and again.json()["code"] == "session_not_found"


def test_unknown_routes_and_methods_answer_json(http: httpx.Client) -> None:
    unknown = http.get("/does/not/exist", headers=NEW_API)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    wrong = http.delete("/signup", headers=NEW_API)
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


def test_admin_odd_requests(stack: StackProcess) -> None:
    with httpx.Client(
        base_url=f"{stack.api_url}/auth/v1",
        timeout=30,
        headers={"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}", **NEW_API},
    ) as c:
        assert c.get("/admin/users?page=abc").status_code == 400
        assert c.get("/admin/users?per_page=-1").status_code == 400
        listed = c.get("/admin/users?page=1&per_page=1")
        assert listed.status_code == 200 and listed.json()["aud"] == "authenticated"
        assert int(listed.headers["x-total-count"]) >= 1 and 'rel="last"' in listed.headers["link"]
        not_uuid = c.get("/admin/users/not-a-uuid")
        assert not_uuid.status_code == 404 and not_uuid.json()["code"] == "validation_failed"
        missing = c.put(f"/admin/users/{uuid.uuid4()}", json={"user_metadata": {}})
        assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"
        assert c.delete(f"/admin/users/{uuid.uuid4()}").status_code == 404
        no_email = c.post("/admin/users", json={"password": "abcdefgh"})
        assert no_email.status_code == 400 and no_email.json()["code"] == "validation_failed"
        bad_meta = c.post("/admin/users", json={"email": "m@test.supportchat.local", "app_metadata": [1]})
        assert bad_meta.status_code == 400 and bad_meta.json()["code"] == "bad_json"
        bad_id = c.post("/admin/users", json={"email": "i@test.supportchat.local", "id": "nope"})
        assert bad_id.status_code == 400


async def test_concurrent_refreshes_of_one_token_agree(stack: StackProcess) -> None:
    """Tabs racing to refresh the same token all end up with the same child, none is logged out."""
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}", **NEW_API}
    async with httpx.AsyncClient(base_url=f"{stack.api_url}/auth/v1", headers=headers, timeout=30) as c:
        email = f"race-{uuid.uuid4().hex[:8]}@test.supportchat.local"
        session = (await c.post("/signup", json={"email": email, "password": "race-password"})).json()
        results = await asyncio.gather(
            *[
                c.post("/token?grant_type=refresh_token", json={"refresh_token": session["refresh_token"]})
                for _ in range(6)
            ]
        )
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        children = {r.json()["refresh_token"] for r in results}
        assert len(children) == 1 and session["refresh_token"] not in children
        sids = {
            jwt.decode(r.json()["access_token"], options={"verify_signature": False})["session_id"] for r in results
        }
        assert len(sids) == 1


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/signup", '{"email": "nul@test.supportchat.local", "password": "abc\\u0000defgh"}'),
        ("/signup", '{"email": "nul2@test.supportchat.local", "password": "abcdefgh", "data": {"k": "v\\u0000"}}'),
        ("/signup", '{"email": "nul3@test.supportchat.local", "password": "abcdefgh", "data": {"k\\u0000": 1}}'),
        ("/signup", '{"email": "sur@test.supportchat.local", "password": "\\ud800abcdef"}'),
        ("/signup", '{"email": "inf@test.supportchat.local", "password": "abcdefgh", "data": {"n": 1e400}}'),
        ("/signup", '{"email": "nan@test.supportchat.local", "password": "abcdefgh", "data": {"n": NaN}}'),
        ("/token?grant_type=password", '{"email": "a\\u0000@x.co", "password": "abcdefgh"}'),
        ("/token?grant_type=refresh_token", '{"refresh_token": "a\\u0000b"}'),
    ],
)
def test_strings_postgres_cannot_store_are_a_clear_400(http: httpx.Client, path: str, raw: str) -> None:
    res = http.post(path, content=raw, headers={"Content-Type": "application/json", **NEW_API})
    assert res.status_code == 400, res.text
    assert res.json()["code"] == "bad_json"


def test_hostile_strings_within_limits_are_stored_verbatim(http: httpx.Client, stack: StackProcess) -> None:
    hostile = {
        "name": "Robert'); drop table auth.users;--",
        "html": "<script>alert(1)</script>",
        "emoji": "🙂 ünïcødé \u202e",
        "big": 10**30,
        "nested": {"a": [1, {"b": None}]},
    }
    res = http.post(
        "/signup",
        json={"email": f"h-{uuid.uuid4().hex[:8]}@test.supportchat.local", "password": "' or 1=1 --", "data": hostile},
    )
    assert res.status_code == 200, res.text
    assert res.json()["user"]["user_metadata"] == hostile
    token = res.json()["access_token"]
    claims = jwt.decode(token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    assert claims["user_metadata"] == hostile
    again = http.post(
        "/token?grant_type=password", json={"email": res.json()["user"]["email"], "password": "' or 1=1 --"}
    )
    assert again.status_code == 200


def test_admin_rejects_duplicate_ids_and_oversized_roles(stack: StackProcess, users: Users) -> None:
    with httpx.Client(
        base_url=f"{stack.api_url}/auth/v1",
        timeout=30,
        headers={"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}", **NEW_API},
    ) as c:
        dup = c.post(
            "/admin/users", json={"email": f"d-{uuid.uuid4().hex[:8]}@test.supportchat.local", "id": users.customer.id}
        )
        assert dup.status_code == 422 and dup.json()["code"] == "user_already_exists"
        long_role = c.put(f"/admin/users/{users.customer2.id}", json={"role": "r" * 300})
        assert long_role.status_code == 400 and long_role.json()["code"] == "validation_failed"
        chosen = str(uuid.uuid4())
        made = c.post(
            "/admin/users",
            json={"email": f"c-{uuid.uuid4().hex[:8]}@test.supportchat.local", "id": chosen, "ban_duration": "1h30m"},
        )
        assert made.status_code == 200 and made.json()["id"] == chosen and "banned_until" in made.json()


def test_credentials_are_checked_before_the_body_is_read(http: httpx.Client, stack: StackProcess) -> None:
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "role": "authenticated", "exp": int(time.time()) + 60},
        "some-other-secret-that-is-long-enough!!",
        algorithm="HS256",
    )
    user = http.put("/user", content=b"{garbage", headers={"Authorization": f"Bearer {forged}", **NEW_API})
    assert user.status_code == 403 and user.json()["code"] == "bad_jwt"
    admin = http.post("/admin/users", content=b"{garbage", headers=NEW_API)  # anon key: not an admin
    assert admin.status_code == 403 and admin.json()["code"] == "not_admin"

"""Bad input at /rest/v1 never gives a 500: PostgREST error bodies and statuses for every kind of mistake.

Also the token checks (anon without Authorization; forged, alg:none, malformed → 401 PGRST301;
expired → 401 PGRST303) and hostile strings that must be stored verbatim.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

KEYS = {"code", "details", "hint", "message"}


@pytest.fixture(scope="module")
def ticket(stack: StackProcess, users: Users, clients: ClientFactory) -> str:
    c = clients(stack.mint(sub=users.customer.id))
    return str(c.table("tickets").insert({"subject": "errors module"}).execute().data[0]["id"])


def headers(stack: StackProcess, token: str | None, **extra: str) -> dict[str, str]:
    out = {"apikey": stack.anon_key, **extra}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == KEYS
    assert isinstance(body["code"], str)
    if code is not None:
        assert body["code"] == code
    return dict(body)


@pytest.mark.parametrize(
    "path",
    [
        "tickets?id=eq",
        "tickets?id=zz.1",
        "tickets?id=in.(1,2",
        "tickets?or=(id.eq.1",
        "tickets?or=id.eq.1",
        "tickets?and=()",
        "tickets?select=id,,subject",
        "tickets?select=id)",
        "tickets?select=x::no-such",
        "tickets?order=subject.up.down",
        "tickets?limit=-1",
        "tickets?limit=abc",
        "tickets?offset=1e3",
        "tickets?status=is.maybe",
        "tickets?subject=fts(bad lang).x",
        'tickets?select="open',
        "tickets?id=eq(any).1",
        "tickets?select=nope(*)",
        "tickets?select=...profiles",
    ],
)
def test_malformed_requests_are_400(stack: StackProcess, users: Users, path: str) -> None:
    r = httpx.get(f"{stack.api_url}/rest/v1/{path}", headers=headers(stack, stack.mint(sub=users.customer.id)))
    assert_error(r, 400)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("no_such_table", 404, "PGRST205"),
        ("tickets?no_such_column=eq.1", 400, "42703"),
        ("tickets?select=id,no_such_column", 400, "42703"),
        ("tickets?order=no_such_column", 400, "42703"),
        ("tickets?id=eq.not-a-uuid", 400, "22P02"),
        ("tickets?created_at=gt.yesterday-ish", 400, None),
        ("tickets?select=*,profiles(*)", 300, "PGRST201"),  # two foreign keys to profiles: ambiguous
        ("messages?select=*,ticket_reads(*)", 400, "PGRST200"),
        ("rpc/no_such_function", 404, "PGRST202"),
    ],
)
def test_unknown_names_and_bad_values(
    stack: StackProcess, users: Users, path: str, status: int, code: str | None
) -> None:
    r = httpx.get(f"{stack.api_url}/rest/v1/{path}", headers=headers(stack, stack.mint(sub=users.customer.id)))
    assert_error(r, status, code)


def test_bad_bodies(stack: StackProcess, users: Users, ticket: str) -> None:
    url = f"{stack.api_url}/rest/v1/messages"
    h = headers(stack, stack.mint(sub=users.customer.id), **{"Content-Type": "application/json"})
    assert_error(httpx.post(url, content=b"{not json", headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, content=b"", headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, content=b"\xff\xfe", headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, content=b'{"content": NaN}', headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, content=b"[1, 2]", headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, content=b"[" * 100_000, headers=h), 400, "PGRST102")
    assert_error(httpx.post(url, json={"ticket_id": ticket, "content": "x", "bogus": 1}, headers=h), 400, "PGRST204")
    assert_error(httpx.post(url, json={"ticket_id": ticket, "content": ""}, headers=h), 400, "23514")
    assert_error(httpx.post(url, json={"ticket_id": ticket, "content": None}, headers=h), 400, "23502")
    assert_error(httpx.post(url, json={"ticket_id": str(uuid.uuid4()), "content": "x"}, headers=h), 403, "42501")
    assert_error(
        httpx.post(url, json={"ticket_id": ticket, "content": {"obj": 1}, "is_internal": "maybe"}, headers=h),
        400,
        "22P02",
    )
    assert_error(httpx.patch(f"{url}?id=eq.{uuid.uuid4()}", json=[{"content": "x"}], headers=h), 400, "PGRST102")


def test_body_over_the_limit_is_413(stack: StackProcess, users: Users, ticket: str) -> None:
    url = f"{stack.api_url}/rest/v1/messages"
    h = headers(stack, stack.mint(sub=users.customer.id), **{"Content-Type": "application/json"})
    big = json.dumps([{"ticket_id": ticket, "content": "x" * 1000}] * 2000).encode()
    assert_error(httpx.post(url, content=big, headers=h), 413)

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(3000):
            yield b" " * 1000

    assert_error(httpx.post(url, content=chunks(), headers=h), 413)


def test_nul_characters_are_a_clear_400(stack: StackProcess, users: Users, ticket: str) -> None:
    h = headers(stack, stack.mint(sub=users.customer.id), **{"Content-Type": "application/json"})
    body = assert_error(
        httpx.post(f"{stack.api_url}/rest/v1/messages", json={"ticket_id": ticket, "content": "a\x00b"}, headers=h), 400
    )
    assert body["code"] == "22P05"
    assert "\\u0000" in body["details"]
    assert_error(httpx.get(f"{stack.api_url}/rest/v1/messages?content=eq.a%00b", headers=h), 400)
    assert_error(httpx.get(f"{stack.api_url}/rest/v1/rpc/sync_messages?after_xid=1%00", headers=h), 400)


HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash",
    "'; drop table messages; --",
    "%s %(x)s {} {0}",
    "Robert'); --",
    "emoji 🎉 and ünïcödé and 中文 and RTL \u202e",
    "line\nbreak\ttab\r",
    "a" * 10000,
    "$1 $$ $tag$",
    "<script>",
]


def test_hostile_strings_round_trip_verbatim(
    stack: StackProcess, users: Users, ticket: str, clients: ClientFactory
) -> None:
    c = clients(stack.mint(sub=users.customer.id))
    rows = c.table("messages").insert([{"ticket_id": ticket, "content": s} for s in HOSTILE]).execute().data
    assert [r["content"] for r in rows] == HOSTILE
    for text in HOSTILE[:8]:
        found = c.table("messages").select("content").eq("ticket_id", ticket).eq("content", text).execute().data
        assert found == [{"content": text}]
    assert c.table("messages").select("id").eq("ticket_id", ticket).in_("content", HOSTILE[:3]).execute().data
    assert len(c.table("tickets").select("id").execute().data) >= 1  # the table survived


def test_other_schemas_and_media_types_are_406(stack: StackProcess, users: Users) -> None:
    tok = stack.mint(sub=users.customer.id)
    r = httpx.get(f"{stack.api_url}/rest/v1/tickets", headers=headers(stack, tok, **{"Accept-Profile": "auth"}))
    assert_error(r, 406, "PGRST106")
    r = httpx.post(
        f"{stack.api_url}/rest/v1/tickets",
        json={"subject": "x"},
        headers=headers(stack, tok, **{"Content-Profile": "private"}),
    )
    assert_error(r, 406, "PGRST106")
    r = httpx.get(f"{stack.api_url}/rest/v1/tickets", headers=headers(stack, tok, Accept="text/html"))
    assert_error(r, 406, "PGRST107")
    r = httpx.get(f"{stack.api_url}/rest/v1/tickets", headers=headers(stack, tok, **{"Accept-Profile": "public"}))
    assert r.status_code == 200


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_tokens(stack: StackProcess, users: Users) -> None:
    url = f"{stack.api_url}/rest/v1/tickets?select=id"
    now = int(time.time())
    claims = {"sub": users.admin.id, "role": "service_role", "aud": "authenticated", "iat": now, "exp": now + 600}
    forged = jwt.encode(claims, "not-the-secret-but-long-enough-for-hs256-keys", algorithm="HS256")
    for bad in (forged, _unsigned(claims), "garbage", "a.b.c", stack.mint(sub=users.admin.id, role=["x"])):  # type: ignore[arg-type]
        r = httpx.get(url, headers=headers(stack, bad))
        body = assert_error(r, 401, "PGRST301")
        assert body["message"]
        assert "invalid_token" in r.headers["www-authenticate"]
    expired = stack.mint(sub=users.customer.id, ttl=-10)
    r = httpx.get(url, headers=headers(stack, expired))
    assert_error(r, 401, "PGRST303")
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    # no Authorization at all: anon, which has no grant on tickets → 42501 as 401
    r = httpx.get(url)
    assert_error(r, 401, "42501")
    # a role the database does not know is refused, never run as something else
    r = httpx.get(url, headers=headers(stack, stack.mint(sub=users.customer.id, role="postgres")))
    assert r.status_code in (400, 401, 403)
    assert set(r.json()) == KEYS


def test_expired_token_through_the_client_is_a_clear_error(
    stack: StackProcess, users: Users, clients: ClientFactory
) -> None:
    c = clients(stack.mint(sub=users.customer.id, ttl=-5))
    with pytest.raises(APIError) as err:
        c.table("tickets").select("*").execute()
    assert err.value.code == "PGRST303"


def test_unsupported_method_and_root(stack: StackProcess, users: Users) -> None:
    tok = stack.mint(sub=users.customer.id)
    r = httpx.put(f"{stack.api_url}/rest/v1/tickets", json={}, headers=headers(stack, tok))
    assert r.status_code == 405
    r = httpx.get(f"{stack.api_url}/rest/v1/", headers=headers(stack, tok))
    assert r.status_code == 404
    assert set(r.json()) == KEYS


def test_conflicts_are_409(stack: StackProcess, users: Users, ticket: str) -> None:
    h = headers(stack, stack.mint(sub=users.customer.id), **{"Content-Type": "application/json"})
    mid = str(uuid.uuid4())
    url = f"{stack.api_url}/rest/v1/messages"
    assert httpx.post(url, json={"id": mid, "ticket_id": ticket, "content": "once"}, headers=h).status_code == 201
    assert_error(httpx.post(url, json={"id": mid, "ticket_id": ticket, "content": "twice"}, headers=h), 409, "23505")
    svc = headers(stack, stack.service_role_key, **{"Content-Type": "application/json"})
    body = {"ticket_id": str(uuid.uuid4()), "sender_id": users.customer.id, "content": "orphan"}
    assert_error(httpx.post(url, json=body, headers=svc), 409, "23503")


FUZZ_KEYS = [
    "id",
    "subject",
    "status",
    "select",
    "order",
    "or",
    "and",
    "not.or",
    "limit",
    "offset",
    "columns",
    "on_conflict",
    "messages.order",
    "messages.content",
    "data->>x",
    '"q"',
    "x.y.z",
    "",
    "%",
    "a(b)",
]
FUZZ_PARTS = [
    "eq.",
    "not.",
    "in.(",
    ")",
    "(",
    ",",
    '"',
    "\\",
    "*",
    "messages(",
    "!inner",
    "::",
    "->>",
    ".",
    "is.",
    "fts(",
    "cs.{",
    "}",
    "1",
    "-1",
    "abc",
    "null",
    "'",
    ";",
    "%",
    "ü",
    "🎉",
    " ",
    "asc",
    "desc",
]


def test_fuzzed_query_strings_never_500(stack: StackProcess, users: Users) -> None:
    rnd = random.Random(20261124)
    tok = stack.mint(sub=users.agent.id)
    with httpx.Client(base_url=f"{stack.api_url}/rest/v1", headers=headers(stack, tok)) as http:
        for _ in range(400):
            params = [
                (rnd.choice(FUZZ_KEYS), "".join(rnd.choice(FUZZ_PARTS) for _ in range(rnd.randint(0, 6))))
                for _ in range(rnd.randint(1, 3))
            ]
            method = rnd.choice(["GET", "GET", "HEAD", "PATCH", "DELETE", "POST"])
            target = rnd.choice(["tickets", "messages", "rpc/sync_messages", "profiles"])
            content = rnd.choice([b"", b"{}", b'{"subject": "x"}', b"[", b'[{"content": 1}]', b"null"])
            r = http.request(
                method,
                f"/{target}",
                params=params,
                content=content if method != "GET" else None,
                # not tx=rollback: ignored, as on Supabase. A PATCH or DELETE that matched a row rolls back
                # (PGRST124); none of this seed's POSTs is accepted (each answers 4xx), so the stack is unchanged
                headers={"Prefer": "handling=strict, max-affected=0"},
            )
            assert r.status_code < 500, (method, target, params, r.text)
            if r.status_code >= 400 and method != "HEAD":
                assert r.headers.get("content-type", "").startswith("application/json"), (
                    method,
                    target,
                    params,
                    r.status_code,
                    r.text,
                )
                assert set(r.json()) == KEYS

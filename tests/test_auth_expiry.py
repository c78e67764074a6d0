"""Short-lived access tokens and a zero reuse interval, on a second localbase started with
LOCALBASE_JWT_EXPIRY=3 and LOCALBASE_REFRESH_REUSE_INTERVAL=0: tokens really expire, the official
clients refresh them on their own, and a replayed rotated token is caught at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from supabase import AsyncClientOptions, ClientOptions, acreate_client, create_client
from supabase_auth.errors import AuthApiError

from tests.stackproc import StackProcess

EXPIRY = 3
PASSWORD = "short-lived-Passw0rd"


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    root: Path = tmp_path_factory.mktemp("localbase-short")
    proc = StackProcess(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCALBASE_JWT_EXPIRY", str(EXPIRY))
        mp.setenv("LOCALBASE_REFRESH_REUSE_INTERVAL", "0")
        proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def new_email() -> str:
    return f"short-{uuid.uuid4().hex[:12]}@test.supportchat.local"


def test_tokens_expire_after_the_configured_lifetime(short_stack: StackProcess) -> None:
    c = create_client(short_stack.api_url, short_stack.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        session = c.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
        assert session is not None and session.expires_in == EXPIRY
        claims = jwt.decode(
            session.access_token, short_stack.jwt_secret, algorithms=["HS256"], audience="authenticated"
        )
        assert claims["exp"] - claims["iat"] == EXPIRY
        assert c.auth.get_user(session.access_token) is not None
        time.sleep(EXPIRY + 1.2)
        with pytest.raises(AuthApiError) as err:
            c.auth.get_user(session.access_token)
        assert err.value.status == 403 and err.value.code == "bad_jwt"
        # the refresh token outlives the access token
        renewed = c.auth.refresh_session(session.refresh_token).session
        assert renewed is not None and c.auth.get_user(renewed.access_token) is not None
    finally:
        c.auth.close()


def test_get_session_refreshes_a_token_about_to_expire(short_stack: StackProcess) -> None:
    """supabase-py refreshes inside its 10 s margin; with 3 s tokens every get_session() rotates."""
    c = create_client(short_stack.api_url, short_stack.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        first = c.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
        assert first is not None
        again = c.auth.get_session()
        assert again is not None and again.refresh_token != first.refresh_token
        sid = jwt.decode(first.access_token, options={"verify_signature": False})["session_id"]
        assert jwt.decode(again.access_token, options={"verify_signature": False})["session_id"] == sid
    finally:
        c.auth.close()


async def test_async_client_auto_refreshes_in_the_background(short_stack: StackProcess) -> None:
    client = await acreate_client(
        short_stack.api_url, short_stack.anon_key, AsyncClientOptions(httpx_client=httpx.AsyncClient(timeout=30))
    )
    events: list[str] = []
    client.auth.on_auth_state_change(lambda event, _session: events.append(event))
    try:
        await client.auth.sign_up({"email": new_email(), "password": PASSWORD})
        deadline = time.monotonic() + EXPIRY + 5
        while "TOKEN_REFRESHED" not in events and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert "TOKEN_REFRESHED" in events, events
        session = client.auth._in_memory_session or await client.auth._load_session()
        assert session is not None
        got = await client.auth.get_user(session.access_token)
        assert got is not None
    finally:
        await client.auth.sign_out({"scope": "local"})
        await client.auth.close()


def test_zero_reuse_interval_catches_an_immediate_replay(short_stack: StackProcess) -> None:
    c = create_client(short_stack.api_url, short_stack.anon_key, ClientOptions(auto_refresh_token=False))
    try:
        first = c.auth.sign_up({"email": new_email(), "password": PASSWORD}).session
        assert first is not None
        child = c.auth.refresh_session(first.refresh_token).session
        assert child is not None
        # the parent of the active token is always answered with it (GoTrue) ...
        again = c.auth.refresh_session(first.refresh_token).session
        assert again is not None and again.refresh_token == child.refresh_token
        grandchild = c.auth.refresh_session(child.refresh_token).session
        assert grandchild is not None
        # ... but a grandparent, even a second after its rotation, is a replay: the family dies
        with pytest.raises(AuthApiError) as err:
            c.auth.refresh_session(first.refresh_token)
        assert err.value.code == "refresh_token_already_used"
        with pytest.raises(AuthApiError) as err:
            c.auth.refresh_session(grandchild.refresh_token)
        assert err.value.code == "refresh_token_already_used"
    finally:
        c.auth.close()

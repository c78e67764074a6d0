"""Auth benchmarks: /auth/v1 latencies against the irreducible work measured in the same run.

- `auth_sign_in`: password grant (ms, median) vs one bcrypt check at GoTrue's cost 10 in-process,
  the floor any correct implementation pays;
- `auth_refresh`: refresh-token rotation (ms, median) vs the same SQL (lock session and token,
  revoke, insert the child) over raw psycopg;
- `auth_get_user`: GET /user (ms, median) vs reading the user and its identities over raw psycopg.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import bcrypt
import httpx
import psycopg

from bench.harness import BenchEnv, BenchFn, Figure, figure, median, percentile

ROUNDS = 40


def _timed(fn: Callable[[], Any], rounds: int = ROUNDS) -> list[float]:
    fn()  # warm up connections and caches
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _client(env: BenchEnv) -> httpx.Client:
    key = env.stack.anon_key
    return httpx.Client(
        base_url=f"{env.stack.api_url}/auth/v1", timeout=30, headers={"apikey": key, "Authorization": f"Bearer {key}"}
    )


def sign_in(env: BenchEnv) -> list[Figure]:
    # a user signed up through the API, so its hash has the cost /signup uses (the fixtures' are cheaper)
    email, password = f"bench-{uuid.uuid4().hex[:12]}@bench.supportchat.local", "benchmark-password"
    with _client(env) as c:
        c.post("/signup", json={"email": email, "password": password}).raise_for_status()

        def once() -> None:
            res = c.post("/token?grant_type=password", json={"email": email, "password": password})
            res.raise_for_status()

        api = _timed(once, 20)
    hashed = bcrypt.hashpw(b"benchmark-password", bcrypt.gensalt(10))
    floor = _timed(lambda: bcrypt.checkpw(b"benchmark-password", hashed), 20)
    return [
        figure(
            "auth_sign_in",
            median(api),
            "ms",
            "bcrypt check, cost 10",
            median(floor),
            higher_is_better=False,
            p95_ms=round(percentile(api, 95), 3),
        )
    ]


def refresh(env: BenchEnv) -> list[Figure]:
    who = env.users.agent
    with _client(env) as c:
        session = c.post("/token?grant_type=password", json={"email": who.email, "password": who.password}).json()
        token = {"value": session["refresh_token"]}

        def once() -> None:
            res = c.post("/token?grant_type=refresh_token", json={"refresh_token": token["value"]})
            res.raise_for_status()
            token["value"] = res.json()["refresh_token"]

        api = _timed(once)
        sid = session["user"]["id"]
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        fake_session = uuid.uuid4()
        conn.execute("insert into auth.sessions (id, user_id) values (%s, %s)", (fake_session, sid))
        current = {"value": secrets.token_urlsafe(32)}
        conn.execute(
            "insert into auth.refresh_tokens (token, user_id, session_id) values (%s, %s, %s)",
            (current["value"], sid, fake_session),
        )

        def raw() -> None:
            with conn.transaction():
                conn.execute("select id from auth.sessions where id = %s for update", (fake_session,))
                row = conn.execute(
                    "select id from auth.refresh_tokens where token = %s for update", (current["value"],)
                ).fetchone()
                assert row is not None
                conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s", (row[0],)
                )
                child = secrets.token_urlsafe(32)
                conn.execute(
                    "insert into auth.refresh_tokens (token, user_id, parent, session_id) values (%s, %s, %s, %s)",
                    (child, sid, current["value"], fake_session),
                )
                current["value"] = child

        floor = _timed(raw)
        conn.execute("delete from auth.sessions where id = %s", (fake_session,))
    return [
        figure(
            "auth_refresh",
            median(api),
            "ms",
            "same SQL over raw psycopg",
            median(floor),
            higher_is_better=False,
            p95_ms=round(percentile(api, 95), 3),
        )
    ]


def get_user(env: BenchEnv) -> list[Figure]:
    who = env.users.agent2
    with _client(env) as c:
        session = c.post("/token?grant_type=password", json={"email": who.email, "password": who.password}).json()
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        api = _timed(lambda: c.get("/user", headers=auth).raise_for_status())
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:

        def raw() -> None:
            conn.execute("select * from auth.users where id = %s", (who.id,)).fetchone()
            conn.execute("select 1 from auth.sessions where id = %s", (uuid.uuid4(),)).fetchone()
            conn.execute("select * from auth.identities where user_id = %s", (who.id,)).fetchall()

        floor = _timed(raw)
    return [
        figure(
            "auth_get_user",
            median(api),
            "ms",
            "same reads over raw psycopg",
            median(floor),
            higher_is_better=False,
            p95_ms=round(percentile(api, 95), 3),
        )
    ]


BENCHES: dict[str, BenchFn] = {"auth_sign_in": sign_in, "auth_refresh": refresh, "auth_get_user": get_user}

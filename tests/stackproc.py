"""Run a real localbase as a child process, the way a user runs `supportchat stack`.

Tests (and benchmarks) start one per session on a temp dir and a free port; `stop()` and `start()`
on the same data dir and port are a real server outage and restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg

from localbase.postgres import free_port

TEST_RATE_LIMITS = {
    "LOCALBASE_RATE_LIMIT_SIGN_IN_SIGN_UPS": "100000",
    "LOCALBASE_RATE_LIMIT_TOKEN_REFRESH": "100000",
    "LOCALBASE_RATE_LIMIT_OTP": "100000",
    "LOCALBASE_RATE_LIMIT_VERIFY": "100000",
    "LOCALBASE_RATE_LIMIT_MFA": "100000",
    "LOCALBASE_RATE_LIMIT_EMAIL_SENT": "100000",
    # the suite and each benchmark are one Supabase tenant holding far more users than one desk's; Realtime's
    # tenant-wide quotas are raised with GoTrue's, as a project's settings can (channels per socket stay at
    # Supabase's default). Deliveries count toward the events rates as on Supabase: bench realtime_latency_100
    # fans 200 inserts/s out to 100 subscribers (20,000 postgres_changes/s), well under the raised 100,000/s.
    # Presence messages per channel (5 per 30 s) stay at Supabase's default: only the baseline of bench
    # `realtime_presence_fanout_100` needs more, and raises it on its own stack (`STACK_SETTINGS` there)
    "LOCALBASE_REALTIME_MAX_CONCURRENT_USERS": "100000",
    "LOCALBASE_REALTIME_MAX_JOINS_PER_SECOND": "100000",
    "LOCALBASE_REALTIME_MAX_EVENTS_PER_SECOND": "100000",
    "LOCALBASE_REALTIME_MAX_PRESENCE_EVENTS_PER_SECOND": "100000",
}


PORT_ATTEMPTS = 3  # starts on newly picked ports when the one picked was taken before the child bound it


def port_taken(log_path: Path, offset: int = 0) -> bool:
    """Whether a child's log (from ``offset``) says its port was taken: ``free_port`` releases the port it found
    before the child binds it, and another process can take it in between."""
    if not log_path.exists():
        return False
    with log_path.open("rb") as log:
        log.seek(offset)
        return b"address already in use" in log.read().lower()


@dataclass
class StackProcess:
    data_dir: Path
    demo: bool = False
    port: int = field(default_factory=free_port)
    db_port: int = field(default_factory=free_port)
    info: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment, e.g. STORAGE_FILE_SIZE_LIMIT
    # the whole suite signs in from 127.0.0.1 far more often than one client would: GoTrue's per-IP
    # limits are raised here, and tests of the limits start their own stack with `env={}`
    env: dict[str, str] = field(default_factory=lambda: dict(TEST_RATE_LIMITS))
    args: list[str] = field(default_factory=list)  # more `stack` options, e.g. --smtp-url

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def anon_key(self) -> str:
        return str(self.info["anon_key"])

    @property
    def service_role_key(self) -> str:
        return str(self.info["service_role_key"])

    @property
    def db_url(self) -> str:
        """The superuser's URL (`supabase_admin`), for arranging and checking data in tests.

        Not what a project gives you: `postgres_url` is the printed `db_url`, the non-superuser `postgres`
        role that migrations run as on Supabase.
        """
        return str(self.info["superuser_db_url"])

    @property
    def postgres_url(self) -> str:
        """The `postgres` role's URL (`supportchat stack` prints it as `db_url`), as on a Supabase project."""
        return str(self.info["db_url"])

    @property
    def jwt_secret(self) -> str:
        return str(self.info["jwt_secret"])

    def start(self, timeout: float = 120) -> None:
        """Start localbase; on its first start, again on new ports when another process took one of the two
        between ``free_port`` and the child's bind (``port_taken``). A restart keeps its ports (a real outage)."""
        for attempt in range(PORT_ATTEMPTS):
            log_path = self.data_dir.parent / f"{self.data_dir.name}-stack.log"
            before = log_path.stat().st_size if log_path.exists() else 0
            try:
                self._start(timeout, log_path)
                return
            except RuntimeError:
                if self.info or attempt == PORT_ATTEMPTS - 1 or not port_taken(log_path, before):
                    raise
                self.port, self.db_port = free_port(), free_port()

    def _start(self, timeout: float, log_path: Path) -> None:
        args = [
            sys.executable,
            "-m",
            "localbase",
            "stack",
            "--json",
            "--port",
            str(self.port),
            "--db-port",
            str(self.db_port),
            "--data",
            str(self.data_dir),
        ]
        if self.demo:
            args.append("--demo")
        args += self.args
        with log_path.open("a") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"localbase did not start; see {log_path}")
        self.info = json.loads(line)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def mint(self, sub: str | None = None, role: str = "authenticated", ttl: int = 3600, **extra: Any) -> str:
        """A token signed with the stack's secret, as GoTrue would issue it (for RLS tests): for a user of the
        stack, its `session_id` names a live row of `auth.sessions`, as GoTrue's do (staff rights need one:
        migration 20261213000100)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": f"{self.api_url}/auth/v1",
            "aud": "authenticated",
            "role": role,
            "iat": now,
            "exp": now + ttl,
            "session_id": str(uuid.uuid4()),
        }
        if sub is not None:
            claims["sub"] = sub
        claims.update(extra)
        if sub is not None and role == "authenticated":
            self.live_session(sub, str(claims["session_id"]))
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def live_session(self, user_id: str, session_id: str) -> None:
        live_session(self.db_url, user_id, session_id)


def live_session(db_url: str, user_id: str, session_id: str) -> None:
    """A row of `auth.sessions` with this id for this user, as a sign-in makes (nothing for an unknown user or an id
    that is not a UUID: a token naming it names no live session)."""
    try:
        uuid.UUID(user_id), uuid.UUID(session_id)
    except ValueError:
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.sessions (id, user_id) select %s, id from auth.users where id = %s"
            " on conflict (id) do nothing",
            (session_id, user_id),
        )


def session_claims(db_url: str, user_id: str, **extra: Any) -> dict[str, Any]:
    """The claims of an access token of a new live session of this user, for code that acts as a user in SQL the
    way PostgREST does (`request.jwt.claims`): staff rights need the session (migration 20261213000100)."""
    session_id = str(uuid.uuid4())
    live_session(db_url, user_id, session_id)
    return {"sub": user_id, "role": "authenticated", "session_id": session_id, **extra}

"""JWT keys of a stack: the HS256 secret, the anon and service_role API keys, and token checks.

A persistent stack generates its own secret once per data dir (file mode 0600); only the
throwaway demo stack uses the well-known Supabase CLI demo secret, so that anyone who ever saw a
demo key cannot forge tokens for a real local install.

The demo keys are the Supabase CLI's published ones, byte for byte: the CLI signs
`{"iss":"supabase-demo","role":<role>,"exp":1983812996}` (no `iat`) with the demo secret
(`pkg/config/apikeys.go`), and tutorials, apps and tests hardcode the resulting strings. They are
public: anyone can read them, so the demo stack is for throwaway local use only.

Verified tokens are remembered (`VERIFIED_CACHE` of them): every REST request, storage request and realtime
join verifies its bearer token, and a client sends the same one for up to an hour, so the signature check and
PyJWT's parsing (~50-180 µs a token on this machine, ~4 % of the stack's time with 50 clients chatting) are done
once per token. The cache key is the whole token string, signature included, so a token that differs in any byte
is verified afresh; expiry is checked against the clock on every use; each use gets its own copy of the claims.
The cache is bounded in bytes as well as in entries: only tokens up to VERIFIED_TOKEN_BYTES are kept (a signed-up
user can put ~64 KiB of `user_metadata` into every token it refreshes; 4,096 of those held ~650 MB), an expired
one is forgotten when it is refused, and the oldest goes first when the cache is full.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

DEMO_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
DEMO_ISSUER = "supabase-demo"
DEMO_KEY_EXP = 1983812996
# the strings `supabase start` prints; `Keys.demo()` signs the CLI's payload and must get exactly these
DEMO_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
DEMO_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4Mz"
    "gxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
ALGORITHM = "HS256"
VERIFIED_CACHE = 4096  # tokens remembered after a good verification, the oldest forgotten first
VERIFIED_TOKEN_BYTES = 4096  # longer tokens (a user can fill user_metadata up to ~64 KiB) are verified every time


class TokenError(Exception):
    """A bearer token that cannot be trusted; `code` tells the client why."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Keys:
    jwt_secret: str
    anon_key: str
    service_role_key: str
    # token → (its exp or None, its claims as JSON): tokens that passed `verify` (see the module docstring)
    _verified: dict[str, tuple[float | None, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> Keys:
        def api_key(role: str) -> str:
            payload: dict[str, Any]
            if secret == DEMO_JWT_SECRET:  # the CLI's claims, in the CLI's order: the published strings
                payload = {"iss": DEMO_ISSUER, "role": role, "exp": DEMO_KEY_EXP}
            else:
                payload = {"iss": "supabase", "role": role, "iat": 1700000000, "exp": DEMO_KEY_EXP}
            return jwt.encode(payload, secret, algorithm=ALGORITHM)

        return cls(secret, api_key("anon"), api_key("service_role"))

    @classmethod
    def demo(cls) -> Keys:
        keys = cls.from_secret(DEMO_JWT_SECRET)
        if (keys.anon_key, keys.service_role_key) != (DEMO_ANON_KEY, DEMO_SERVICE_ROLE_KEY):
            raise RuntimeError("the demo keys must be the Supabase CLI's published keys")
        return keys

    @property
    def is_demo(self) -> bool:
        """True for the public demo keys, which anyone can read (and so sign requests with)."""
        return self.jwt_secret == DEMO_JWT_SECRET

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Keys:
        """Load the data dir's secret, creating it (readable by this user only) on first use."""
        path = data_dir / "jwt_secret"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return cls.from_secret(path.read_text().strip())

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.jwt_secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid HS256 token; raises TokenError for anything else (alg none included)."""
        known = self._verified.get(token)
        if known is not None:
            if known[0] is not None and known[0] <= time.time():
                del self._verified[token]
                raise TokenError("JWT expired", expired=True)
            fresh: dict[str, Any] = json.loads(known[1])
            return fresh
        claims = self._decode(token)
        if len(token) <= VERIFIED_TOKEN_BYTES:
            while len(self._verified) >= VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]  # dicts keep insertion order: the oldest
            exp = claims.get("exp")
            self._verified[token] = (float(exp) if exp is not None else None, json.dumps(claims))
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=[ALGORITHM],
                options={"verify_aud": False},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("JWT expired", expired=True) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid JWT: {exc}") from exc
        if not isinstance(claims.get("role", ""), str):
            raise TokenError("invalid JWT: role claim must be a string")
        exp = claims.get("exp")
        if exp is not None and not isinstance(exp, int | float):
            raise TokenError("invalid JWT: exp must be a number")
        if exp is not None and exp <= time.time():
            raise TokenError("JWT expired", expired=True)
        return claims

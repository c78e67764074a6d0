"""GoTrue's request rate limits: token buckets per client IP, per endpoint group, and one global
bucket for emails sent.

GoTrue limits with tollbooth (a token bucket per key: `events / period` refill, a burst of up to
`events`), keyed by the client's IP address, and answers 429 `over_request_rate_limit` "Request
rate limit reached" before the handler runs, so a refused sign-in costs no bcrypt hash. Emails have
one global bucket (`over_email_send_rate_limit`). The `limits` library offers fixed and moving
windows but no refilling bucket with a burst, so this is the twenty lines of tollbooth we need.

The key is the TCP peer address only: `X-Forwarded-For` is the client's to choose, so honouring it
would let an attacker rotate through fresh buckets. Configuration (events per period; 0 refuses all):

| env | GoTrue / CLI equivalent | default |
|---|---|---|
| `LOCALBASE_RATE_LIMIT_SIGN_IN_SIGN_UPS` | `sign_in_sign_ups` (password grant, /signup) | 30 per 5 min per IP |
| `LOCALBASE_RATE_LIMIT_TOKEN_REFRESH` | `token_refresh` | 150 per 5 min per IP |
| `LOCALBASE_RATE_LIMIT_OTP` | `RATE_LIMIT_OTP` (/otp, /recover, /resend) | 30 per 5 min per IP |
| `LOCALBASE_RATE_LIMIT_VERIFY` | `token_verifications` (/verify) | 30 per 5 min per IP |
| `LOCALBASE_RATE_LIMIT_MFA` | `MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY` | 15 per min per IP |
| `LOCALBASE_RATE_LIMIT_EMAIL_SENT` | `email_sent` | 30 per hour, all clients |
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from starlette.requests import Request

from localbase.auth.errors import AuthError

MAX_KEYS = 100_000  # an attacker with many addresses must not grow the table without bound


class Bucket(StrEnum):
    SIGN_IN = "sign_in_sign_ups"
    REFRESH = "token_refresh"
    OTP = "otp"
    VERIFY = "verify"
    MFA = "mfa"
    EMAIL = "email_sent"


# (env name, default events, period seconds)
_DEFAULTS: dict[Bucket, tuple[str, float, float]] = {
    Bucket.SIGN_IN: ("LOCALBASE_RATE_LIMIT_SIGN_IN_SIGN_UPS", 30, 300),
    Bucket.REFRESH: ("LOCALBASE_RATE_LIMIT_TOKEN_REFRESH", 150, 300),
    Bucket.OTP: ("LOCALBASE_RATE_LIMIT_OTP", 30, 300),
    Bucket.VERIFY: ("LOCALBASE_RATE_LIMIT_VERIFY", 30, 300),
    Bucket.MFA: ("LOCALBASE_RATE_LIMIT_MFA", 15, 60),
    Bucket.EMAIL: ("LOCALBASE_RATE_LIMIT_EMAIL_SENT", 30, 3600),
}


@dataclass
class _State:
    tokens: float
    stamp: float


@dataclass
class TokenBucket:
    """`events` per `period` seconds, bursting up to `events`, one bucket per key."""

    events: float
    period: float
    clock: Callable[[], float] = time.monotonic
    _states: dict[str, _State] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        if self.events <= 0:
            return False
        now = self.clock()
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= MAX_KEYS:
                self._forget_full(now)
            state = self._states[key] = _State(self.events, now)
        state.tokens = min(self.events, state.tokens + (now - state.stamp) * self.events / self.period)
        state.stamp = now
        if state.tokens < 1:
            return False
        state.tokens -= 1
        return True

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely (they hold no information)."""
        rate = self.events / self.period
        full = [k for k, s in self._states.items() if (now - s.stamp) * rate + s.tokens >= self.events]
        for key in full:
            del self._states[key]
        if len(self._states) >= MAX_KEYS:  # everyone is mid-burst: start over rather than grow
            self._states.clear()


@dataclass
class RateLimits:
    buckets: dict[Bucket, TokenBucket]

    @classmethod
    def from_env(cls) -> RateLimits:
        buckets = {}
        for bucket, (env, events, period) in _DEFAULTS.items():
            raw = os.environ.get(env, "")
            try:
                value = float(raw) if raw else events
            except ValueError:
                value = events
            buckets[bucket] = TokenBucket(max(0.0, value), period)
        return cls(buckets)

    def check(self, bucket: Bucket, request: Request) -> None:
        """Raise GoTrue's 429 when the caller's IP is over `bucket`'s limit."""
        key = request.client.host if request.client else "unknown"
        if not self.buckets[bucket].allow(key):
            raise AuthError(429, "over_request_rate_limit", "Request rate limit reached")

    def check_email(self) -> None:
        if not self.buckets[Bucket.EMAIL].allow("*"):
            raise AuthError(429, "over_email_send_rate_limit", "email rate limit exceeded")

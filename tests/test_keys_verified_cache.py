"""`Keys.verify` remembers tokens it verified (localbase/keys.py): the signature is checked once per token, and the
cache never lets through what a fresh check would refuse."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from localbase import keys as keys_module
from localbase.keys import Keys, TokenError


def _token(k: Keys, **claims: Any) -> str:
    payload = {"sub": "u1", "role": "authenticated", "exp": int(time.time()) + 3600, "app_metadata": {"a": 1}}
    return jwt.encode({**payload, **claims}, k.jwt_secret, algorithm="HS256")


def test_a_token_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    k = Keys.from_secret("s" * 40)
    token = _token(k)
    decodes = []
    real = jwt.decode
    monkeypatch.setattr(keys_module.jwt, "decode", lambda *a, **kw: decodes.append(1) or real(*a, **kw))
    first, second = k.verify(token), k.verify(token)
    assert first == second and first["sub"] == "u1"
    assert len(decodes) == 1


def test_each_use_gets_its_own_claims() -> None:
    k = Keys.from_secret("s" * 40)
    token = _token(k)
    claims = k.verify(token)
    claims["role"] = "service_role"
    claims["app_metadata"]["a"] = 2
    again = k.verify(token)
    assert again["role"] == "authenticated" and again["app_metadata"] == {"a": 1}


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    k = Keys.from_secret("s" * 40)
    token = _token(k, exp=int(time.time()) + 60)
    assert k.verify(token)["sub"] == "u1"
    later = time.time() + 61
    monkeypatch.setattr(keys_module.time, "time", lambda: later)
    with pytest.raises(TokenError) as caught:
        k.verify(token)
    assert caught.value.expired


def test_a_forged_signature_is_not_taken_for_a_remembered_token() -> None:
    k = Keys.from_secret("s" * 40)
    token = _token(k)
    k.verify(token)
    head, payload, _sig = token.split(".")
    forged = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "t" * 40, algorithm="HS256")
    for bad in (f"{head}.{payload}.", forged, token + "x"):
        with pytest.raises(TokenError):
            k.verify(bad)
    other = Keys.from_secret("t" * 40)  # another stack's keys: nothing it remembers is shared
    with pytest.raises(TokenError):
        other.verify(token)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "VERIFIED_CACHE", 8)
    k = Keys.from_secret("s" * 40)
    for i in range(50):
        k.verify(_token(k, sub=f"u{i}"))
    assert len(k._verified) <= 8


def test_the_cache_is_bounded_in_bytes_and_forgets_expired_and_oldest_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed-up user can fill every token with ~64 KiB of user_metadata (found by the ninth session's review:
    4,095 such tokens held ~650 MB, and still did once all had expired)."""
    monkeypatch.setattr(keys_module, "VERIFIED_CACHE", 8)
    k = Keys.from_secret("s" * 40)
    big = _token(k, user_metadata={"pad": "x" * 60_000})
    assert k.verify(big)["sub"] == "u1" and big not in k._verified  # still verified, never remembered
    soon = _token(k, sub="soon", exp=int(time.time()) + 60)
    k.verify(soon)
    later = time.time() + 61
    monkeypatch.setattr(keys_module.time, "time", lambda: later)
    with pytest.raises(TokenError):
        k.verify(soon)
    assert soon not in k._verified  # refused, and forgotten
    monkeypatch.undo()
    monkeypatch.setattr(keys_module, "VERIFIED_CACHE", 8)
    tokens = [_token(k, sub=f"u{i}") for i in range(9)]
    for token in tokens:
        k.verify(token)
    assert list(k._verified) == tokens[1:]  # the oldest went first, the rest stay

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

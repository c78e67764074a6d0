"""A channel re-keyed (a new ``access_token``) while a change is checked for it gets nothing of that change.

The capture checks a batch's changes for each channel's claims, then delivers them; both await (the RLS
statements, privilege lookups). A socket that sends another user's token meanwhile (a signed-out agent's window
signing in as someone else, or a hostile client alternating tokens) must not receive a row checked for the claims
before, nor make the checker fail for everyone (a role missing from the event's outcomes raised ``KeyError``, and the
capture restarted: every client was told changes may have been missed). Pure logic: the checker's answers and the
privilege lookups are stood in for (the real checker runs in test_realtime_rls_batches.py); the race itself cannot
be timed from outside the process.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from localbase.realtime import rls
from localbase.realtime.capture import Capture
from localbase.realtime.hub import Channel, Hub, Outbox
from tests.realtime.test_realtime_batch_delivery import _capture, _event

pytestmark = pytest.mark.timeout(30)

A = {"sub": "user-a", "role": "authenticated"}
B = {"sub": "user-b", "role": "authenticated"}


def _checking(hub: Hub) -> Capture:
    capture = _capture(hub)

    async def ensure_function(*args: Any) -> None:  # the check function is not created (no database here)
        return None

    capture.rls.ensure_function = ensure_function  # type: ignore[method-assign]
    return capture


def _channel(hub: Hub, sent: list[str | bytes]) -> Channel:
    outbox = Outbox("1.0.0", lambda reason: None)
    outbox.direct = lambda frames: sent.extend(frames) or True  # type: ignore[method-assign]
    channel = Channel(outbox, "realtime:one", "1", dict(A))
    hub.pg_channels.add(channel)
    return channel


async def test_a_row_checked_for_one_user_never_reaches_the_channel_re_keyed_to_another() -> None:
    hub = Hub()
    capture = _checking(hub)
    sent: list[str | bytes] = []
    channel = _channel(hub, sent)

    async def visible(conns: Any, checks: dict[str, rls.Checks]) -> dict[str, set[int]]:
        ((fn, batch),) = checks.items()
        channel.set_claims(dict(B))  # the socket sends B's token while A's check runs
        return {fn: {rls.answer(g.g, 0) for g in batch.groups if json.loads(g.claims)["sub"] == "user-a"}}

    capture.rls.visible = visible  # type: ignore[method-assign]
    events = [_event("m1", [(channel, [1])])]
    await capture._authorize(None, events)  # type: ignore[arg-type]
    await capture._deliver(None, events)  # type: ignore[arg-type]
    assert sent == []  # before: B's socket received A's row


async def test_a_role_change_during_the_check_drops_that_channel_and_fails_nobody() -> None:
    hub = Hub()
    capture = _checking(hub)
    sent: list[str | bytes] = []
    changing = _channel(hub, sent)
    staying_sent: list[str | bytes] = []
    staying = _channel(hub, staying_sent)
    plain_access = capture.rls.access

    async def access(conn: Any, role: str, oid: int) -> rls.TableAccess:
        changing.set_claims({"role": "anon"})  # signed out: the anon key's token, during the privilege lookup
        return await plain_access(conn, role, oid)

    async def visible(conns: Any, checks: dict[str, rls.Checks]) -> dict[str, set[int]]:
        return {fn: {rls.answer(g.g, 0) for g in batch.groups} for fn, batch in checks.items()}

    capture.rls.access = access  # type: ignore[method-assign]
    capture.rls.visible = visible  # type: ignore[method-assign]
    events = [_event("m1", [(changing, [1]), (staying, [1])])]
    await capture._authorize(None, events)  # type: ignore[arg-type]  # before: KeyError('anon')
    await capture._deliver(None, events)  # type: ignore[arg-type]
    assert sent == [] and len(staying_sent) == 1
    assert json.loads(staying_sent[0])["payload"]["data"]["record"]["id"] == "m1"


def test_the_same_token_again_does_not_re_key_the_channel() -> None:
    """supabase-js sends the token again on every change of auth state; equal claims keep the channel's changes."""
    hub = Hub()
    channel = _channel(hub, [])
    keyed = channel.keyed
    channel.set_claims(dict(A))
    assert channel.keyed == keyed
    channel.set_claims(dict(B))
    assert channel.keyed > keyed and channel.role == "authenticated" and channel.claims["sub"] == "user-b"


async def test_a_refreshed_token_of_the_same_session_during_the_check_keeps_the_row() -> None:
    """A refresh (every hour: the same claims but ``exp`` and ``iat``) arriving while a change is checked dropped
    it until the client's next poll; Supabase Realtime delivers it. Another session or level still re-keys."""
    hub = Hub()
    capture = _checking(hub)
    sent: list[str | bytes] = []
    channel = _channel(hub, sent)
    channel.set_claims({**A, "session_id": "s1", "aal": "aal1", "exp": 100, "iat": 50})
    keyed = channel.keyed

    async def visible(conns: Any, checks: dict[str, rls.Checks]) -> dict[str, set[int]]:
        ((fn, batch),) = checks.items()
        channel.set_claims({**A, "session_id": "s1", "aal": "aal1", "exp": 3700, "iat": 100})  # the refresh
        return {fn: {rls.answer(g.g, 0) for g in batch.groups}}

    capture.rls.visible = visible  # type: ignore[method-assign]
    events = [_event("m1", [(channel, [1])])]
    await capture._authorize(None, events)  # type: ignore[arg-type]
    await capture._deliver(None, events)  # type: ignore[arg-type]
    assert len(sent) == 1 and json.loads(sent[0])["payload"]["data"]["record"]["id"] == "m1"  # before: dropped
    assert channel.keyed == keyed and channel.claims["exp"] == 3700  # later checks use the fresh token
    channel.set_claims({**A, "session_id": "s1", "aal": "aal2", "exp": 3700, "iat": 100})
    assert channel.keyed > keyed  # a higher level is another holder: re-keyed

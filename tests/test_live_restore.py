"""A session restored when the engine opens (the app restarted) hears realtime changes at once: the realtime
link gets the stored access token even though no client existed yet (before, its first join went out with
the anon key and every change came back "Error 401: Unauthorized" until the token was refreshed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sync import RemoteConfig, SyncEngine
from tests.conftest import PASSWORD, create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, sql


async def test_a_restored_session_receives_live_changes(
    stack: StackProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTCHAT_SESSION_STORE", "file")
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    ticket = seed_ticket(stack.db_url, customer.id, agent.id, "Restored", messages=[(customer.id, "hi")])
    config = RemoteConfig(stack.api_url, stack.anon_key)
    first = await SyncEngine.open(config, tmp_path)
    await first.sign_in(customer.email, PASSWORD)
    await first.sync_once()
    await first.close()

    engine = await SyncEngine.open(config, tmp_path)  # the app's next start: the stored session is restored
    try:
        assert engine.session is not None
        await engine.start()
        deadline = time.monotonic() + 60
        while not engine.remote.live.subscribed:  # the insert must come after the join to be heard
            assert time.monotonic() < deadline, "never subscribed"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the join's catch-up pull has run
        sql(
            stack.db_url,
            "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'live?')",
            ticket,
            agent.id,
        )
        while "live?" not in [m.content for m in engine.cache.thread(ticket)]:
            assert time.monotonic() < deadline, "the message never arrived"
            await asyncio.sleep(0.05)
        assert engine.parts.live.applied > 0  # it came over realtime, not a pull
    finally:
        await engine.close()

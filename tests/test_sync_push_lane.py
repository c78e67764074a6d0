"""The push lane (sync/push_lane.py) on a ``FakeRemote``: a message written while the loop's round is pulling goes
to the server at once instead of after the pull; offline, a write still only wakes the loop (its backoff stays
the one retry schedule); and the pull a push asks for still comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sync import SyncEngine
from sync.remote import Status
from tests.fakes import FakeRemote, FakeUser, fake_engine
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(60)


class GatedRemote(FakeRemote):
    """A server whose pulls can be held at their first request until the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def _gate(self) -> None:
        if self.hold:
            self.held.set()
            await self.release.wait()

    async def status(self, cursors: Mapping[str, tuple[int, int]]) -> Status | None:  # a later pull's first request
        await self._gate()
        return await super().status(cursors)

    async def pull(self, table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, Any]]:
        await self._gate()
        return await super().pull(table, after, max_rows)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[GatedRemote, FakeUser, str, SyncEngine]]:
    server = GatedRemote()
    agent, customer = server.add_user("agent", "Ann Agent"), server.add_user("customer", "Carl Customer")
    ticket_id = server.add_ticket(customer, agent)
    engine = await fake_engine(server, tmp_path / "e")
    engine.loop.retry_base, engine.loop.retry_cap = 0.01, 0.05
    engine.loop.poll_interval = 3600
    await engine.sign_in(agent.email, agent.password)
    await engine.start()
    await wait_for(lambda: engine.status.state == "online" and not engine.status.syncing, what="the first round")
    yield server, agent, ticket_id, engine
    server.release.set()
    await engine.close()


async def test_a_message_written_while_the_round_pulls_is_pushed_without_waiting_for_the_pull(
    setup: tuple[GatedRemote, FakeUser, str, SyncEngine],
) -> None:
    server, _, ticket_id, engine = setup
    server.hold = True
    engine.wake(pull=True)
    await asyncio.wait_for(server.held.wait(), 10)  # the round is in its pull, and stays there
    engine.commands.send_message(ticket_id, "not behind the pull")
    await wait_for(
        lambda: [r["content"] for r in server.messages_of(ticket_id)] == ["not behind the pull"],
        what="the push while the pull is held",
    )
    assert not server.release.is_set() and engine.status.syncing  # the round is still pulling
    await wait_for(lambda: engine.status.pending == 0, what="the acknowledgement")
    server.hold = False
    server.release.set()
    await wait_for(lambda: not engine.status.syncing, what="the round's end")
    message = engine.cache.thread(ticket_id)[-1]
    assert message.content == "not behind the pull" and message.local_state == "sent"


async def test_a_push_asks_for_a_pull_which_brings_what_others_wrote(
    setup: tuple[GatedRemote, FakeUser, str, SyncEngine],
) -> None:
    server, _, ticket_id, engine = setup
    other = server.add_ticket(server.add_user("customer", "Cora"), None, "Written meanwhile")
    engine.commands.send_message(ticket_id, "pushed by the lane")
    await wait_for(lambda: engine.cache.ticket(other) is not None, what="the pull after the lane's push")
    assert [r["content"] for r in server.messages_of(ticket_id)] == ["pushed by the lane"]


async def test_offline_a_write_wakes_the_loop_and_is_not_pushed_twice(
    setup: tuple[GatedRemote, FakeUser, str, SyncEngine],
) -> None:
    server, _, ticket_id, engine = setup
    server.offline = True
    engine.wake(pull=True)
    await wait_for(lambda: engine.status.state == "offline", what="offline")
    engine.loop.retry_base, engine.loop.retry_cap = 30.0, 30.0  # the next retry is far away
    await asyncio.sleep(0.1)  # let a retry already scheduled with the short backoff run out
    before = len([c for c in server.calls if c.startswith("insert")])
    engine.commands.send_message(ticket_id, "written offline")
    await wait_for(
        lambda: len([c for c in server.calls if c.startswith("insert")]) == before + 1, what="the loop's attempt"
    )
    await asyncio.sleep(0.3)  # a second attempt from the lane would come right away
    assert len([c for c in server.calls if c.startswith("insert")]) == before + 1
    server.offline = False
    engine.wake()
    await wait_for(lambda: engine.status.pending == 0 and engine.status.state == "online", what="the drain")
    assert [r["content"] for r in server.messages_of(ticket_id)] == ["written offline"]


async def test_while_realtime_is_subscribed_a_push_asks_for_no_pull(
    setup: tuple[GatedRemote, FakeUser, str, SyncEngine],
) -> None:
    server, _, ticket_id, engine = setup
    asked: list[bool] = []
    wake = engine.loop.wake

    def recording_wake(pull: bool = False, push: bool = False) -> None:
        asked.append(pull)
        wake(pull, push)

    engine.loop.wake = recording_wake  # type: ignore[method-assign]
    engine.commands.send_message(ticket_id, "realtime down: pull after")
    await wait_for(lambda: engine.status.pending == 0, what="the first push")
    assert asked == [True]  # the lane decided right after the acknowledgement, in the same step
    assert server.live.on_state is not None
    server.live.on_state("SUBSCRIBED")  # asks for the catch-up pull itself
    await wait_for(lambda: not engine.loop.pull_pending and not engine.status.syncing, what="the catch-up pull")
    asked.clear()
    engine.commands.send_message(ticket_id, "realtime up: it comes back by realtime")
    await wait_for(lambda: engine.status.pending == 0, what="the second push")
    assert asked == []
    server.live.on_state("CHANNEL_ERROR")
    asked.clear()
    engine.commands.send_message(ticket_id, "realtime down again")
    await wait_for(lambda: engine.status.pending == 0, what="the third push")
    assert asked == [True]

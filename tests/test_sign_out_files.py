"""Signing out leaves nothing of the user's on the device (a shared machine): the cache, the avatars folder
and the attachment files beside it — queued uploads and downloaded copies (``<cache>.files/``) — on a
``FakeRemote``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeRemote
from tests.test_sync_loop import World

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(name="world")
async def world_fixture(tmp_path: Path) -> AsyncIterator[World]:
    server = FakeRemote()
    w = World(server, server.add_user("agent", "Ann Agent"), server.add_user("customer", "Carl Customer"), tmp_path, [])
    yield w
    for engine in w.opened:
        await engine.close()


async def test_sign_out_deletes_the_attachment_files_too(world: World, tmp_path: Path) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 the customer's invoice")
    sent = agent.commands.send_message(tid, "the invoice", files=[invoice]).id
    await agent.sync_once()  # uploaded and acknowledged: the staged copy stays as the local file
    world.server.offline = True
    agent.commands.send_message(tid, "still queued", files=[invoice])  # a queued upload's copy
    path = agent.cache_path(world.agent.id)
    files = path.with_name(path.name + ".files")
    assert len(list(files.iterdir())) == 2, "both copies are on disk before signing out"
    assert [a["name"] for a in agent.cache.attachments(sent)] == ["invoice.pdf"]
    await agent.sign_out()
    assert not files.exists()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == []
    assert invoice.exists()  # the user's own file is theirs: only the cache's copies go

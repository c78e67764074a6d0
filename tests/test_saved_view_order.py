"""Saved views renamed and reordered (issue 14): through the ``workspace`` outbox on a ``FakeRemote``
(tests/fakes.py) — offline first, then exactly what the agent did on the server — and bad names refused
before anything is queued."""

from __future__ import annotations

import pytest

from sync.workspace_rows import InboxFilter
from tests.test_sync_workspace import World, settle, world

uses_world = world
pytestmark = pytest.mark.timeout(30)


async def test_rename_and_reorder_reach_the_server_through_the_outbox(world: World) -> None:
    agent, _ = await world.engine(world.agent)
    ws = agent.workspace
    ids = [ws.save_view(name, InboxFilter(view="mine"), position=0) for name in ("Alpha", "Beta", "Gamma")]
    await settle(agent)
    assert [v.name for v in ws.saved_views()] == ["Alpha", "Beta", "Gamma"]  # equal positions: by name

    world.server.offline = True
    ws.rename_view(ids[1], "  Bugs first ")
    ws.move_view(ids[2], -2)  # Gamma to the top
    ws.move_view(ids[0], 5)  # Alpha past the end: clamped to the bottom
    assert [v.name for v in ws.saved_views()] == ["Gamma", "Bugs first", "Alpha"]  # shown at once, offline
    assert agent.cache.counts()[0] > 0  # queued in the outbox
    world.server.offline = False
    await settle(agent)
    server = world.server.tables["saved_views"]
    assert [server[i]["name"] for i in sorted(ids, key=lambda i: server[i]["position"])] == [
        "Gamma",
        "Bugs first",
        "Alpha",
    ]
    assert server[ids[1]]["filters"] == {"view": "mine"}  # a rename changes the name only
    assert agent.cache.counts() == (0, 0)
    assert all(v.local_state == "sent" for v in ws.saved_views())

    # another device of the same agent pulls the same order
    other, _ = await world.engine(world.agent)
    await settle(other)
    assert [v.name for v in other.workspace.saved_views()] == ["Gamma", "Bugs first", "Alpha"]


async def test_bad_renames_queue_nothing(world: World) -> None:
    agent, _ = await world.engine(world.agent)
    ws = agent.workspace
    first = ws.save_view("Mine", InboxFilter(view="mine"))
    ws.save_view("Urgent", InboxFilter(priorities=("urgent",)))
    await settle(agent)
    for name, reason in (
        ("", "a view's name"),
        ("   ", "a view's name"),
        ("x" * 101, "a view's name"),
        ("urgent", "already"),
    ):
        with pytest.raises(ValueError, match=reason):
            ws.rename_view(first, name)
    with pytest.raises(ValueError, match="no such view"):
        ws.rename_view("7c9e6679-7425-40de-944b-e07fc1f90ae7", "Other")
    with pytest.raises(ValueError, match="no such view"):
        ws.move_view("7c9e6679-7425-40de-944b-e07fc1f90ae7", 1)
    assert agent.cache.counts() == (0, 0)
    assert [v.name for v in ws.saved_views()] == ["Mine", "Urgent"]

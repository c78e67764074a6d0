"""Edits and deletes through the outbox on a ``FakeRemote`` (tests/fakes.py): shown at once offline, sent as a
compare-and-set, a conflicting or refused edit loses with a Notice and the user's text back in the draft,
exactly once through lost answers, tombstones drop every cached copy of the text. What RLS and the guard decide
is proven against the real stack (tests/test_sync_history_stack.py); here the fake says what it refuses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync import RetryableError, SyncEngine, events
from sync.history import edit_outcome, may_delete, may_edit
from sync.models import Message
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


async def _thread_with(world: World, text: str) -> tuple[SyncEngine, list[events.Event], str, str]:
    """An agent's synced cache with one message of theirs on the server."""
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    message_id = agent.commands.send_message(tid, text).id
    await agent.sync_once()
    return agent, log, tid, message_id


def _notices(log: list[events.Event], kind: str) -> list[events.Notice]:
    return [e for e in log if isinstance(e, events.Notice) and e.kind == kind]


def _server(world: World, message_id: str) -> dict[str, Any]:
    return world.server.tables["messages"][message_id]


def _revisions(world: World, message_id: str) -> list[str]:
    rows = [r for r in world.server.tables["message_revisions"].values() if r["message_id"] == message_id]
    return [r["content"] for r in sorted(rows, key=lambda r: r["replaced_at"])]


async def test_an_offline_edit_shows_at_once_and_lands_once(world: World) -> None:
    agent, _, _, mid = await _thread_with(world, "my order is 1234")
    world.server.offline = True
    agent.history.edit_message(mid, "my order is 1243")
    shown = agent.cache.message(mid)
    assert shown is not None and shown.content == "my order is 1243" and shown.edited_at is not None
    assert [h.message_id for h in agent.cache.search("1243")] == [mid]
    assert agent.cache.search("1234") == []
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert _server(world, mid)["content"] == "my order is 1234" and agent.status.pending == 1
    world.server.offline = False
    await agent.sync_once()
    assert _server(world, mid)["content"] == "my order is 1243"
    assert _revisions(world, mid) == ["my order is 1234"]
    assert agent.status.pending == 0
    message = agent.cache.message(mid)
    assert message is not None and message.edited_at == _server(world, mid)["edited_at"]


async def test_a_lost_answer_is_resent_and_applied_once(world: World) -> None:
    agent, _, _, mid = await _thread_with(world, "draft one")
    agent.history.edit_message(mid, "draft two")
    world.server.lose_response.add("edit message")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    assert agent.status.pending == 1 and _server(world, mid)["content"] == "draft two"
    await agent.sync_once()  # the resend finds its own text there: acknowledged, not applied twice
    assert agent.status.pending == 0 and _revisions(world, mid) == ["draft one"]


async def test_edits_chain_in_order(world: World) -> None:
    agent, _, _, mid = await _thread_with(world, "v1")
    world.server.offline = True
    for text in ("v2", "v3", "v4"):
        agent.history.edit_message(mid, text)
    world.server.offline = False
    await agent.sync_once()
    assert _server(world, mid)["content"] == "v4" and _revisions(world, mid) == ["v1", "v2", "v3"]
    assert agent.cache.message(mid).content == "v4"  # type: ignore[union-attr]


async def test_a_pull_never_puts_back_a_text_the_user_replaced_or_deleted(world: World) -> None:
    agent, _, tid, mid = await _thread_with(world, "before the edit")
    other = agent.commands.send_message(tid, "before the delete").id
    await agent.sync_once()
    world.server.offline = True
    agent.history.edit_message(mid, "after the edit")
    agent.history.delete_message(other)
    world.server.offline = False
    world.server.fail_on["edit message"] = RetryableError("network: reset")
    # a push that fails, then a pull of both rows as the server still has them
    with pytest.raises(RetryableError):
        await agent.sync_once()
    world.server.write("messages", dict(_server(world, mid)))
    world.server.write("messages", dict(_server(world, other)))
    await agent.pull()
    assert agent.cache.message(mid).content == "after the edit"  # type: ignore[union-attr]
    gone = agent.cache.message(other)
    assert gone is not None and gone.content == "" and gone.deleted_at is not None
    assert agent.cache.search("before") == []
    await agent.sync_once()
    assert (_server(world, mid)["content"], _server(world, other)["content"]) == ("after the edit", "")


async def test_a_conflicting_edit_loses_with_a_notice_and_the_text_back_in_the_draft(world: World) -> None:
    agent, log, tid, mid = await _thread_with(world, "the original")
    world.server.offline = True
    agent.history.edit_message(mid, "my offline fix")
    agent.history.edit_message(mid, "my offline fix, twice")
    # meanwhile the same user edited it on another device
    world.server.tables["messages"][mid] |= {"content": "fixed on my phone", "edited_at": world.server.stamp()}
    world.server.offline = False
    await agent.sync_once()
    assert _server(world, mid)["content"] == "fixed on my phone"
    assert agent.cache.message(mid).content == "fixed on my phone"  # type: ignore[union-attr]
    assert agent.cache.draft(tid) == "my offline fix, twice"
    assert len(_notices(log, "message_edit_overruled")) == 1 and agent.status.pending == 0


async def test_a_refused_edit_shows_the_servers_reason_and_loses_nothing(world: World) -> None:
    agent, log, tid, mid = await _thread_with(world, "sent long ago")
    agent.commands.save_draft(tid, "a reply I was writing")
    agent.history.edit_message(mid, "too late?")
    window = "this message can no longer be edited: its edit window of 15 minutes has passed"
    world.server.refuse = lambda table, row: window if table == "messages:edit" else None
    await agent.sync_once()
    assert _server(world, mid)["content"] == "sent long ago"
    assert agent.cache.message(mid).content == "sent long ago"  # type: ignore[union-attr]
    (notice,) = _notices(log, "message_edit_refused")
    assert window in notice.text and notice.ticket_id == tid
    assert agent.cache.draft(tid) == "a reply I was writing\n\ntoo late?"
    assert agent.status.pending == 0 and agent.status.failed == 0


async def test_an_edit_of_a_message_deleted_meanwhile_is_dropped_with_it(world: World) -> None:
    agent, log, tid, mid = await _thread_with(world, "soon gone")
    world.server.offline = True
    agent.history.edit_message(mid, "soon gone, edited")
    world.server.offline = False
    await world.server.delete_message(mid)  # an admin, meanwhile
    await agent.sync_once()
    message = agent.cache.message(mid)
    assert message is not None and (message.content, message.deleted_at is not None) == ("", True)
    assert _notices(log, "message_edit_lost") and agent.cache.draft(tid) == ""
    assert agent.cache.outbox() == []


async def test_delete_drops_the_text_at_once_and_lands_once(world: World) -> None:
    agent, _, tid, mid = await _thread_with(world, "my password is hunter2")
    agent.commands.save_draft(tid, "as I said: my password is hunter2")
    world.server.offline = True
    agent.history.delete_message(mid)
    message = agent.cache.message(mid)
    assert message is not None and message.content == "" and message.deleted_at is not None
    assert agent.cache.search("hunter2") == [] and "hunter2" not in agent.cache.draft(tid)
    assert all("hunter2" not in str(e) for e in agent.cache.outbox())
    world.server.offline = False
    world.server.lose_response.add("delete message")
    with pytest.raises(RetryableError):
        await agent.sync_once()
    await agent.sync_once()
    assert _server(world, mid)["content"] == "" and _server(world, mid)["deleted_at"]
    assert agent.status.pending == 0


async def test_a_refused_delete_puts_the_servers_row_back(world: World) -> None:
    agent, log, _, mid = await _thread_with(world, "frozen with the ticket")
    world.server.refuse = lambda table, row: (
        "messages in a closed ticket cannot be deleted" if table == "messages:delete" else None
    )
    agent.history.delete_message(mid)
    await agent.sync_once()
    assert agent.cache.message(mid).content == "frozen with the ticket"  # type: ignore[union-attr]
    (notice,) = _notices(log, "message_delete_refused")
    assert "closed ticket" in notice.text and agent.status.pending == 0


async def test_a_tombstone_from_the_server_drops_text_revisions_and_queued_edits(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    customer, _ = await world.engine(world.customer, "c")
    await customer.sync_once()
    mid = customer.commands.send_message(tid, "card 4111 1111 1111 1111").id
    await customer.sync_once()
    await world.server.edit_message(mid, "card 4111 1111 1111 1111", "card 4111 1111 1111 1112")
    agent, _ = await world.engine(world.agent, "a")
    await agent.sync_once()
    assert [r.content for r in agent.history.revisions(mid)] == ["card 4111 1111 1111 1111"]
    assert customer.history.revisions(mid) == []
    agent.commands.save_draft(tid, "re: card 4111 1111 1111 1112")
    await world.server.delete_message(mid)
    await agent.sync_once()
    message = agent.cache.message(mid)
    assert message is not None and message.content == "" and message.deleted_at is not None
    assert agent.history.revisions(mid) == [] and agent.cache.search("4111") == []
    assert agent.cache.draft(tid) == "re:"


async def test_an_unsent_message_is_discarded_not_deleted(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    world.server.offline = True
    mid = agent.commands.send_message(tid, "never mind").id
    agent.history.delete_message(mid)
    assert agent.cache.message(mid) is None and agent.cache.outbox() == []


async def test_the_commands_refuse_what_the_server_would(world: World) -> None:
    agent, _, tid, mid = await _thread_with(world, "mine")
    theirs = world.server.tables["messages"]
    customer_msg = "c-1"
    theirs[customer_msg] = {
        "id": customer_msg,
        "ticket_id": tid,
        "sender_id": world.customer.id,
        "content": "hi",
        "is_internal": False,
        "created_at": world.server.stamp(),
        "change_xid": 1,
        "change_id": 10_000,
    }
    await agent.pull()
    with pytest.raises(ValueError, match="only the sender edits"):
        agent.history.edit_message(customer_msg, "put in their mouth")
    with pytest.raises(ValueError, match="only the sender or an admin"):
        agent.history.delete_message(customer_msg)
    world.server.clock.advance(16 * 60)
    with pytest.raises(ValueError, match="edit window of 15 minutes"):
        agent.history.edit_message(mid, "late")
    assert agent.cache.outbox() == []


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _msg(**kw: Any) -> Message:
    return Message(
        **(
            {
                "id": "m",
                "ticket_id": "t",
                "sender_id": "me",
                "content": "x",
                "is_internal": False,
                "created_at": T0.isoformat(),
            }
            | kw
        )
    )


@pytest.mark.parametrize(
    ("message", "status", "now", "allowed", "why"),
    [
        (_msg(), "open", T0 + timedelta(minutes=14), True, "own, open, within the window"),
        (_msg(), "open", T0 + timedelta(minutes=16), False, "the window passed"),
        (_msg(), "closed", T0, False, "never in a closed ticket"),
        (_msg(sender_id="them"), "open", T0, False, "only the sender"),
        (_msg(deleted_at=T0.isoformat()), "open", T0, False, "a deleted message"),
        (_msg(local_state="pending"), "open", T0 + timedelta(days=1), True, "not sent yet: the edit goes after it"),
    ],
)
def test_may_edit(message: Message, status: Any, now: datetime, allowed: bool, why: str) -> None:
    assert may_edit(message, "me", status, 900, now) is allowed, why


@pytest.mark.parametrize(
    ("message", "role", "status", "allowed", "why"),
    [
        (_msg(), "customer", "open", True, "the sender"),
        (_msg(), "agent", "closed", False, "not in a closed ticket"),
        (_msg(sender_id="them"), "agent", "open", False, "not another's"),
        (_msg(sender_id="them"), "admin", "closed", True, "an admin, always"),
        (_msg(deleted_at=T0.isoformat()), "admin", "open", False, "already deleted"),
    ],
)
def test_may_delete(message: Message, role: Any, status: Any, allowed: bool, why: str) -> None:
    assert may_delete(message, "me", role, status) is allowed, why


@pytest.mark.parametrize(
    ("server", "outcome"),
    [
        (None, "gone"),
        ({"content": "", "deleted_at": "2026-01-01T00:00:00Z"}, "deleted"),
        ({"content": "new", "deleted_at": None}, "applied"),
        ({"content": "old", "deleted_at": None}, "refused"),
        ({"content": "someone else's", "deleted_at": None}, "conflict"),
    ],
)
def test_edit_outcome(server: dict[str, Any] | None, outcome: str) -> None:
    assert edit_outcome("old", "new", server) == outcome


async def test_a_deleted_messages_files_leave_storage_and_a_refused_delete_keeps_them(
    world: World, tmp_path: Path
) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 invoice")
    kept = agent.commands.send_message(tid, "the invoice", files=[invoice]).id
    gone = agent.commands.send_message(tid, "the wrong invoice", files=[invoice]).id
    await agent.sync_once()
    assert len(world.server.files) == 2
    # the delete of `kept` is refused (the ticket was closed meanwhile): its file and its row stay
    world.server.refuse = lambda table, row: (
        "messages in a closed ticket cannot be deleted" if table == "messages:delete" and row["id"] == kept else None
    )
    agent.history.delete_message(kept)
    agent.history.delete_message(gone)
    assert agent.cache.attachments(kept) == [] and agent.cache.attachments(gone) == []
    await agent.sync_once()
    assert [key for _, key in world.server.files] == [f"{tid}/{kept}/invoice.pdf"]
    assert [a["name"] for a in agent.cache.attachments(kept)] == ["invoice.pdf"]
    assert agent.cache.message(kept).content == "the invoice"  # type: ignore[union-attr]
    assert agent.cache.outbox() == []


async def test_files_of_a_message_an_admin_deleted_leave_storage_by_their_uploader(
    world: World, tmp_path: Path
) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    shot = tmp_path / "screen.png"
    shot.write_bytes(b"\x89PNG screen")
    mid = agent.commands.send_message(tid, "a screenshot", files=[shot]).id
    await agent.sync_once()
    await world.server.delete_message(mid)  # an admin
    await agent.sync_once()  # the pull brings the tombstone and queues the removal; the next round sends it
    await agent.sync_once()
    assert world.server.files == {} and agent.cache.outbox() == []


async def test_a_burst_of_scrubs_rewrites_the_index_at_most_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.cache import history

    agent, _, _, _ = await _thread_with(world, "anything")
    runs: list[int] = []
    real = history.scrub
    monkeypatch.setattr(history, "scrub", lambda conn: (runs.append(1), real(conn)))
    await asyncio.gather(*(agent.cache.scrub() for _ in range(10)))
    assert 1 <= len(runs) <= 2
    runs.clear()
    await agent.cache.scrub()  # a request after the burst is never skipped
    assert runs == [1]


async def _seen_and_opened(engine: SyncEngine, message_id: str) -> list[Path]:
    """What the app makes of a message's picture on this computer: the downloaded file, its thumbnail and the
    copy opened with the system's application (supportchat_app.blobs, components/attachment_view.py)."""
    (attachment_id,) = [str(a["id"]) for a in engine.cache.attachments(message_id)]
    files = engine.attachments
    downloaded = await files.file(attachment_id)
    thumb = files.thumbnail(attachment_id)
    thumb.write_bytes(b"RIFF thumbnail")
    await files.thumbnail_used(attachment_id)
    opened = files.open_folder(attachment_id)
    opened.mkdir(parents=True)
    (opened / "screen.png").write_bytes(downloaded.read_bytes())
    await files.opened(attachment_id)
    return [downloaded, thumb, opened]


@pytest.mark.parametrize("by", ["the sender", "the server"])
async def test_a_deleted_messages_thumbnail_and_opened_copy_leave_the_disk(
    world: World, tmp_path: Path, by: str
) -> None:
    """Regression (review14, MEDIUM): only the downloaded file went; the thumbnail and the opened copy stayed."""
    tid = world.server.add_ticket(world.customer, world.agent)
    customer, _ = await world.engine(world.customer, "c")
    agent, _ = await world.engine(world.agent, "a")
    await customer.sync_once()
    shot = tmp_path / "screen.png"
    shot.write_bytes(b"\x89PNG my passport")
    mid = customer.commands.send_message(tid, "my passport", files=[shot]).id
    await customer.sync_once()
    await agent.sync_once()
    left = await _seen_and_opened(agent, mid) + await _seen_and_opened(customer, mid)
    assert all(p.exists() for p in left)
    if by == "the sender":
        customer.history.delete_message(mid)
    else:
        await world.server.delete_message(mid)  # an admin
    await customer.sync_once()
    await agent.sync_once()
    await agent.cache.scrub()
    await customer.cache.scrub()
    assert [p for p in left if p.exists()] == []
    for engine in (agent, customer):
        assert list((engine.cache.files_dir / "open").iterdir()) == []
        assert engine.attachments.used_bytes() == 0


async def test_opened_copies_count_against_the_bound_and_unlisted_ones_leave(world: World, tmp_path: Path) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    shot = tmp_path / "screen.png"
    shot.write_bytes(b"\x89PNG" + b"x" * 996)
    mid = agent.commands.send_message(tid, "a screenshot", files=[shot]).id
    await agent.sync_once()
    (attachment_id,) = [str(a["id"]) for a in agent.cache.attachments(mid)]
    files = agent.attachments
    opened = files.open_folder(attachment_id)
    opened.mkdir(parents=True)
    (opened / "screen.png").write_bytes(shot.read_bytes())
    await files.opened(attachment_id)
    assert files.used_bytes() == 2000, "the queued copy and the opened copy"
    stray = files.open_folder(str(uuid.uuid4()))  # left by an older version for a row the cache no longer has
    stray.mkdir(parents=True)
    (stray / "old.pdf").write_bytes(b"%PDF old")
    await files.evict()
    assert not stray.exists() and opened.exists()
    await files.set_cache_bytes(1000)  # the sent message's own file was used before its opened copy
    assert agent.cache.cached_attachment_files() == [] and opened.exists() and files.used_bytes() == 1000
    await files.set_cache_bytes(0)
    assert not opened.exists() and files.used_bytes() == 0
    opened.mkdir(parents=True)
    (opened / "screen.png").write_bytes(shot.read_bytes())
    files.forget_unlisted()  # after a demotion: every opened copy goes, like every thumbnail
    assert not opened.exists()

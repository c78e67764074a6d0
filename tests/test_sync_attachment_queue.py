"""The attachment queue of the sync engine against the real localbase: a message with files goes out
whole (files, then the message, then the attachment rows) and exactly once; a file the bucket would
refuse fails before anything is queued; a refused upload fails its whole message, which never appears
on the server without its files; retry sends it all once the ticket accepts it again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sync import events
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql


def _file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


async def test_message_with_files_goes_out_whole_and_once(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Screenshots")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    shots = [_file(tmp_path, "error 1.png", 200_000), _file(tmp_path, "résumé.pdf", 50_000)]
    message = customer.commands.send_message(tid, "see attached", files=shots)
    queued = customer.cache.attachments(message.id)
    assert [a["local_state"] for a in queued] == ["pending", "pending"]
    assert customer.cache.attachment_progress(message.id) == (0, 2)
    assert [e["kind"] for e in customer.cache.outbox()] == [
        "attachment_upload",
        "attachment_upload",
        "message",
        "attachment",
        "attachment",
    ]
    await customer.sync_once()
    await customer.sync_once()  # a second round sends nothing twice
    rows = sql(
        stack.db_url,
        "select name, mime, size, sha256, object_path from public.attachments where message_id = %s order by name",
        message.id,
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("error 1.png", "image/png", 200_000),
        ("résumé.pdf", "application/pdf", 50_000),
    ]
    assert {r[3] for r in rows} == {hashlib.sha256(p.read_bytes()).hexdigest() for p in shots}
    objects = sql(
        stack.db_url,
        "select name, owner_id from storage.objects where bucket_id = 'attachments' and name like %s order by name",
        f"{tid}/{message.id}/%",
    )
    assert [o[0] for o in objects] == sorted(r[4] for r in rows)
    assert {o[1] for o in objects} == {users.customer.id}
    assert [a["local_state"] for a in customer.cache.attachments(message.id)] == ["sent", "sent"]
    assert customer.cache.attachment_progress(message.id) == (2, 2)
    assert customer.cache.outbox() == []
    assert sql(stack.db_url, "select count(*) from public.messages where id = %s", message.id) == [(1,)]


async def test_a_file_the_bucket_refuses_fails_before_queuing(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Too big")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    big = tmp_path / "huge.png"
    with big.open("wb") as fh:
        fh.truncate(25 * 1024 * 1024 + 1)
    with pytest.raises(ValueError, match="at most 25 MB"):
        customer.commands.send_message(tid, "too big", files=[big])
    with pytest.raises(ValueError, match="cannot be attached"):
        customer.commands.send_message(tid, "a page", files=[_file(tmp_path, "page.html", 10)])
    assert customer.cache.outbox() == []
    assert not any(customer.cache.files_dir.glob("*")) if customer.cache.files_dir.exists() else True


async def test_a_refused_upload_fails_the_whole_message_then_retry_sends_it(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Closing soon")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    sql(stack.db_url, "update public.tickets set status = 'closed' where id = %s", tid)  # the cache does not know
    message = customer.commands.send_message(tid, "one more thing", files=[_file(tmp_path, "late.png", 1000)])
    await customer.sync_once()
    failed = customer.cache.message(message.id)
    assert failed is not None and failed.local_state == "failed"
    assert failed.error is not None and "file could not be sent" in failed.error
    assert any(isinstance(e, events.Notice) and e.kind == "message_failed" for e in engines.log(customer))
    assert sql(stack.db_url, "select count(*) from public.messages where id = %s", message.id) == [(0,)]
    assert sql(stack.db_url, "select count(*) from storage.objects where name like %s", f"%/{message.id}/%") == [(0,)]
    sql(stack.db_url, "update public.tickets set status = 'open' where id = %s", tid)
    customer.commands.retry(message.id)
    await customer.sync_once()
    sent = customer.cache.message(message.id)
    assert sent is not None and sent.local_state == "sent"
    assert sql(stack.db_url, "select count(*) from public.attachments where message_id = %s", message.id) == [(1,)]


async def test_discarding_a_message_drops_its_queued_files(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Never mind")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    message = customer.commands.send_message(tid, "oops", files=[_file(tmp_path, "wrong.png", 100)])
    staged = [Path(a["local_path"]) for a in customer.cache.attachments(message.id)]
    assert all(p.exists() for p in staged)
    customer.commands.discard(message.id)
    assert customer.cache.outbox() == [] and customer.cache.attachments(message.id) == []
    assert not any(p.exists() for p in staged)


async def test_others_pull_the_attachments_their_rights_allow(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Pulled files")
    customer = await engines.open(users.customer)
    agent = await engines.open(users.agent)
    await customer.sync_once()
    await agent.sync_once()
    shared = customer.commands.send_message(tid, "photo", files=[_file(tmp_path, "photo.png", 3000)])
    await customer.sync_once()
    note = agent.commands.send_message(tid, "internal scan", internal=True, files=[_file(tmp_path, "scan.pdf", 2000)])
    await agent.sync_once()
    await agent.sync_once()
    await customer.sync_once()
    seen = agent.cache.attachments(shared.id)
    assert [(a["name"], a["mime"], a["size"], a["local_state"]) for a in seen] == [
        ("photo.png", "image/png", 3000, "sent")
    ]
    assert seen[0]["local_path"] is None  # not downloaded until asked for
    assert customer.cache.attachments(note.id) == []  # an internal note's file never reaches a customer
    # a ticket that becomes visible later (its cursor already passed these rows) brings them by backfill
    other = await engines.open(users.agent2)
    await other.sync_once()
    assert other.cache.attachments(shared.id) == []  # assigned to another agent: not visible
    sql(stack.db_url, "update public.tickets set assignee_id = null where id = %s", tid)
    await other.sync_once()
    await other.sync_once()
    assert [a["name"] for a in other.cache.attachments(shared.id)] == ["photo.png"]


async def test_downloads_on_demand_into_a_bounded_lru(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Downloads")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    files = [_file(tmp_path, f"p{i}.png", 40_000) for i in range(3)]
    sent = [customer.commands.send_message(tid, f"file {i}", files=[f]) for i, f in enumerate(files)]
    pending = customer.cache.cached_attachment_files()
    assert len(pending) == 3 and all(pinned for *_, pinned in pending)  # queued uploads are never evicted
    await customer.sync_once()
    agent = await engines.open(users.agent)
    await agent.sync_once()
    agent.attachments.cache_bytes = 100_000  # room for two of the three
    ids = [agent.cache.attachments(m.id)[0]["id"] for m in sent]
    first = await agent.attachments.file(ids[0])
    assert first.read_bytes() == files[0].read_bytes()
    await agent.attachments.file(ids[1])
    assert await agent.attachments.file(ids[0]) == first  # a hit: opened again, now the most recent
    await agent.attachments.file(ids[2])  # over budget: the least recently opened (ids[1]) goes
    kept = {i for i, *_ in agent.cache.cached_attachment_files()}
    assert kept == {ids[0], ids[2]}
    assert not (agent.cache.files_dir / ids[1]).exists()
    again = await agent.attachments.file(ids[1])  # evicted files download again when asked for
    assert again.read_bytes() == files[1].read_bytes()


async def test_sign_out_removes_the_users_files(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    """Downloaded, queued and staged files are the account's data like the cache: they leave with it."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Leave nothing behind")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    customer.commands.send_message(tid, "queued", files=[_file(tmp_path, "queued.png", 500)])
    files_dir = customer.cache.files_dir
    (files_dir / "staging").mkdir()
    (files_dir / "staging" / "picked.txt").write_text("not sent yet")
    assert any(files_dir.iterdir())
    await customer.sign_out()
    assert not files_dir.exists()

"""Deleted attachments reach every cache (migration 20261216000200, sync/cache/attachment_deletes.py).

Regression: a row deleted from ``public.attachments`` (a cleanup job, an admin's tooling, a cascade) left nothing
for the pull's change cursor, and realtime's DELETE was applied for nobody, so every other client kept the row and
its downloaded file for good. The server now keeps a tombstone per deleted attachment (``attachment_deletions``,
read as the attachment's message is read) that the pull pages after the attachments; a realtime DELETE of an
attachment is applied for every role.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from sync import SyncEngine
from sync.errors import PermanentError
from tests.conftest import Users, create_user
from tests.fakes import FakeRemote, fake_engine, one_ticket_desk
from tests.stackproc import StackProcess
from tests.test_storage_rls import PDF, Factory, as_, files
from tests.test_sync_live import started
from tests.test_sync_support import EngineFactory, seed_ticket, sql, wait_for

uses_as = as_

TOMBSTONES = "select id::text from attachment_deletions where id = any(%s::uuid[]) order by id"


async def _sent_with_file(engines: EngineFactory, users: Users, tmp_path: Path, tag: str) -> tuple[str, str, str]:
    """A ticket of the customer's whose agent sent a reply with one file; returns ticket, message, attachment."""
    tid = seed_ticket(engines.stack.db_url, users.customer, users.agent, f"{tag} {time.time_ns()}")
    agent = await engines.open(users.agent)
    await agent.sync_once()
    path = tmp_path / f"{tag}.txt"
    path.write_text(f"the {tag} file")
    mid = agent.commands.send_message(tid, f"the {tag}", files=[path]).id
    await agent.sync_once()
    (aid,) = [str(r["id"]) for r in agent.cache.attachments(mid)]
    assert sql(engines.stack.db_url, "select count(*) from attachments where id = %s", aid) == [(1,)]
    return tid, mid, aid


async def _shared_file(engines: EngineFactory, users: Users, tmp_path: Path, tag: str) -> tuple[SyncEngine, str, str]:
    """``_sent_with_file``, and the customer's engine holding its row after a pull; returns that engine, the message
    and the attachment."""
    _, mid, aid = await _sent_with_file(engines, users, tmp_path, tag)
    customer = await engines.open(users.customer)
    await customer.sync_once()
    assert [str(r["id"]) for r in customer.cache.attachments(mid)] == [aid]
    return customer, mid, aid


async def test_a_deleted_attachment_leaves_the_other_cache_with_its_file(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    customer, mid, aid = await _shared_file(engines, users, tmp_path, "invoice")
    downloaded = await customer.attachments.file(aid)
    assert downloaded.read_text() == "the invoice file"

    sql(stack.db_url, "delete from attachments where id = %s", aid)  # a cleanup job (any service-role delete)
    await customer.sync_once()
    assert customer.cache.attachment(aid) is None and customer.cache.attachments(mid) == []
    assert not downloaded.exists()
    assert [p for p in customer.cache.files_dir.rglob("*") if p.is_file()] == []
    assert customer.cache.message(mid) is not None  # the message stays, without its file

    agent = engines.engines[0]  # the uploader's (opened first): its own cache drops its copy too
    await agent.sync_once()
    assert agent.cache.attachment(aid) is None
    assert [p for p in agent.cache.files_dir.rglob("*") if p.is_file()] == []

    later = await engines.open(users.customer)  # a cache made after the delete never had it
    await later.sync_once()
    assert later.cache.attachment(aid) is None


async def test_a_realtime_delete_reaches_a_customers_cache_at_once(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    customer, _, aid = await _shared_file(engines, users, tmp_path, "receipt")
    downloaded = await customer.attachments.file(aid)
    await started(customer)  # no periodic pull: only realtime can bring it within the wait
    pulls = customer.status.last_synced_at
    sql(stack.db_url, "delete from attachments where id = %s", aid)
    await wait_for(
        lambda: customer.cache.attachment(aid) is None and not downloaded.exists(), what="the realtime DELETE applied"
    )
    assert customer.status.last_synced_at == pulls  # by realtime, not by a pull


async def test_own_queued_upload_survives_a_tombstone_of_its_id(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    """A tombstone (or realtime DELETE) naming an id this cache holds as the user's own unsent file leaves it: the
    outbox still owns that file (a resend under the same id clears the server's tombstone)."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, f"queued {time.time_ns()}")
    customer = await engines.open(users.customer)
    await customer.sync_once()
    path = tmp_path / "draft.txt"
    path.write_text("not sent yet")
    mid = customer.commands.send_message(tid, "with a file", files=[path]).id
    (row,) = customer.cache.attachments(mid)
    aid, local = str(row["id"]), Path(str(row["local_path"]))
    await customer.cache.drop_deleted_attachments([(aid, mid)])
    assert customer.cache.attachment(aid) is not None and local.read_text() == "not sent yet"
    await customer.sync_once()  # and it still goes
    assert sql(stack.db_url, "select count(*) from attachments where id = %s", aid) == [(1,)]


async def test_a_download_the_delete_overtook_leaves_no_file(
    stack: StackProcess, users: Users, engines: EngineFactory, tmp_path: Path
) -> None:
    customer, mid, aid = await _shared_file(engines, users, tmp_path, "race")
    remote = customer.remote
    real = remote.download_file

    async def download_then_delete(*args: object, **kwargs: object) -> None:
        await real(*args, **kwargs)  # type: ignore[arg-type]
        await customer.cache.drop_deleted_attachments([(aid, mid)])  # the pull's tombstone lands meanwhile

    remote.download_file = download_then_delete  # type: ignore[method-assign]
    with pytest.raises(KeyError):
        await customer.attachments.file(aid)
    assert [p for p in customer.cache.files_dir.rglob("*") if p.is_file()] == []


def _ticket(as_: Factory, users: Users, subject: str) -> str:
    """A ticket of the customer's, assigned to the agent."""
    row = {"customer_id": users.customer.id, "subject": f"{subject} {time.time_ns()}", "assignee_id": users.agent.id}
    return str(as_("service").table("tickets").insert(row).execute().data[0]["id"])


def _attach(as_: Factory, who: str, ticket: str, message: str, name: str, *, attachment_id: str | None = None) -> str:
    path = f"{ticket}/{message}/{name}"
    files(as_(who)).upload(path, PDF, {"content-type": "application/pdf"})
    row = {"message_id": message, "ticket_id": ticket, "name": name, "object_path": path}
    if attachment_id is not None:
        row["id"] = attachment_id
    row["sha256"] = hashlib.sha256(PDF).hexdigest()
    return str(as_(who).table("attachments").insert(row).execute().data[0]["id"])


def _public_and_note(as_: Factory, users: Users, subject: str) -> tuple[str, str, str, str, str]:
    """A ticket with a public reply and an internal note, a file on each: the ticket, both messages, both files."""
    ticket = _ticket(as_, users, subject)
    public = as_("agent").table("messages").insert({"ticket_id": ticket, "content": "the form"}).execute().data[0]
    note = (
        as_("agent")
        .table("messages")
        .insert({"ticket_id": ticket, "content": "fraud check", "is_internal": True})
        .execute()
        .data[0]
    )
    shown = _attach(as_, "agent", ticket, public["id"], "form.pdf")
    hidden = _attach(as_, "agent", ticket, note["id"], "fraud.pdf")
    return ticket, str(public["id"]), str(note["id"]), shown, hidden


def test_tombstones_are_read_as_their_messages_are(as_: Factory, users: Users, stack: StackProcess) -> None:
    ticket, public, _, shown, hidden = _public_and_note(as_, users, "tombstones")
    assert sql(stack.db_url, TOMBSTONES, [shown, hidden]) == []
    sql(stack.db_url, "delete from attachments where id = any(%s::uuid[])", [shown, hidden])
    assert sql(stack.db_url, TOMBSTONES, [shown, hidden]) == sorted([(shown,), (hidden,)])

    def seen(who: str) -> set[str]:
        listed = {r["id"] for r in as_(who).table("attachment_deletions").select("id").execute().data}
        pulled = {r["id"] for r in as_(who).rpc("sync_attachment_deletions", {}).execute().data}
        assert listed & {shown, hidden} == pulled & {shown, hidden}
        return listed & {shown, hidden}

    assert seen("customer") == {shown}  # never the internal note's
    assert seen("customer2") == set()  # another customer's ticket
    assert seen("agent") == {shown, hidden} and seen("admin") == {shown, hidden}
    assert seen("agent2") == set()  # the ticket is a teammate's: this agent reads none of its messages
    for call in (
        lambda: as_("anon").table("attachment_deletions").select("id").execute(),
        lambda: as_("anon").rpc("sync_attachment_deletions", {}).execute(),
    ):
        with pytest.raises(APIError) as err:
            call()
        assert err.value.code == "42501"

    fake = {"id": str(uuid.uuid4()), "message_id": public, "ticket_id": ticket, "is_internal": False}
    for who in ("customer", "agent", "admin", "service"):
        for write in (
            lambda t: t.insert(fake).execute(),
            lambda t: t.update({"deleted_at": "2020-01-01T00:00:00+00:00"}).eq("id", shown).execute(),
            lambda t: t.delete().eq("id", shown).execute(),
        ):
            with pytest.raises(APIError) as err:
                write(as_(who).table("attachment_deletions"))
            assert err.value.code == "42501", who
    assert sql(stack.db_url, TOMBSTONES, [shown, hidden]) == sorted([(shown,), (hidden,)])


def test_a_reinserted_attachment_clears_its_tombstone(as_: Factory, users: Users, stack: StackProcess) -> None:
    ticket = _ticket(as_, users, "again")
    message = as_("agent").table("messages").insert({"ticket_id": ticket, "content": "x"}).execute().data[0]["id"]
    aid = _attach(as_, "agent", ticket, message, "again.pdf")
    row = sql(
        stack.db_url,
        "select message_id, ticket_id, uploader_id, name, sha256, object_path from attachments where id = %s",
        aid,
    )[0]
    sql(stack.db_url, "delete from attachments where id = %s", aid)
    assert sql(stack.db_url, TOMBSTONES, [aid]) == [(aid,)]
    sql(
        stack.db_url,
        "insert into attachments (id, message_id, ticket_id, uploader_id, name, sha256, object_path)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        aid,
        *row,
    )
    assert sql(stack.db_url, TOMBSTONES, [aid]) == []
    assert as_("customer").rpc("sync_attachment_deletions", {}).execute().data is not None
    assert aid not in {r["id"] for r in as_("customer").table("attachment_deletions").select("id").execute().data}
    # deleted once more: a tombstone again (a new one, past every cursor that saw the first)
    sql(stack.db_url, "delete from attachments where id = %s", aid)
    assert sql(stack.db_url, TOMBSTONES, [aid]) == [(aid,)]


def test_another_message_cannot_take_a_deleted_attachments_id(as_: Factory, users: Users, stack: StackProcess) -> None:
    """review20 M1, review21: the insert that clears a tombstone is the same message's. Another customer who learnt
    the id of an internal note's deleted file cannot attach a file of their own under it: the insert would erase the
    tombstone (review20), or its own delete would later rewrite the tombstone under their message (review21), and
    the staff caches holding the note's file would keep it for good."""
    ticket = _ticket(as_, users, "hidden")
    note = (
        as_("agent")
        .table("messages")
        .insert({"ticket_id": ticket, "content": "fraud check", "is_internal": True})
        .execute()
        .data[0]["id"]
    )
    hidden = _attach(as_, "agent", ticket, note, "fraud.pdf")
    sql(stack.db_url, "delete from attachments where id = %s", hidden)
    theirs = str(
        as_("customer2").table("tickets").insert({"subject": f"mine {time.time_ns()}"}).execute().data[0]["id"]
    )
    mine = as_("customer2").table("messages").insert({"ticket_id": theirs, "content": "x"}).execute().data[0]["id"]
    with pytest.raises(APIError) as err:
        _attach(as_, "customer2", theirs, mine, "mine.pdf", attachment_id=hidden)
    assert err.value.code == "23505" and "used once" in str(err.value.message)
    assert sql(stack.db_url, TOMBSTONES, [hidden]) == [(hidden,)]
    assert sql(stack.db_url, "select count(*) from attachments where id = %s", hidden) == [(0,)]
    assert hidden in {r["id"] for r in as_("agent").rpc("sync_attachment_deletions", {}).execute().data}
    assert hidden not in {r["id"] for r in as_("customer2").table("attachment_deletions").select("id").execute().data}


def test_a_message_deleted_outright_tombstones_its_files_as_it_was_read(
    as_: Factory, users: Users, stack: StackProcess
) -> None:
    """review20 L1: a message deleted outright takes its attachments along, and their tombstones were recorded with
    the message already gone. A public message's are still its customer's to read (their cache holds the files),
    an internal note's still staff's only."""
    _, public, note, shown, hidden = _public_and_note(as_, users, "outright")
    sql(stack.db_url, "delete from messages where id = any(%s::uuid[])", [public, note])
    flags = "select id::text, is_internal from attachment_deletions where id = any(%s::uuid[]) order by id"
    assert sql(stack.db_url, flags, [shown, hidden]) == sorted([(shown, False), (hidden, True)])
    pulled = {r["id"] for r in as_("customer").rpc("sync_attachment_deletions", {}).execute().data}
    assert shown in pulled and hidden not in pulled


def test_an_uploader_deleted_tombstones_their_files_as_they_were_read(
    as_: Factory, users: Users, stack: StackProcess
) -> None:
    """review22: an account deleted takes its messages and its uploads by two cascades of its profile, in the order of
    the constraints' internal trigger names; in either order a public reply's file is tombstoned as public (the
    message deletes its attachments first, while it is still there to read), an internal note's as internal."""
    ticket = _ticket(as_, users, "leaver")
    leaver = create_user(stack.db_url, "agent")
    ids = {kind: str(uuid.uuid4()) for kind in ("public", "note", "shown", "hidden")}
    with psycopg.connect(stack.db_url, autocommit=True) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")  # the rows as they were, no triggers
        for message, internal, attachment in (("public", False, "shown"), ("note", True, "hidden")):
            conn.execute(
                "insert into messages (id, ticket_id, sender_id, content, is_internal) values (%s, %s, %s, 'x', %s)",
                (ids[message], ticket, leaver.id, internal),
            )
            conn.execute(
                "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256,"
                " object_path) values (%s, %s, %s, %s, 'f.pdf', 'application/pdf', 3, %s, %s)",
                (ids[attachment], ids[message], ticket, leaver.id, "0" * 64, f"{ticket}/{ids[message]}/f.pdf"),
            )
    sql(stack.db_url, "delete from auth.users where id = %s", leaver.id)
    flags = "select id::text, is_internal from attachment_deletions where id = any(%s::uuid[]) order by id"
    want = sorted([(ids["shown"], False), (ids["hidden"], True)])
    assert sql(stack.db_url, flags, [ids["shown"], ids["hidden"]]) == want


def test_a_deleted_ticket_leaves_no_tombstones(stack: StackProcess, users: Users, as_: Factory) -> None:
    """A cascade from a ticket's delete records nothing nobody could read (and fails nothing)."""
    ticket = _ticket(as_, users, "gone")
    message = as_("agent").table("messages").insert({"ticket_id": ticket, "content": "x"}).execute().data[0]["id"]
    aid = _attach(as_, "agent", ticket, message, "gone.pdf")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("delete from tickets where id = %s", (ticket,))
    assert sql(stack.db_url, TOMBSTONES, [aid]) == []


def _server_row(server: FakeRemote, attachment_id: str, message: Mapping[str, Any], name: str) -> dict[str, Any]:
    """An attachment row of ``message`` on the fake server, as Storage's upload and the insert leave it."""
    row = {"id": attachment_id, "message_id": message["id"], "ticket_id": message["ticket_id"]}
    row |= {"uploader_id": message["sender_id"], "name": name, "mime": "application/pdf", "size": 3}
    return row | {
        "sha256": "0" * 64,
        "object_path": f"{message['ticket_id']}/{message['id']}/{name}",
        "created_at": server.stamp(),
    }


async def test_the_pull_pages_tombstones_after_attachments_on_the_fake_server(tmp_path: Path) -> None:
    """The engine's side alone (tests/fakes.py): a tombstone pulled drops the row; a re-insert under the same id
    clears the tombstone and the row comes back; a server without the function is asked once, and the pull goes
    on."""
    server, agent, _ = one_ticket_desk(1)
    message = next(iter(server.tables["messages"].values()))
    aid = str(uuid.uuid4())
    row = _server_row(server, aid, message, "a.pdf")
    server.write("attachments", row)
    engine = await fake_engine(server, tmp_path / "agent")
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        assert engine.cache.attachment(aid) is not None
        server.delete_attachment(aid)
        await engine.sync_once()
        assert engine.cache.attachment(aid) is None
        assert await engine.cache.cursor("attachment_deletions") != (0, 0)
        server.write("attachments", row)  # as a resend would: the tombstone goes with the insert
        server.tables["attachment_deletions"].pop(aid)
        await engine.sync_once()
        assert engine.cache.attachment(aid) is not None

        async def older(table: str, after: tuple[int, int], max_rows: int = 1000) -> list[dict[str, object]]:
            if table == "attachment_deletions":
                raise PermanentError("Could not find the function", code="PGRST202", status=404)
            return await real(table, after, max_rows)

        real = server.pull
        server.pull = older  # type: ignore[method-assign]
        server.delete_attachment(aid)
        await engine.sync_once()  # no error: the rest of the pull went on, deleted files stay cached
        assert engine.parts.puller.pulls_deletions is False and engine.status.last_error is None
    finally:
        await engine.close()


def _precious(files_dir: Path) -> list[Path]:
    """Files a path built from the id ``../victim`` would name: beside the files folder, and inside it."""
    files_dir.mkdir(parents=True, exist_ok=True)
    outside, inside = files_dir.parent / "victim", files_dir / "victim"
    (outside / "precious.txt").parent.mkdir(parents=True, exist_ok=True)
    (inside / "precious.txt").parent.mkdir(parents=True, exist_ok=True)
    kept = [outside / "precious.txt", inside / "precious.txt", files_dir / "victim.webp"]
    for path in kept:
        path.write_text("keep me")
    return kept


async def test_a_hostile_servers_attachment_id_names_no_file_outside_the_folder(tmp_path: Path) -> None:
    """review20 H1: an attachment id is part of the paths the cache deletes (its download, thumbnail, opened copy),
    so a server row with the id ``../victim`` is set aside rather than cached, and a tombstone or a realtime DELETE
    naming it deletes nothing, also when an older client had cached such a row."""
    server, agent, tid = one_ticket_desk(1)
    message = next(iter(server.tables["messages"].values()))
    hostile = "../victim"
    row = _server_row(server, hostile, message, "a.pdf")
    server.write("attachments", row)
    engine = await fake_engine(server, tmp_path / "agent")
    try:
        await engine.sign_in(agent.email, agent.password)
        kept = _precious(engine.cache.files_dir)
        await engine.sync_once()
        assert engine.cache.attachment(hostile) is None
        assert [(r.table, r.row_id) for r in engine.cache.set_aside] == [("attachments", hostile)]
        assert engine.status.state == "online"  # the rest of the pull went on; the status line names the skip
        assert "not a uuid" in (engine.status.last_error or "")
        # an older client took the row: its tombstone, then a realtime DELETE, go through the same drop
        engine.cache._store.write(  # a row no current client writes
            lambda c: c.execute(
                "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256,"
                " object_path, created_at, local_state, local_path) values (?, ?, ?, ?, 'a.pdf', 'application/pdf',"
                " 3, ?, ?, ?, 'sent', null)",
                (hostile, message["id"], tid, message["sender_id"], "0" * 64, row["object_path"], row["created_at"]),
            )
        )
        server.delete_attachment(hostile)
        await engine.sync_once()
        assert engine.cache.attachment(hostile) is None  # the row went
        assert all(path.read_text() == "keep me" for path in kept)  # and nothing outside its own files
    finally:
        await engine.close()


async def test_a_tombstone_drops_its_own_message_row_not_the_ids_new_one(tmp_path: Path) -> None:
    """review20 M1, the engine's side: the server let another message's attachment take a deleted attachment's id
    (its tombstone stays). The attachments' page brings the new row first: the cached row of the deleted one goes
    with its file, not renamed under its old message; the tombstone that follows (under the old message) leaves the
    new row alone."""
    server, agent, _ = one_ticket_desk(2)
    old_message, new_message = list(server.tables["messages"].values())
    aid = str(uuid.uuid4())

    server.write("attachments", _server_row(server, aid, old_message, "old.pdf"))
    engine = await fake_engine(server, tmp_path / "agent")
    try:
        await engine.sign_in(agent.email, agent.password)
        await engine.sync_once()
        downloaded = engine.cache.files_dir / aid
        downloaded.parent.mkdir(parents=True, exist_ok=True)
        downloaded.write_bytes(b"old")
        assert await engine.cache.set_attachment_file(aid, downloaded, time.time())
        server.delete_attachment(aid)
        server.write(
            "attachments", _server_row(server, aid, new_message, "new.pdf")
        )  # the id taken again; the tombstone stays
        await engine.sync_once()
        assert await engine.cache.cursor("attachment_deletions") != (0, 0)  # the tombstone was pulled
        got = engine.cache.attachment(aid)
        assert got is not None and (got["message_id"], got["name"]) == (new_message["id"], "new.pdf")
        assert got["local_path"] is None and not downloaded.exists()  # the old file went with its row
        assert [r["id"] for r in engine.cache.attachments(str(old_message["id"]))] == []
    finally:
        await engine.close()

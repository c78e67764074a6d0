"""review16, as a compromised server would try it: a server row under the id of this user's queued (or just
acknowledged) reply, in another ticket and from another sender. Adopting it showed another thread's text as the
user's own reply, marked sent, and the push, which ignores duplicates, took the server's row for the reply's
delivery, so the reply was silently lost. Now the local message is kept as written and marked failed, and
retrying it is refused (it would be taken for delivered again); discarding it works.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from postgrest.exceptions import APIError
from supabase import Client

from sync import RemoteConfig, SyncEngine
from sync.cache.writes import FOREIGN_ID_ERROR
from tests.conftest import User, Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture
from tests.test_sync_support import seed_ticket, sql

uses_clients = clients_fixture

FOREIGN = "insert into messages (id, ticket_id, sender_id, content) values (%s, %s, %s, 'SERVER TEXT under your id')"


@dataclass
class Desk:
    engine: SyncEngine
    mine: str  # the agent's ticket the reply goes to
    other: str  # the ticket the server's row names


@asynccontextmanager
async def synced(stack: StackProcess, user: User, path: Path) -> AsyncIterator[SyncEngine]:
    """An engine signed in as ``user`` and synced."""
    engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), path)
    try:
        await engine.sign_in(user.email, user.password)
        await engine.sync_once()
        yield engine
    finally:
        await engine.close()


@pytest.fixture
async def desk(stack: StackProcess, users: Users, tmp_path: Path) -> AsyncIterator[Desk]:
    """An agent's engine, signed in and synced, with two of their tickets."""
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "Foreign id: mine")
    other = seed_ticket(stack.db_url, users.customer, users.agent, "Foreign id: other")
    async with synced(stack, users.agent, tmp_path / "client") as engine:
        yield Desk(engine, mine, other)


async def test_a_server_row_under_a_replys_id_is_never_adopted(desk: Desk, stack: StackProcess, users: Users) -> None:
    engine, mine, other = desk.engine, desk.mine, desk.other
    queued = engine.commands.send_message(mine, "queued reply")
    sql(stack.db_url, FOREIGN, queued.id, other, users.customer.id)  # before the push: the pull sees it first
    await engine.pull()
    local = engine.cache.message(queued.id)
    assert local is not None
    assert (local.ticket_id, local.content, local.local_state) == (mine, "queued reply", "failed")
    assert local.error == FOREIGN_ID_ERROR
    assert [e["state"] for e in engine.cache.outbox() if e["entity_id"] == queued.id] == ["failed"]
    await engine.push()
    assert engine.cache.message(queued.id).local_state == "failed"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="another message under this reply's id"):
        engine.commands.retry(queued.id)

    acked = engine.commands.send_message(mine, "acknowledged reply")
    sql(stack.db_url, FOREIGN, acked.id, other, users.customer.id)  # before the push: its insert is ignored
    await engine.push()
    await engine.pull()
    local = engine.cache.message(acked.id)
    assert local is not None and (local.ticket_id, local.content) == (mine, "acknowledged reply")
    assert local.local_state == "failed", "the server never took this reply: the user must see it"
    engine.commands.discard(acked.id)
    assert engine.cache.message(acked.id) is None
    assert sql(stack.db_url, "select ticket_id::text, content from messages where id = %s", acked.id) == [
        (other, "SERVER TEXT under your id")
    ], "the foreign row is the server's; nothing of the reply reached it"


async def test_a_foreign_tombstone_under_a_replys_id_drops_none_of_its_files(
    desk: Desk, stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """review16b: the guard ran after the tombstone handling, so a deleted foreign row under a queued reply's id
    still deleted the reply's attachment rows and local file, and cut its text from the draft."""
    engine, mine, other = desk.engine, desk.mine, desk.other
    evidence = tmp_path / "evidence.txt"
    evidence.write_text("the only copy of these bytes")
    queued = engine.commands.send_message(mine, "queued reply with a file", files=[evidence])
    files = [(a["id"], a["local_path"]) for a in engine.cache.attachments(queued.id)]
    assert len(files) == 1 and Path(files[0][1]).exists()
    sql(stack.db_url, FOREIGN, queued.id, other, users.customer.id)
    sql(stack.db_url, "update messages set deleted_at = now(), content = '' where id = %s", queued.id)
    await engine.pull()
    local = engine.cache.message(queued.id)
    assert local is not None and (local.content, local.local_state) == ("queued reply with a file", "failed")
    assert [(a["id"], a["local_path"]) for a in engine.cache.attachments(queued.id)] == files
    assert Path(files[0][1]).read_text() == "the only copy of these bytes"


async def test_a_reply_refused_for_its_id_is_sent_as_a_new_message_with_its_files(
    desk: Desk, stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """fix17: a reply failed for good by the guard above could only be discarded (retry is refused: the same id
    would be refused again), and its text and files went with it. "Send as a new message" queues the same text,
    kind and files under a new id in the same ticket; the refused one goes, the server's foreign row stays."""
    engine, mine, other = desk.engine, desk.mine, desk.other
    receipt = tmp_path / "receipt.txt"
    receipt.write_text("order 1234, paid")
    queued = engine.commands.send_message(mine, "reply with the receipt", internal=True, files=[receipt])
    engine.commands.save_draft(mine, "a draft typed meanwhile")
    sql(stack.db_url, FOREIGN, queued.id, other, users.customer.id)
    await engine.pull()
    assert engine.cache.message(queued.id).error == FOREIGN_ID_ERROR  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="only a reply refused for its id"):
        engine.commands.send_as_new(engine.commands.send_message(mine, "an ordinary reply").id)
    engine.commands.save_draft(mine, "a draft typed meanwhile")

    resent = engine.commands.send_as_new(queued.id).message
    assert resent.id != queued.id
    assert (resent.ticket_id, resent.content, resent.is_internal, resent.local_state) == (
        mine,
        "reply with the receipt",
        True,
        "pending",
    )
    assert engine.cache.message(queued.id) is None
    assert engine.cache.draft(mine) == "a draft typed meanwhile", "sending it again leaves the draft alone"
    assert [a["name"] for a in engine.cache.attachments(resent.id)] == ["receipt.txt"]
    with pytest.raises(ValueError, match="only a reply refused for its id"):
        engine.commands.send_as_new(queued.id)  # gone: twice is refused, nothing queued again

    await engine.sync_once()
    assert engine.cache.message(resent.id).local_state == "sent"  # type: ignore[union-attr]
    assert sql(stack.db_url, "select ticket_id::text, content, is_internal from messages where id = %s", resent.id) == [
        (mine, "reply with the receipt", True)
    ]
    assert sql(stack.db_url, "select name, sha256 from attachments where message_id = %s", resent.id) == [
        ("receipt.txt", hashlib.sha256(b"order 1234, paid").hexdigest())
    ]
    assert sql(stack.db_url, "select ticket_id::text, content from messages where id = %s", queued.id) == [
        (other, "SERVER TEXT under your id")
    ]


async def test_a_file_of_a_refused_reply_no_longer_on_this_device_is_left_out_and_the_rest_goes(
    desk: Desk, stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """Regression (review17b): with a file of the refused reply no longer on this device, "Send as a new message"
    was refused, leaving only Discard, which loses the text. Now the text goes with the files still here, and the
    engine names the ones left out (the bubble says so); with none left, the text goes alone."""
    engine, mine, other = desk.engine, desk.mine, desk.other
    kept, gone = tmp_path / "kept.txt", tmp_path / "gone.txt"
    kept.write_text("still here")
    gone.write_text("about to go")
    queued = engine.commands.send_message(mine, "reply with two files", files=[kept, gone])
    alone = engine.commands.send_message(mine, "reply whose only file goes", files=[gone])
    for refused in (queued.id, alone.id):
        sql(stack.db_url, FOREIGN, refused, other, users.customer.id)
        for row in engine.cache.attachments(refused):
            if row["name"] == "gone.txt":
                Path(str(row["local_path"])).unlink()  # the staged copy: removed by hand, or the disk cleaned up
    await engine.pull()
    assert engine.cache.message(queued.id).error == FOREIGN_ID_ERROR  # type: ignore[union-attr]

    resent = engine.commands.send_as_new(queued.id)  # before: ValueError, "a file of this reply is no longer ..."
    assert resent.left_out == ("gone.txt",)
    assert [a["name"] for a in engine.cache.attachments(resent.message.id)] == ["kept.txt"]
    bare = engine.commands.send_as_new(alone.id)
    assert bare.left_out == ("gone.txt",) and engine.cache.attachments(bare.message.id) == []
    assert engine.cache.message(queued.id) is None and engine.cache.message(alone.id) is None

    await engine.sync_once()
    for message, files in ((resent.message, [("kept.txt",)]), (bare.message, [])):
        assert sql(stack.db_url, "select content from messages where id = %s", message.id) == [(message.content,)]
        assert sql(stack.db_url, "select name from attachments where message_id = %s", message.id) == files


async def test_a_reply_whose_push_is_ignored_as_a_duplicate_fails_at_once_without_a_pull(
    desk: Desk, stack: StackProcess, users: Users
) -> None:
    """mend17 (fix17 saw it): the push inserts with ignore-duplicates, so a reply whose id another row already holds
    got nothing back, was acknowledged as sent, and showed so until a pull (up to 60 s) found the server's row. The
    push now compares what the server holds under the ids it did not insert: another ticket's or sender's row fails
    the reply there and then, with "Send as a new message" offered; the reply's own row (a resend after a lost
    answer) is acknowledged as before."""
    engine, mine, other = desk.engine, desk.mine, desk.other
    refused = engine.commands.send_message(mine, "a reply the server holds another row for")
    delivered = engine.commands.send_message(mine, "a reply whose first answer was lost")
    sql(stack.db_url, FOREIGN, refused.id, other, users.customer.id)
    sql(  # the reply itself, as a first push that committed before its answer was lost would have left it
        stack.db_url,
        "insert into messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
        delivered.id,
        mine,
        users.agent.id,
        delivered.content,
    )
    sent = await engine.push()  # one push, no pull
    local = engine.cache.message(refused.id)
    assert local is not None and (local.local_state, local.error) == ("failed", FOREIGN_ID_ERROR)
    assert engine.commands.refused_for_its_id(local), "the bubble offers Send as a new message"
    assert [e["state"] for e in engine.cache.outbox() if e["entity_id"] == refused.id] == ["failed"]
    assert engine.cache.message(delivered.id).local_state == "sent"  # type: ignore[union-attr]
    assert sent == 1
    assert engine.status.failed == 1


@pytest.mark.parametrize("with_file", [False, True])
async def test_a_customers_reply_whose_id_an_unseen_row_holds_fails_at_once(
    stack: StackProcess, users: Users, tmp_path: Path, with_file: bool
) -> None:
    """mend17: the row holding the id may be one this user cannot read (another customer's ticket); the push's
    ignored insert was acknowledged, and no pull ever showed the row, so the reply stayed "sent" for good. With a
    file (files20), Storage refused the upload first and the reply failed with the raw refusal, no "Send as a new
    message"."""
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "Foreign id: a customer's own")
    theirs = seed_ticket(stack.db_url, users.customer2, users.agent, "Foreign id: another customer's")
    photo = tmp_path / "photo.txt"
    photo.write_text("a photo of the broken part")
    async with synced(stack, users.customer, tmp_path / "client") as engine:
        reply = engine.commands.send_message(mine, "my reply", files=[photo] if with_file else ())
        sql(stack.db_url, FOREIGN, reply.id, theirs, users.customer2.id)
        await engine.push()
        local = engine.cache.message(reply.id)
        assert local is not None and (local.local_state, local.error) == ("failed", FOREIGN_ID_ERROR)
        resent = engine.commands.send_as_new(reply.id).message
        await engine.push()
        assert engine.cache.message(resent.id).local_state == "sent"  # type: ignore[union-attr]
        assert sql(stack.db_url, "select ticket_id::text, content from messages where id = %s", resent.id) == [
            (mine, "my reply")
        ]
        files = sql(stack.db_url, "select name from attachments where message_id = %s", resent.id)
        assert files == ([("photo.txt",)] if with_file else [])


def deliver(stack: StackProcess, message_id: str, ticket_id: str, sender: User, content: str) -> None:
    """The reply itself on the server, as a first push that committed before its answer was lost left it."""
    sql(
        stack.db_url,
        "insert into messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
        message_id,
        ticket_id,
        sender.id,
        content,
    )


def reassign(stack: StackProcess, ticket_id: str, to: User) -> None:
    sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", to.id, ticket_id)


async def test_a_delivered_reply_is_not_failed_when_its_ticket_is_reassigned_during_the_check(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """review17c (LOW): mend17's push asked who holds the ids its insert skipped with a REST read (RLS), and failed
    every id it could not read. The user's own reply, delivered by a first push whose answer was lost, is skipped
    by the resend's insert; the ticket reassigned away before the read hid that row, so the delivered reply was
    failed as held by another message ("Send as a new message" then posted it twice). The server now answers
    without the caller's RLS (rpc messages_not_mine). The reassignment is made right after the resend's insert."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Delivered, then reassigned")
    async with synced(stack, users.agent, tmp_path / "client") as engine:
        reply = engine.commands.send_message(tid, "delivered once, its answer lost")
        deliver(stack, reply.id, tid, users.agent, reply.content)
        remote = engine.remote
        insert = remote.insert_ignore

        async def then_reassigned(table: str, rows: Sequence[Mapping[str, object]], on_conflict: str) -> int | None:
            inserted = await insert(table, rows, on_conflict)
            if table == "messages":
                reassign(stack, tid, users.agent2)
            return inserted

        remote.insert_ignore = then_reassigned  # type: ignore[method-assign]
        await engine.push()
        local = engine.cache.message(reply.id)
        assert local is not None
        assert (local.local_state, local.error) == ("sent", None)
        assert sql(stack.db_url, "select count(*) from messages where id = %s", reply.id) == [(1,)]


async def test_a_delivered_reply_refused_after_its_ticket_was_reassigned_is_acknowledged(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """review17c, the refused resend: the ticket reassigned away before the resend, RLS refuses the insert, and the
    already-there check read the user's own row with RLS too (hidden): the delivered reply was failed."""
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Delivered, reassigned, resent")
    async with synced(stack, users.agent, tmp_path / "client") as engine:
        reply = engine.commands.send_message(tid, "delivered once, its answer lost")
        deliver(stack, reply.id, tid, users.agent, reply.content)
        reassign(stack, tid, users.agent2)
        await engine.push()
        local = engine.cache.message(reply.id)
        assert local is not None
        assert (local.local_state, local.error) == ("sent", None)
        assert [e for e in engine.cache.outbox() if e["entity_id"] == reply.id] == []


def test_messages_not_mine_tells_another_users_row_from_nothing_by_nothing(
    stack: StackProcess, users: Users, clients: ClientFactory
) -> None:
    """The function the push asks (migration 20261215000700), as an attacker would call it: another user's message
    ids come back exactly as ids nothing holds (no ticket, sender, content, nor that they exist); only the caller's
    own message in the ticket named is left out; more than 100 ids, arrays of two lengths, anon and the service
    role are refused."""
    theirs = seed_ticket(stack.db_url, users.customer2, users.agent, "not_mine: another customer's")
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "not_mine: mine")
    foreign, own, nothing = (str(uuid.uuid4()) for _ in range(3))
    deliver(stack, foreign, theirs, users.customer2, "SECRET of another customer")
    deliver(stack, own, mine, users.customer, "my own")
    customer = clients(stack.mint(sub=users.customer.id))

    def ask(client: Client, pairs: list[tuple[str, str]]) -> list[object]:
        params = {"message_ids": [m for m, _ in pairs], "ticket_ids": [t for _, t in pairs]}
        return list(client.rpc("messages_not_mine", params).execute().data or [])

    answer = ask(customer, [(foreign, theirs), (foreign, mine), (own, mine), (own, theirs), (nothing, mine)])
    assert sorted(map(str, answer)) == sorted({foreign, own, nothing}), answer
    assert "SECRET" not in repr(answer)
    assert ask(customer, [(own, mine)]) == []
    assert sorted(map(str, ask(customer, [(foreign, theirs), (nothing, theirs)]))) == sorted([foreign, nothing])
    agent = clients(stack.mint(sub=users.agent.id))  # staff who may read the row: still not theirs
    assert [str(i) for i in ask(agent, [(foreign, theirs)])] == [foreign]

    def refused(call: Callable[[], object], code: str) -> None:
        with pytest.raises(APIError) as err:
            call()
        assert err.value.code == code, err.value

    too_many = [(str(uuid.uuid4()), mine) for _ in range(101)]
    refused(lambda: ask(customer, too_many), "22023")
    assert len(ask(customer, too_many[:100])) == 100
    refused(lambda: customer.rpc("messages_not_mine", {"message_ids": [own], "ticket_ids": []}).execute(), "22023")
    refused(lambda: ask(clients(None), [(foreign, theirs)]), "42501")
    refused(lambda: ask(clients(stack.mint(role="service_role")), [(foreign, theirs)]), "42501")


async def test_a_reply_with_files_whose_id_another_row_holds_offers_send_as_new(
    desk: Desk, stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """Regression (files20): a reply with files sends its files first, and Storage refuses an upload under a message
    id another user's row holds (RLS: the uploader must be the message's sender), so the reply failed with the raw
    storage refusal and only Retry (refused again, for good) or Discard (losing text and files) were offered. The
    refusal is now told apart as the id's: the reply fails with FOREIGN_ID_ERROR and "Send as a new message" sends
    it whole."""
    engine, mine, other = desk.engine, desk.mine, desk.other
    receipt = tmp_path / "receipt.txt"
    receipt.write_text("order 1234, paid")
    reply = engine.commands.send_message(mine, "reply with the receipt", files=[receipt])
    sql(stack.db_url, FOREIGN, reply.id, other, users.customer.id)  # before the push: no pull sees it first
    await engine.push()
    local = engine.cache.message(reply.id)
    assert local is not None and (local.local_state, local.error) == ("failed", FOREIGN_ID_ERROR)
    assert engine.commands.refused_for_its_id(local), "the bubble offers Send as a new message"
    assert {e["state"] for e in engine.cache.outbox() if e["entity_id"] != reply.id} <= {"failed"}
    assert engine.status.failed >= 1
    resent = engine.commands.send_as_new(reply.id).message
    await engine.push()
    assert engine.cache.message(resent.id).local_state == "sent"  # type: ignore[union-attr]
    assert sql(stack.db_url, "select name, sha256 from attachments where message_id = %s", resent.id) == [
        ("receipt.txt", hashlib.sha256(b"order 1234, paid").hexdigest())
    ]
    assert sql(stack.db_url, "select count(*) from storage.objects where name like %s", f"%/{reply.id}/%") == [(0,)]


async def test_a_file_refused_for_a_closed_ticket_keeps_the_servers_reason(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    """The other side of the rule above: a customer's file refused because their ticket was closed meanwhile is
    not taken for a foreign id (Send as a new message would be refused the same way): the server's reason stays."""
    mine = seed_ticket(stack.db_url, users.customer, users.agent, "Closed with a file")
    photo = tmp_path / "late.txt"
    photo.write_text("too late")
    async with synced(stack, users.customer, tmp_path / "client") as engine:
        reply = engine.commands.send_message(mine, "one more thing", files=[photo])
        sql(stack.db_url, "update tickets set status = 'closed' where id = %s", mine)
        await engine.push()
        local = engine.cache.message(reply.id)
        assert local is not None and local.local_state == "failed" and local.error != FOREIGN_ID_ERROR
        assert not engine.commands.refused_for_its_id(local)

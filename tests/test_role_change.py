"""An admin changes the role of a user who is signed in (promotes a customer, demotes an agent): the app follows
at the next pull, or at once through realtime, without signing out. What the old role could see does not stay on
the device: a demoted agent's cache file is rebuilt, so no internal note, staff ticket or canned reply is left in it
(nor in its WAL); a promoted customer's cursors, which stopped at a customer's rows, start over, so the desk comes
whole. The unsent outbox survives, the saved session carries the new role into the next start, and an open
workspace page is drawn anew for what the new role may see and do. An admin changes a teammate's role from the
team page; nobody else can (the server's profiles guard), and the desk's last admin cannot be demoted.

Before this, the role was read once at sign-in: a demoted agent kept the staff UI and every cached staff row until
they signed out, and a promoted customer saw only their own tickets until then.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image

from supportchat_app.account import Account as TeamAccount
from supportchat_app.account import AccountError
from sync import SyncEngine, events
from sync.attachment_files import FolderDeleted
from sync.cache import Cache
from sync.models import LocalUser
from tests.conftest import User, create_user
from tests.helpers import wait_for
from tests.realtime.support import as_user
from tests.stackproc import StackProcess, session_claims
from tests.test_app_flows import (  # noqa: F401 (app_data is a fixture)
    WAIT,
    another_user,
    app_data,
    engine_of,
    eventually,
    running_app,
    sign_in,
)
from tests.test_app_mfa import text_of
from tests.test_sync_support import EngineFactory, seed_ticket, sql

pytestmark = pytest.mark.timeout(120)


def _set_role(stack: StackProcess, user: User, role: str) -> None:
    sql(stack.db_url, "update public.profiles set role = %s where id = %s", role, user.id)


def _internal_note(stack: StackProcess, ticket_id: str, author: User, text: str) -> None:
    sql(
        stack.db_url,
        "insert into public.messages (ticket_id, sender_id, content, is_internal) values (%s, %s, %s, true)",
        ticket_id,
        author.id,
        text,
    )


def _files_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _role_changes(engines: EngineFactory, engine: SyncEngine) -> list[events.RoleChanged]:
    return [e for e in engines.log(engine) if isinstance(e, events.RoleChanged)]


async def test_a_demoted_agent_keeps_nothing_staff_see(stack: StackProcess, engines: EngineFactory) -> None:
    agent, customer = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    secret = f"internal-{uuid.uuid4().hex}"
    ticket = seed_ticket(stack.db_url, customer, agent, "Refund", messages=[(customer, "hello")])
    _internal_note(stack, ticket, agent, secret)
    engine = await engines.open(agent)
    await engine.sync_once()
    canned = f"canned-{uuid.uuid4().hex}"
    engine.workspace.save_canned_reply("Greeting", canned)
    attached = f"attached-{uuid.uuid4().hex}"
    upload = engine.data_dir / "invoice.txt"
    upload.write_text(attached)
    engine.commands.send_message(ticket, "the invoice", files=[upload])
    await engine.sync_once()
    upload.unlink()
    assert engine.cache.has_ticket(ticket) and engine.workspace.canned_replies()
    assert attached.encode() in _files_bytes(engine.data_dir)  # the outbox's copy, sent, kept as a download

    # unsent when the role changes (a pull alone, no push): a read, a priority change and an internal note on the
    # other customer's ticket, and a draft there; none of it may come back into the rebuilt file
    unsent_note, draft = f"unsent-{uuid.uuid4().hex}", f"draft-{uuid.uuid4().hex}"
    engine.cache.queue_read(ticket)
    engine.cache.queue_ticket_update(ticket, {"priority": "high"})
    note = {"id": str(uuid.uuid4()), "ticket_id": ticket, "sender_id": agent.id, "content": unsent_note}
    engine.cache.queue_message({**note, "is_internal": 1})
    engine.cache.save_draft(ticket, draft)

    _set_role(stack, agent, "customer")
    await engine.pull()

    assert engine.user is not None and engine.user.role == "customer" and engine.cache.role == "customer"
    assert [(e.role, e.kept_unsent, e.dropped_unsent) for e in _role_changes(engines, engine)] == [("customer", 0, 3)]
    assert not engine.cache.has_ticket(ticket) and engine.cache.draft(ticket) == ""  # before any pull as a customer
    assert engine.status.pending == 0 and engine.status.failed == 0
    await engine.sync_once()  # the first pull as a customer
    assert not engine.cache.has_ticket(ticket)
    for table in ("messages", "tickets", "canned_replies", "tags"):
        assert engine.cache.count(table) == 0, table
    on_disk = _files_bytes(engine.data_dir)
    # the old file is gone, not moved aside; the downloads with it; the unsent staff work was not salvaged
    for text in (secret, canned, attached, unsent_note, draft, "Refund"):
        assert text.encode() not in on_disk, text
    session = engine.account.sessions.load()
    assert session is not None and session.user.role == "customer"


async def test_a_promoted_customer_gets_the_desk_and_keeps_the_unsent_message_and_file(
    stack: StackProcess, engines: EngineFactory
) -> None:
    customer, other = create_user(stack.db_url, "customer"), create_user(stack.db_url, "customer")
    own = seed_ticket(stack.db_url, customer, None, "Mine", messages=[(customer, "hi")])
    theirs = seed_ticket(stack.db_url, other, None, "Theirs", messages=[(other, "hello")])
    note = f"note-{uuid.uuid4().hex}"
    _internal_note(stack, theirs, create_user(stack.db_url, "agent"), note)
    engine = await engines.open(customer)
    engine.partial.set_days(90)  # a device's setting: it survives the rebuild
    await engine.sync_once()
    assert engine.cache.has_ticket(own) and not engine.cache.has_ticket(theirs)
    unsent = str(uuid.uuid4())
    upload = engine.data_dir / "photo.txt"
    upload.write_text("the photo's bytes")
    row = {"id": unsent, "ticket_id": own, "sender_id": customer.id, "content": "still here", "is_internal": 0}
    engine.cache.queue_message_with_files(row, engine.attachments.stage(own, unsent, [upload]))  # no push yet

    _set_role(stack, customer, "agent")
    await engine.pull()  # a pull alone: the message is still in the outbox when the role changes

    assert engine.user is not None and engine.user.role == "agent" and engine.partial.days() == 90
    kept = [(e.role, e.kept_unsent) for e in _role_changes(engines, engine)]
    assert kept == [("agent", 3)]  # the message, its file's upload and its attachment row
    await engine.sync_once()  # pushes the kept message and its file, then pulls the desk as an agent
    assert sql(stack.db_url, "select content from public.messages where id = %s", unsent) == [("still here",)]
    assert sql(stack.db_url, "select name from public.attachments where message_id = %s", unsent) == [("photo.txt",)]
    assert engine.cache.has_ticket(theirs)
    assert note in [m.content for m in engine.cache.thread(theirs)]
    assert engine.status.pending == 0 and engine.status.failed == 0

    restarted = await engines.open(data_dir=engine.data_dir)  # the next start: the saved session's role
    assert restarted.user is not None and restarted.user.role == "agent"


async def test_a_running_app_follows_a_demotion_through_realtime(stack: StackProcess, engines: EngineFactory) -> None:
    agent = create_user(stack.db_url, "agent")
    engine = await engines.open(agent)
    await engine.sync_once()
    await engine.start()
    await wait_for(lambda: engine.parts.live.subscribed, 30, "realtime subscribed")
    engine.loop.poll_interval = 3600  # no periodic pull: the profile's change itself must bring the switch
    _set_role(stack, agent, "customer")
    await wait_for(lambda: bool(_role_changes(engines, engine)), 30, "the switch to the customer's role")
    assert engine.cache.role == "customer"
    await wait_for(lambda: engine.parts.live.subscribed, 30, "realtime subscribed again, as the customer")


def test_a_rebuilt_cache_keeps_the_outbox_and_drafts_only(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    me, ticket = str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(path, me, "agent")
    ticket_row = {"id": ticket, "customer_id": me, "assignee_id": None, "subject": "Offline", "status": "open"}
    cache.queue_ticket({**ticket_row, "priority": "normal"}, None)
    cache.queue_message(
        {"id": str(uuid.uuid4()), "ticket_id": ticket, "sender_id": me, "content": "queued", "is_internal": 0}
    )
    cache.save_draft(ticket, "half a reply")
    outbox = len(cache.outbox())
    cache.close()

    assert Cache.rebuild(path, "test") == (outbox, 0)

    cache = Cache.open(path, me, "customer")
    try:
        assert len(cache.outbox()) == outbox
        assert [m.content for m in cache.thread(ticket)] == ["queued"]
        assert cache.draft(ticket) == "half a reply"
    finally:
        cache.close()


async def test_the_open_workspace_is_drawn_anew_for_the_new_role(app_data: Path, stack: StackProcess) -> None:
    agent = create_user(stack.db_url, "agent")
    async with running_app() as user:
        await sign_in(user, agent)
        await user.should_see(marker="views", retries=WAIT)  # the staff's views: Mine, Unassigned…
        engine = engine_of(user)
        _set_role(stack, agent, "customer")
        await engine.sync_once()
        await user.should_see(marker="new-ticket", retries=WAIT)  # a customer's "My tickets"
        await user.should_not_see(marker="views")
        await user.should_not_see(marker="bulk-select")


async def test_an_admin_takes_an_agent_off_the_team_and_the_agents_app_follows(
    app_data: Path, stack: StackProcess
) -> None:
    admin_account, agent = create_user(stack.db_url, "admin"), create_user(stack.db_url, "agent")
    async with running_app() as admin:
        teammate = another_user()
        await sign_in(admin, admin_account)
        await sign_in(teammate, agent)
        await admin.open("/invite")
        await admin.should_see(marker=f"team-role-{agent.id}", retries=WAIT)
        own = admin.find(marker=f"team-role-{admin_account.id}").elements.pop()
        assert not own.enabled  # an admin does not lock themselves out from here
        admin.find(marker=f"team-role-{agent.id}").elements.pop().set_value("customer")
        await eventually(lambda: "Not on the team" in text_of(admin, "team-message"), "the change confirmed")
        assert sql(stack.db_url, "select role from public.profiles where id = %s", agent.id) == [("customer",)]
        await eventually(lambda: engine_of(teammate).user.role == "customer", "the agent's app following")
        await teammate.open("/")
        await teammate.should_see(marker="new-ticket", retries=WAIT)
        await teammate.should_not_see(marker="views")


async def test_only_an_admin_changes_a_role(stack: StackProcess, engines: EngineFactory) -> None:
    agent, other = create_user(stack.db_url, "agent"), create_user(stack.db_url, "agent")
    engine = await engines.open(agent)
    account = TeamAccount(stack.api_url, stack.anon_key)
    for target, role in ((other, "customer"), (agent, "admin")):  # another's role, and raising one's own
        with pytest.raises(AccountError):
            await account.set_role(await engine.access_token(), target.id, role)
    roles = sql(stack.db_url, "select id::text, role from public.profiles where id = any(%s)", [agent.id, other.id])
    assert sorted(roles) == sorted([(agent.id, "agent"), (other.id, "agent")])


def _as_admin(stack: StackProcess, admin: User, admins: list[User], statement: str, *params: str) -> str:
    """``statement`` as ``admin`` through the API's role (as PostgREST runs it), in a transaction where the stack's
    admins are only ``admins``; returns ``admin``'s role after it. Rolled back: the shared stack keeps its admins."""
    with psycopg.connect(stack.db_url) as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "update public.profiles set role = 'agent' where role = 'admin' and id <> all(%s)",
            ([a.id for a in admins],),
        )
        claims = json.dumps(session_claims(stack.db_url, admin.id, aal="aal2"))
        conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims,)
        )
        conn.execute(statement, params)
        row = conn.execute("select role from public.profiles where id = %s", (admin.id,)).fetchone()
        assert row is not None
        return str(row[0])


def test_the_desk_keeps_an_admin(stack: StackProcess) -> None:
    admin, other = create_user(stack.db_url, "admin"), create_user(stack.db_url, "admin")
    step_down = "update public.profiles set role = 'agent' where id = %s"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must keep an admin"):
        _as_admin(stack, admin, [admin], step_down, admin.id)  # the last admin
    assert _as_admin(stack, admin, [admin, other], step_down, admin.id) == "agent"  # another admin is left


async def test_a_thumbnail_made_while_a_demotion_empties_the_folder_is_not_left_behind(
    app_data: Path, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving forced, no sleeps: the app's thumbnail writer (a worker thread, `/attachment/<id>/thumb`) is
    held at its write while the demotion runs to its end (the folder's downloads and thumbnails deleted) and the
    new role asks for a thumbnail of its own (the folder made again); then the write goes on. The old role's
    thumbnail (here of an internal note's picture) must not be left in the folder. Before, it was put in place."""
    agent, customer = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Screenshots", messages=[(customer, "see attached")])
    async with running_app() as user:
        await sign_in(user, agent)
        engine = engine_of(user)
        await engine.sync_once()
        shot = engine.data_dir / "internal.png"
        out = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
        shot.write_bytes(out.getvalue())
        sent = engine.commands.send_message(ticket, "internal screenshot", internal=True, files=[shot])
        await engine.sync_once()
        attachment_id = str(engine.cache.attachments(sent.id)[0]["id"])
        assert engine.attachments.thumbnail(attachment_id).exists() is False
        loop = asyncio.get_running_loop()
        save, demoted = Image.Image.save, []

        async def demote() -> None:
            _set_role(stack, agent, "customer")
            await engine.pull()
            engine.attachments.thumbnail(str(uuid.uuid4()))  # the new role's thumbnail: the folder made again

        def held_save(image: Image.Image, target: Any, *args: Any, **kwargs: Any) -> None:
            if not demoted and str(target).endswith(".part"):
                demoted.append(True)
                asyncio.run_coroutine_threadsafe(demote(), loop).result(timeout=60)
            save(image, target, *args, **kwargs)

        monkeypatch.setattr(Image.Image, "save", held_save)
        answer = await user.http_client.get(f"/attachment/{attachment_id}/thumb")
        assert demoted and engine.user is not None and engine.user.role == "customer"
        left = [p.name for p in engine.cache.files_dir.rglob("*") if p.name.startswith(attachment_id)]
        assert left == [], "the old role's thumbnail (or download) outlived the demotion"
        assert answer.status_code == 404


async def test_a_download_that_ends_after_a_demotion_is_not_kept(stack: StackProcess, engines: EngineFactory) -> None:
    """The same for a download on demand: the customer's picture reaches the agent's disk only after the demotion
    emptied the folder (forced: fetched, then the demotion runs to its end, then the file lands). It is deleted and
    the caller told (FolderDeleted), not kept as an unlisted file nothing would ever delete."""
    agent, customer = create_user(stack.db_url, "agent"), create_user(stack.db_url, "customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Photo", messages=[(customer, "hello")])
    sender = await engines.open(customer)
    await sender.sync_once()
    photo = sender.data_dir / "photo.png"
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 90, 200)).save(out, "PNG")
    photo.write_bytes(out.getvalue())
    sent = sender.commands.send_message(ticket, "a photo", files=[photo])
    await sender.sync_once()
    engine = await engines.open(agent)
    await engine.sync_once()
    attachment_id = str(engine.cache.attachments(sent.id)[0]["id"])
    files, download = engine.attachments, engine.remote.download_file

    async def lands_after_the_demotion(bucket: str, key: str, local: Path, *args: Any) -> None:
        in_flight = engine.data_dir / "in-flight"  # the bytes, fetched while still an agent
        await download(bucket, key, in_flight, *args)
        _set_role(stack, agent, "customer")
        await engine.pull()  # the demotion empties the folder
        in_flight.replace(local)  # and then the download's file lands

    engine.remote.download_file = lands_after_the_demotion  # type: ignore[method-assign]
    with pytest.raises(FolderDeleted):
        await files.file(attachment_id)
    assert engine.user is not None and engine.user.role == "customer"
    assert [p for p in engine.cache.files_dir.rglob("*") if p.name.startswith(attachment_id)] == []


def _rls_ids(stack: StackProcess, user: User, table: str) -> set[str]:
    """The ids of `table` the server's RLS returns to `user` (role authenticated with their claims, as PostgREST)."""
    return {str(row[0]) for row in as_user(stack.db_url, user, f"select id from public.{table}")}


def _cached_ids(engine: SyncEngine, table: str) -> set[str]:
    with sqlite3.connect(f"file:{engine.cache.path}?mode=ro", uri=True) as conn:
        return {str(row[0]) for row in conn.execute(f"select id from {table}")}


@pytest.mark.parametrize(("start", "first"), [("agent", "customer"), ("customer", "agent")])
async def test_a_role_changed_back_while_the_app_rebuilds_ends_on_the_servers_last_role(
    stack: StackProcess, engines: EngineFactory, start: str, first: str
) -> None:
    """Two role changes in one burst: the first is being followed (the cache rebuilt, the session being saved) when
    the second lands on the server, back to the role the app started with. Forced, no sleeps: the second change is
    made from inside the rebuild. The app must end on the server's last role, with a cache holding exactly the rows
    RLS returns for it: none of the other role's, none missing (cursors started over for it)."""
    me = create_user(stack.db_url, start)
    customer, other = create_user(stack.db_url, "customer"), create_user(stack.db_url, "customer")
    staff = me if start == "agent" else create_user(stack.db_url, "agent")
    desk = seed_ticket(stack.db_url, customer, staff, "Desk", messages=[(customer, "hello")])
    _internal_note(stack, desk, staff, f"internal-{uuid.uuid4().hex}")
    seed_ticket(stack.db_url, other, None, "Someone else's", messages=[(other, "hi")])
    if start == "customer":
        seed_ticket(stack.db_url, me, None, "My own", messages=[(me, "mine")])
    engine = await engines.open(me)
    await engine.sync_once()
    save_user, seen = engine.account.save_user, []

    async def second_change_meanwhile(user: LocalUser) -> None:
        seen.append(user.role)
        if len(seen) == 1:  # inside the first rebuild: the server's role goes back
            _set_role(stack, me, start)
        await save_user(user)

    engine.account.save_user = second_change_meanwhile  # type: ignore[method-assign]
    _set_role(stack, me, first)
    await engine.pull()  # the first change followed; the second landed meanwhile
    for _ in range(3):  # the rounds the burst takes (a realtime wake asks for each): until nothing changes
        await engine.sync_once()

    assert seen == [first, start], "both changes followed, in order"
    assert engine.user is not None and engine.user.role == start and engine.cache.role == start
    assert [e.role for e in _role_changes(engines, engine)] == [first, start]
    session = engine.account.sessions.load()
    assert session is not None and session.user.role == start
    for table in ("tickets", "messages"):
        assert _cached_ids(engine, table) == _rls_ids(stack, me, table), table

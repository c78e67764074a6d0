"""A reply whose files went up before its client went away for longer than the server's orphan grace period
(notify/orphans.py) still goes out whole, against the real localbase with the grace shortened to an hour.

What happened before: the files were uploaded, the message insert never got through (the connection dropped),
the client stayed away; the purge then saw objects no `attachments` row names, older than the grace, and
removed them. When the client came back, the message went out and its attachment rows were refused ("upload
the file before describing it"): the reply arrived without its files. Now the pusher asks Storage about
uploads it did not make in the last minutes before sending their message, and uploads a vanished file again
from the queued copy (kept until its row is sent)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import psycopg
import pytest

from notify.orphans import StorageAdmin, purge_orphans
from sync.errors import RetryableError
from tests.conftest import create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql

HOUR = 3600.0


async def test_files_purged_while_the_client_was_away_are_uploaded_again(
    stack: StackProcess, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Away for days")
    data_dir = tmp_path / "away"
    sender = await engines.open(me, url=proxy.url, data_dir=data_dir)
    await sender.sync_once()
    paths = []
    for name in ("log.txt", "trace.pdf"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(b"%PDF" + os.urandom(40_000))
    msg = sender.commands.send_message(tid, "here are the files " + "x" * 5000, files=paths)
    rule = proxy.reset_request(b"POST /rest/v1/messages")  # the connection drops after the uploads
    with pytest.raises(RetryableError):
        await sender.sync_once()
    assert rule.hits == 1
    assert {r["local_state"] for r in sender.cache.attachments(msg.id)} == {"uploaded"}
    await sender.close()  # the laptop is shut for days

    objects = f"{tid}/{msg.id}/%"
    assert len(sql(stack.db_url, "select 1 from storage.objects where name like %s", objects)) == 2
    sql(stack.db_url, "update storage.objects set created_at = now() - interval '3 hours' where name like %s", objects)
    with psycopg.connect(stack.db_url) as conn:
        assert purge_orphans(conn, StorageAdmin(stack.api_url, stack.service_role_key), grace=HOUR) >= 2
    assert sql(stack.db_url, "select 1 from storage.objects where name like %s", objects) == []

    back = await engines.open(url=proxy.url, data_dir=data_dir)  # the session is restored, the outbox kept
    await back.sync_once()
    assert back.status.pending == 0 and back.status.failed == 0
    described = sql(
        stack.db_url, "select name, sha256 from public.attachments where message_id = %s order by name", msg.id
    )
    assert described == [(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(paths)]
    for attachment in back.cache.attachments(msg.id):  # and the bytes are there, whole
        local = await back.attachments.file(str(attachment["id"]))
        assert hashlib.sha256(local.read_bytes()).hexdigest() == attachment["sha256"]
    assert len(sql(stack.db_url, "select 1 from storage.objects where name like %s", objects)) == 2


async def test_a_row_refused_for_a_purged_object_gets_its_file_again(
    stack: StackProcess, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The narrower case: the message got through, the connection dropped before the attachment rows, and the
    purge ran meanwhile. The row's insert is refused ("upload the file before describing it"); the pusher
    uploads the file again from the queued copy and sends the row once more."""
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Rows later")
    sender = await engines.open(me, url=proxy.url)
    await sender.sync_once()
    path = tmp_path / "dump.txt"
    path.write_bytes(os.urandom(30_000))
    msg = sender.commands.send_message(tid, "the dump " + "y" * 5000, files=[path])
    rule = proxy.reset_request(b"POST /rest/v1/attachments")
    with pytest.raises(RetryableError):
        await sender.sync_once()
    assert rule.hits == 1
    assert sql(stack.db_url, "select count(*) from public.messages where id = %s", msg.id) == [(1,)]
    objects = f"{tid}/{msg.id}/%"
    sql(stack.db_url, "update storage.objects set created_at = now() - interval '3 hours' where name like %s", objects)
    with psycopg.connect(stack.db_url) as conn:
        assert purge_orphans(conn, StorageAdmin(stack.api_url, stack.service_role_key), grace=HOUR) >= 1
    assert sql(stack.db_url, "select 1 from storage.objects where name like %s", objects) == []

    await sender.sync_once()
    assert sender.status.pending == 0 and sender.status.failed == 0
    assert sql(stack.db_url, "select sha256 from public.attachments where message_id = %s", msg.id) == [
        (hashlib.sha256(path.read_bytes()).hexdigest(),)
    ]
    assert len(sql(stack.db_url, "select 1 from storage.objects where name like %s", objects)) == 1

"""A canned reply's file added offline (issue 14, sync/canned_files.py), against a real localbase through a proxy
that drops the connection: the file is on the device at once (the picker can attach it), its row waits in the
outbox, and back online the push uploads the bytes and then sends the row, once; other agents get the file. A
file its adder may not put on the reply (an agent, on a shared reply) comes back failed with the reason, and
removing it forgets it on the device.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sync import events
from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, sql

pytestmark = pytest.mark.timeout(240)

PDF = b"%PDF-1.4 the offline return label"


async def test_a_file_added_offline_is_uploaded_and_described_once_back_online(
    stack: StackProcess, users: Users, engines: EngineFactory, *, proxy: FaultProxy, tmp_path: Path
) -> None:
    admin = await engines.open(users.admin, url=proxy.url)
    reply = admin.workspace.save_canned_reply("Return label (offline)", "Your label is attached.", shared=True)
    await admin.sync_once()
    source = tmp_path / "label.pdf"
    source.write_bytes(PDF)

    proxy.set_mode("drop")
    try:
        file = await admin.canned_files.add(reply, source, "Return label.pdf")
        assert (file.local_state, file.size, file.mime) == ("pending", len(PDF), "application/pdf")
        local = admin.canned_files.local(file)  # on this device at once: the picker attaches it offline
        assert local is not None and local.read_bytes() == PDF
        assert admin.status.pending >= 1
        with pytest.raises(ValueError, match="already"):  # one name per reply, the queued one included
            await admin.canned_files.add(reply, source, "Return label.pdf")
        assert sql(stack.db_url, "select count(*) from canned_reply_files where canned_reply_id = %s", reply) == [(0,)]
    finally:
        proxy.set_mode("pass")

    await admin.sync_once()
    sent = admin.canned_files.cache_file(file.id)
    assert sent.local_state == "sent"
    key = f"canned/{reply}/Return label.pdf"
    assert sql(
        stack.db_url, "select id::text, object_path, size from canned_reply_files where canned_reply_id = %s", reply
    ) == [(file.id, key, len(PDF))]  # once, sized by the server from the stored object
    await admin.sync_once()  # nothing left to send: still one row
    assert sql(stack.db_url, "select count(*) from canned_reply_files where canned_reply_id = %s", reply) == [(1,)]

    agent = await engines.open(create_user(stack.db_url, "agent"))  # fresh: a short first sync
    await agent.sync_once()
    [seen] = agent.canned_files.files(reply)
    copy = agent.canned_files.local(seen)
    assert copy is not None and hashlib.sha256(copy.read_bytes()).hexdigest() == hashlib.sha256(PDF).hexdigest()


async def test_a_file_the_server_refuses_comes_back_failed_and_can_be_forgotten(
    stack: StackProcess, users: Users, engines: EngineFactory, *, proxy: FaultProxy, tmp_path: Path
) -> None:
    admin = await engines.open(users.admin)
    reply = admin.workspace.save_canned_reply("Shared, admins only", "Hello.", shared=True)
    await admin.sync_once()
    agent = await engines.open(create_user(stack.db_url, "agent"), url=proxy.url)
    await agent.sync_once()
    source = tmp_path / "mine.pdf"
    source.write_bytes(PDF)
    proxy.set_mode("drop")
    try:
        file = await agent.canned_files.add(reply, source, "mine.pdf")  # queued: the server decides
    finally:
        proxy.set_mode("pass")
    await agent.sync_once()
    failed = agent.canned_files.cache_file(file.id)
    assert failed.local_state == "failed" and failed.error
    assert any(isinstance(e, events.Notice) for e in engines.log(agent))
    assert agent.status.pending == 0  # it left the outbox
    assert sql(stack.db_url, "select count(*) from canned_reply_files where canned_reply_id = %s", reply) == [(0,)]
    await agent.canned_files.remove(failed)  # forgotten on this device, with its copy
    assert agent.canned_files.files(reply) == []
    assert agent.canned_files.local(failed) is None

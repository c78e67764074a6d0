"""Files on canned replies (issue 14), against a real localbase: an admin attaches a file to a shared canned
reply (Storage, then its row; size and type from the stored object), agents get the row by pull and the bytes
on their device (checked against the sha256), so the file is there offline; a removal takes it off every
device. As an attacker would try: customers never see the rows or the objects (not even by path), and only
who may write a canned reply may add or remove its files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest
from postgrest.exceptions import APIError

from notify.orphans import find_orphans
from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_storage_rls import Factory, as_, files, not_found, rls_refused
from tests.test_sync_support import EngineFactory, sql

uses_as = as_
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
]

PDF = b"%PDF-1.4 the refund policy, page 1"


async def test_a_canned_replys_file_reaches_agents_devices_offline_but_never_customers(
    stack: StackProcess, users: Users, engines: EngineFactory, *, proxy: FaultProxy, as_: Factory, tmp_path: Path
) -> None:
    admin = await engines.open(users.admin)
    reply = admin.workspace.save_canned_reply("Refund policy", "Our policy is attached.", shared=True)
    await admin.sync_once()
    source = tmp_path / "policy.pdf"
    source.write_bytes(PDF)
    with pytest.raises(ValueError, match="type"):  # the bucket's rules, before any upload
        bad = tmp_path / "tool.exe"
        bad.write_bytes(b"MZ")
        await admin.canned_files.add(reply, bad)
    file = await admin.canned_files.add(reply, source, "Refund policy.pdf")
    assert file.local_state == "pending"  # queued: the push uploads it, then sends its row
    await admin.sync_once()
    file = admin.canned_files.cache_file(file.id)
    assert (file.name, file.size, file.mime) == ("Refund policy.pdf", len(PDF), "application/pdf")  # the server's
    assert file.local_state == "sent"
    key = f"canned/{reply}/Refund policy.pdf"
    assert sql(stack.db_url, "select object_path, size from canned_reply_files where id = %s", file.id) == [
        (key, len(PDF))
    ]

    agent_user = create_user(stack.db_url, "agent")  # fresh: short first syncs, also late in the full suite
    agent = await engines.open(agent_user, url=proxy.url)
    await agent.sync_once()
    [seen] = agent.canned_files.files(reply)
    local = agent.canned_files.local(seen)
    assert local is not None and hashlib.sha256(local.read_bytes()).hexdigest() == seen.sha256
    proxy.set_mode("drop")  # offline: the file is on this device
    try:
        assert agent.canned_files.local(agent.canned_files.files(reply)[0]) == local
    finally:
        proxy.set_mode("pass")

    # customers: no rows, no object, not by its path either; their caches never get any
    for who in ("customer", "customer2"):
        assert as_(who).table("canned_reply_files").select("*").execute().data == []
        assert as_(who).rpc("sync_canned_reply_files", {}).execute().data == []
        not_found(lambda who=who: files(as_(who)).download(key))
        assert files(as_(who)).exists(key) is False
    customer = await engines.open(create_user(stack.db_url, "customer"))
    await customer.sync_once()
    assert customer.cache.count("canned_reply_files") == 0

    # only who may write the reply adds or removes its files: an agent, for a shared one, may not
    rls_refused(
        lambda: files(as_("agent")).upload(f"canned/{reply}/mine.pdf", PDF, {"content-type": "application/pdf"})
    )
    rls_refused(
        lambda: files(as_("customer")).upload(f"canned/{reply}/x.pdf", PDF, {"content-type": "application/pdf"})
    )
    with pytest.raises(APIError):
        as_("agent").table("canned_reply_files").insert(
            {"canned_reply_id": reply, "name": "Refund policy.pdf", "sha256": "0" * 64, "object_path": key}
        ).execute()
    assert (
        as_("agent").table("canned_reply_files").update({"deleted_at": "now()"}).eq("id", file.id).execute().data == []
    )
    with pytest.raises(APIError):  # nobody rewrites a file's row, its uploader neither
        as_("admin").table("canned_reply_files").update({"size": 1}).eq("id", file.id).execute()

    # an agent's own personal reply takes their files; the admin removes the shared one's file everywhere
    personal = agent.workspace.save_canned_reply("My sign-off", "Best, me")
    await agent.sync_once()
    mine = await agent.canned_files.add(personal, source, "card.pdf")
    assert [f.name for f in agent.canned_files.files(personal)] == ["card.pdf"]
    assert agent.canned_files.local(mine) is not None
    await agent.sync_once()
    assert agent.canned_files.cache_file(mine.id).local_state == "sent"  # the server took it
    await admin.sync_once()
    assert admin.canned_files.files(personal) == []  # personal: the admin does not see it
    with psycopg.connect(stack.db_url) as conn:  # the notify worker's orphan purge keeps a live reply's file
        assert key not in find_orphans(conn, grace=0, limit=100_000)
    await admin.canned_files.remove(file)
    with psycopg.connect(stack.db_url) as conn:  # and purges it once it is taken off the reply
        assert key in find_orphans(conn, grace=0, limit=100_000)
    assert admin.canned_files.files(reply) == []
    await agent.sync_once()
    assert agent.canned_files.files(reply) == [] and not local.exists()

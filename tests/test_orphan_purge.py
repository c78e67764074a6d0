"""The server's purge of orphan attachment objects (notify/orphans.py) against the real localbase: a file a
killed client uploaded and never described (no `attachments` row), older than the grace period, is removed
through the Storage API, its bytes included; a file uploaded just now whose row is still to come (an upload in
progress) and a file with its row are kept. The notify worker runs the purge in its loop."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from notify.orphans import PurgeError, StorageAdmin, purge_orphans
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote
from tests.conftest import Users
from tests.smtpsink import Sink
from tests.stackproc import StackProcess
from tests.test_notify import smtp, wait_for, worker  # noqa: F401 (the fixture)
from tests.test_sync_attachment_remote import _ticket

HOUR = 3600.0


async def _upload_as(stack: StackProcess, user_id: str, key: str, data: bytes, tmp: Path) -> None:
    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=user_id))
        src = tmp / uuid.uuid4().hex
        src.write_bytes(data)
        await remote.upload_file("attachments", key, src, "image/png")
    finally:
        await remote.close()


def _objects(db: psycopg.Connection, names: list[str]) -> set[str]:
    rows = db.execute(
        "select name from storage.objects where bucket_id = 'attachments' and name = any(%s)", (names,)
    ).fetchall()
    return {str(r[0]) for r in rows}


def _age(db: psycopg.Connection, name: str, hours: float) -> None:
    db.execute(
        "update storage.objects set created_at = now() - make_interval(secs => %s) where name = %s",
        (hours * HOUR, name),
    )


async def _download_status(stack: StackProcess, key: str) -> int:
    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{stack.api_url}/storage/v1/object/attachments/{key}",
            headers={"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"},
        )
        return response.status_code


async def test_an_orphan_is_purged_and_an_upload_in_progress_is_kept(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
    ticket = _ticket(db, users.customer.id)
    orphan = f"{ticket}/{uuid.uuid4()}/killed.png"  # uploaded, then the client died for good
    in_progress = f"{ticket}/{uuid.uuid4()}/uploading.png"  # uploaded a moment ago, its row still to come
    described = f"{ticket}/{uuid.uuid4()}/kept.png"  # a normal file with its message and row
    for key in (orphan, in_progress, described):
        await _upload_as(stack, users.customer.id, key, b"\x89PNG" + os.urandom(5000), tmp_path)
    message_id = described.split("/")[1]
    db.execute(
        "insert into public.messages (id, ticket_id, sender_id, content) values (%s, %s, %s, 'see file')",
        (message_id, ticket, users.customer.id),
    )
    db.execute(
        "insert into public.attachments (message_id, ticket_id, uploader_id, name, mime, size, sha256,"
        " object_path) values (%s, %s, %s, 'kept.png', 'image/png', 5004, %s, %s)",
        (message_id, ticket, users.customer.id, "0" * 64, described),
    )
    _age(db, orphan, 2)
    _age(db, described, 2)
    assert await _download_status(stack, orphan) == 200

    storage = StorageAdmin(stack.api_url, stack.service_role_key)
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        assert purge_orphans(conn, storage, grace=HOUR) >= 1
        assert purge_orphans(conn, storage, grace=HOUR) == 0, "nothing left to purge"
    assert _objects(db, [orphan, in_progress, described]) == {in_progress, described}
    assert await _download_status(stack, orphan) in (400, 404), "its bytes went too"
    assert await _download_status(stack, in_progress) == 200 and await _download_status(stack, described) == 200

    _age(db, in_progress, 2)  # now it is an orphan too, but the key is not the service role's: RLS removes nothing
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        assert purge_orphans(conn, StorageAdmin(stack.api_url, stack.anon_key), grace=HOUR) == 0
        with pytest.raises(PurgeError):
            purge_orphans(conn, StorageAdmin(stack.api_url, "not a key"), grace=HOUR)
    assert in_progress in _objects(db, [in_progress]), "a refused purge removes nothing"


async def test_the_notify_worker_purges_orphans_in_its_loop(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path, smtp: tuple[Sink, str]
) -> None:
    ticket = _ticket(db, users.customer2.id)
    orphan = f"{ticket}/{uuid.uuid4()}/discarded.png"
    await _upload_as(stack, users.customer2.id, orphan, b"\x89PNG" + os.urandom(100), tmp_path)
    _age(db, orphan, 200)  # older than the default week
    fresh = f"{ticket}/{uuid.uuid4()}/fresh.png"
    await _upload_as(stack, users.customer2.id, fresh, b"\x89PNG" + os.urandom(100), tmp_path)
    _age(db, fresh, 100)  # four days: within the default grace
    storage = StorageAdmin(stack.api_url, stack.service_role_key)
    with worker(stack, smtp[1], storage=storage) as w:
        wait_for(lambda: w.stats.purged >= 1 and orphan not in _objects(db, [orphan]), "the worker's purge", 60)
    assert fresh in _objects(db, [fresh])

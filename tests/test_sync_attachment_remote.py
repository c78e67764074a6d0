"""The sync engine's Storage port (``Remote.upload_file``/``download_file``) on supabase-py's async client
against the real localbase: a customer uploads into the attachments bucket and downloads it back, a
retry after a lost response is harmless (upsert), and refusals come out as the sync error tree
(PermanentError for RLS, size and type; AuthError for an expired token) so the push can decide."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from sync.errors import AuthError, PermanentError
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote
from tests.conftest import Users
from tests.stackproc import StackProcess


def _ticket(db: psycopg.Connection, customer: str, status: str = "open") -> str:
    row = db.execute("insert into public.tickets (customer_id, subject, status) values (%s, 'files', %s)"
                     " returning id::text", (customer, status)).fetchone()
    assert row is not None
    return str(row[0])


async def test_upload_and_download_through_the_port(stack: StackProcess, users: Users, db: psycopg.Connection,
                                                    tmp_path: Path) -> None:
    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=users.customer.id))
        ticket = _ticket(db, users.customer.id)
        key = f"{ticket}/{uuid.uuid4()}/shot.png"
        src = tmp_path / "shot.png"
        src.write_bytes(b"\x89PNG" + os.urandom(300_000))
        await remote.upload_file("attachments", key, src, "image/png")
        await remote.upload_file("attachments", key, src, "image/png")  # the retry of a lost response
        dest = tmp_path / "copy.png"
        assert await remote.download_file("attachments", key, dest) == src.stat().st_size
        assert dest.read_bytes() == src.read_bytes()
        assert not dest.with_name("copy.png.part").exists()

        with pytest.raises(PermanentError) as refused:  # someone else's ticket: RLS
            await remote.upload_file("attachments", f"{_ticket(db, users.customer2.id)}/{uuid.uuid4()}/x.png", src,
                                     "image/png")
        assert refused.value.code == "403"
        with pytest.raises(PermanentError) as wrong_type:
            await remote.upload_file("attachments", f"{ticket}/{uuid.uuid4()}/x.html", src, "text/html")
        assert wrong_type.value.code == "415"
        with pytest.raises(PermanentError) as missing:
            await remote.download_file("attachments", f"{ticket}/{uuid.uuid4()}/none.png", tmp_path / "none.png")
        assert missing.value.code == "404" and not (tmp_path / "none.png").exists()

        await remote.use_token(stack.mint(sub=users.customer.id, ttl=-5))
        with pytest.raises(AuthError):
            await remote.download_file("attachments", key, tmp_path / "again.png")
    finally:
        await remote.close()

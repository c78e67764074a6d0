"""The sync engine's Storage port (``Remote.upload_file``/``download_file``) on supabase-py's async client
against the real localbase: a customer uploads into the attachments bucket and downloads it back, a
retry after a lost response is harmless (upsert), and refusals come out as the sync error tree
(PermanentError for RLS, size and type; AuthError for an expired token) so the push can decide."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
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
    row = db.execute(
        "insert into public.tickets (customer_id, subject, status) values (%s, 'files', %s) returning id::text",
        (customer, status),
    ).fetchone()
    assert row is not None
    return str(row[0])


async def test_upload_and_download_through_the_port(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
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
            await remote.upload_file(
                "attachments", f"{_ticket(db, users.customer2.id)}/{uuid.uuid4()}/x.png", src, "image/png"
            )
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


async def test_download_streams_to_disk_and_checks_the_sha256(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
    """A 24 MB object is downloaded with a Python heap peak far below its size (storage3's download built the
    whole body as one bytes object: a peak above 24 MB), lands whole under its name, and a checksum that does
    not match leaves neither the file nor a partial copy behind."""
    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=users.customer.id))
        key = f"{_ticket(db, users.customer.id)}/{uuid.uuid4()}/big scan.pdf"
        src = tmp_path / "big.pdf"
        src.write_bytes(b"%PDF" + os.urandom(24 * 1024 * 1024))
        await remote.upload_file("attachments", key, src, "application/pdf")
        expected = hashlib.sha256(src.read_bytes()).hexdigest()
        folder = tmp_path / "cache"
        folder.mkdir()
        dest = folder / "attachment-id"
        tracemalloc.start()
        try:
            size = await remote.download_file("attachments", key, dest, expected)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert size == src.stat().st_size and dest.read_bytes() == src.read_bytes()
        assert peak < 4 * 1024 * 1024, f"peak Python heap {peak / 1024 / 1024:.1f} MB while downloading 24 MB"
        assert os.listdir(folder) == ["attachment-id"], "no temporary file left"

        other = folder / "other-id"
        with pytest.raises(PermanentError) as mismatch:
            await remote.download_file("attachments", key, other, "0" * 64)
        assert mismatch.value.code == "sha256"
        assert os.listdir(folder) == ["attachment-id"], "a file that fails its checksum is not kept, nor its part"
    finally:
        await remote.close()

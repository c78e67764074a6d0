"""A hostile server row cannot make the app write (or later evict, i.e. delete) a file outside its cache's
files folder: the attachment id names the local file, so one that is not a uuid (`../x`, an absolute path)
is refused before anything is downloaded. Pure: a real Cache and a stub Remote that records what it is asked.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync.attachment_files import AttachmentFiles
from sync.cache import Cache


class StubRemote:
    def __init__(self) -> None:
        self.asked: list[Path] = []

    async def download_file(self, bucket: str, key: str, dest: Path, sha256: str | None = None) -> int:
        self.asked.append(dest)
        dest.write_bytes(b"owned")
        return 5


def row(attachment_id: str, me: str) -> dict[str, Any]:
    ticket, message = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "id": attachment_id,
        "message_id": message,
        "ticket_id": ticket,
        "uploader_id": me,
        "name": "a.txt",
        "mime": "text/plain",
        "size": 5,
        "sha256": "0" * 64,
        "object_path": f"{ticket}/{message}/a.txt",
        "created_at": "2026-11-29T00:00:00+00:00",
        "change_xid": 1,
        "change_id": 1,
    }


@pytest.mark.parametrize("hostile", ["../../escaped", "/tmp/abs-escaped", "..", "sub/dir"])
def test_an_attachment_id_that_is_not_a_uuid_names_no_local_file(tmp_path: Path, hostile: str) -> None:
    me = str(uuid.uuid4())
    cache = Cache.open(tmp_path / "data" / "cache.db", me, "customer")
    remote = StubRemote()
    files = AttachmentFiles(cache, remote, me)  # type: ignore[arg-type]
    if hostile.startswith("/"):
        hostile = str(tmp_path / "abs-escaped")
    try:
        asyncio.run(cache.apply_live({"attachments": [row(hostile, me)]}))
        if cache.attachment(hostile) is None:
            return  # refused on the way in: fine too
        with pytest.raises((KeyError, ValueError)):
            asyncio.run(files.file(hostile))
        assert remote.asked == []
        assert sorted(p.name for p in tmp_path.rglob("*escaped*")) == []
    finally:
        cache.close()


def test_a_uuid_attachment_is_downloaded_into_the_files_folder(tmp_path: Path) -> None:
    me = str(uuid.uuid4())
    cache = Cache.open(tmp_path / "data" / "cache.db", me, "customer")
    remote = StubRemote()
    files = AttachmentFiles(cache, remote, me)  # type: ignore[arg-type]
    good = str(uuid.uuid4())
    try:
        asyncio.run(cache.apply_live({"attachments": [row(good, me)]}))
        local = asyncio.run(files.file(good))
        assert local == cache.files_dir / good and local.read_bytes() == b"owned"
    finally:
        cache.close()

"""Thumbnails count against the attachment cache's size bound (``engine.attachments``), against the real
localbase: the bytes in use include them, and when the bound is lowered the least recently used thumbnails
leave with the files (LRU over both); a thumbnail shown again is the most recent. The thumbnails are the app's
own (supportchat_app.blobs.make_thumbnail)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from supportchat_app.blobs import make_thumbnail
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket


def _noise_png(path: Path) -> Path:
    out = io.BytesIO()
    Image.frombytes("RGB", (640, 480), os.urandom(640 * 480 * 3)).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


async def test_thumbnails_are_counted_and_evicted_least_recently_used(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path
) -> None:
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Thumbnails")
    customer = await engines.open(me)
    await customer.sync_once()
    sent = [
        customer.commands.send_message(tid, f"shot {i}", files=[_noise_png(tmp_path / f"shot{i}.png")])
        for i in range(3)
    ]
    await customer.sync_once()
    other = await engines.open(me)  # the same customer on another computer: nothing downloaded yet
    await other.sync_once()
    files = other.attachments
    ids = [str(other.cache.attachments(m.id)[0]["id"]) for m in sent]
    for attachment_id in ids:  # what /attachment/<id>/thumb does
        make_thumbnail(await files.file(attachment_id), files.thumbnail(attachment_id), "image/png")
        await files.thumbnail_used(attachment_id)
    thumbs = {i: files.thumbnail(i).stat().st_size for i in ids}
    downloaded = {i: size for i, size, _, _ in other.cache.cached_attachment_files()}
    assert all(size > 10_000 for size in thumbs.values())
    assert files.used_bytes() == sum(thumbs.values()) + sum(downloaded.values())

    await files.thumbnail_used(ids[0])  # the first thumbnail is shown again: now the most recent
    await files.set_cache_bytes(thumbs[ids[0]] + thumbs[ids[2]])
    assert not files.thumbnail(ids[1]).exists(), "the least recently shown thumbnail left"
    assert files.thumbnail(ids[0]).exists() and files.thumbnail(ids[2]).exists()
    assert other.cache.cached_attachment_files() == [], "the files, used before every thumbnail, left first"
    assert files.used_bytes() <= thumbs[ids[0]] + thumbs[ids[2]]

    await files.set_cache_bytes(0)
    assert [p for p in (other.cache.files_dir / "thumbs").iterdir() if p.suffix == ".webp"] == []

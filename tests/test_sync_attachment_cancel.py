"""Cancelling one file of a queued message (``engine.commands.cancel_file``) with the real engine against the
real localbase: offline, the message goes out with the remaining files (and the text it was given), the
cancelled file's queued copy is gone at once and nothing of it reaches the server; mid-upload, the running
resumable upload stops, the server's partial upload is dropped (its URL answers 404) and no object is left;
a file of a message already sent cannot be cancelled; an upload cut by a dropped connection resumes at the
server's offset in the next round."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest

from sync.errors import RetryableError
from sync.tus import CHUNK, saved_url
from sync.uploads import state_file
from tests.conftest import create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory, seed_ticket, sql


def _files(tmp: Path, sizes: dict[str, int]) -> list[Path]:
    out = []
    for name, size in sizes.items():
        path = tmp / name
        path.write_bytes(b"%PDF" + os.urandom(size - 4))
        out.append(path)
    return out


def _server_files(stack: StackProcess, message_id: str) -> tuple[list[str], list[str]]:
    rows = sorted(
        r[0] for r in sql(stack.db_url, "select name from public.attachments where message_id = %s", message_id)
    )
    objects = sorted(
        r[0].rsplit("/", 1)[1]
        for r in sql(
            stack.db_url,
            "select name from storage.objects where bucket_id = 'attachments' and name like %s",
            f"%/{message_id}/%",
        )
    )
    return rows, objects


async def test_a_file_cancelled_offline_is_left_out_and_its_copy_removed(
    stack: StackProcess, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Cancel one file")
    sender = await engines.open(me, url=proxy.url)
    await sender.sync_once()
    proxy.set_mode("drop")
    a, b, c = _files(tmp_path, {"a.pdf": 5_000, "b.pdf": 6_000, "c.pdf": 7_000})
    msg = sender.commands.send_message(tid, "📎 a.pdf, b.pdf, c.pdf", files=[a, b, c])
    queued = {str(r["name"]): r for r in sender.cache.attachments(msg.id)}
    copy_b = Path(str(queued["b.pdf"]["local_path"]))
    assert copy_b.exists()
    sender.commands.cancel_file(str(queued["b.pdf"]["id"]), "📎 a.pdf, c.pdf")
    assert not copy_b.exists(), "the cancelled file's queued copy is gone at once"
    assert [r["name"] for r in sender.cache.attachments(msg.id)] == ["a.pdf", "c.pdf"]
    assert sender.cache.message(msg.id).content == "📎 a.pdf, c.pdf"

    proxy.set_mode("pass")
    await sender.sync_once()
    assert sender.status.pending == 0
    assert sql(stack.db_url, "select content from public.messages where id = %s", msg.id) == [("📎 a.pdf, c.pdf",)]
    assert _server_files(stack, msg.id) == (["a.pdf", "c.pdf"], ["a.pdf", "c.pdf"])

    with pytest.raises(ValueError):  # sent: the file is the message's now
        sender.commands.cancel_file(str(queued["a.pdf"]["id"]))


async def test_a_file_cancelled_mid_upload_stops_it_and_leaves_nothing_on_the_server(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path
) -> None:
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Cancel mid-upload")
    sender = await engines.open(me)
    await sender.sync_once()
    small, big = _files(tmp_path, {"small.pdf": 4_000, "big.pdf": 3 * CHUNK})
    msg = sender.commands.send_message(tid, "two files, one too many", files=[small, big])
    rows = {str(r["name"]): r for r in sender.cache.attachments(msg.id)}
    big_id, big_copy = str(rows["big.pdf"]["id"]), Path(str(rows["big.pdf"]["local_path"]))
    uploads = sender.attachments.uploads
    original = uploads.reporter
    seen: dict[str, object] = {}

    def reporter(attachment_id: str):  # the user presses cancel while the big file is half way up
        report = original(attachment_id)

        def wrapped(done: int, size: int) -> None:
            if attachment_id == big_id and done > CHUNK + 1024 * 1024 and "url" not in seen:
                seen["url"] = saved_url(state_file(big_copy))
                seen["sent"] = done
                sender.commands.cancel_file(big_id)
            report(done, size)

        return wrapped

    uploads.reporter = reporter  # type: ignore[method-assign]
    await sender.sync_once()
    assert seen.get("url"), "the cancel happened during the upload"
    assert sender.status.pending == 0
    assert not big_copy.exists() and not state_file(big_copy).exists()
    assert _server_files(stack, msg.id) == (["small.pdf"], ["small.pdf"])
    token = sender.session.access_token
    async with httpx.AsyncClient() as http:
        head = await http.head(
            str(seen["url"]),
            headers={"apikey": stack.anon_key, "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"},
        )
    assert head.status_code == 404, "the partial upload was dropped on the server"
    small_sha = hashlib.sha256(small.read_bytes()).hexdigest()
    assert sql(stack.db_url, "select sha256 from public.attachments where message_id = %s", msg.id) == [(small_sha,)]


async def test_discarding_a_message_mid_upload_leaves_nothing_on_the_server(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path
) -> None:
    """Cancel for the whole message while its second file uploads: the upload stops, the first file (already
    up) and the partial second are removed once online, no copy or upload state is left on this computer."""
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    tid = seed_ticket(stack.db_url, me, None, "Discard mid-upload")
    sender = await engines.open(me)
    await sender.sync_once()
    small, big = _files(tmp_path, {"first.pdf": 4_000, "second.pdf": 2 * CHUNK})
    msg = sender.commands.send_message(tid, "never mind", files=[small, big])
    rows = {str(r["name"]): r for r in sender.cache.attachments(msg.id)}
    big_id, big_copy = str(rows["second.pdf"]["id"]), Path(str(rows["second.pdf"]["local_path"]))
    uploads = sender.attachments.uploads
    original = uploads.reporter
    seen: dict[str, object] = {}

    def reporter(attachment_id: str):  # the user presses Cancel while the second file is half way up
        report = original(attachment_id)

        def wrapped(done: int, size: int) -> None:
            if attachment_id == big_id and done > CHUNK and "url" not in seen:
                seen["url"] = saved_url(state_file(big_copy))
                sender.commands.discard(msg.id)
            report(done, size)

        return wrapped

    uploads.reporter = reporter  # type: ignore[method-assign]
    await sender.sync_once()
    assert seen.get("url"), "the discard happened during the upload"
    assert sender.status.pending == 0 and sender.cache.message(msg.id) is None
    assert sql(stack.db_url, "select count(*) from public.messages where id = %s", msg.id) == [(0,)]
    assert _server_files(stack, msg.id) == ([], []), "the first file, already uploaded, was removed too"
    assert [p for p in sender.cache.files_dir.iterdir() if p.is_file()] == []
    async with httpx.AsyncClient() as http:
        head = await http.head(
            str(seen["url"]),
            headers={
                "apikey": stack.anon_key,
                "Authorization": f"Bearer {sender.session.access_token}",
                "Tus-Resumable": "1.0.0",
            },
        )
    assert head.status_code == 404, "the partial upload was dropped on the server"


async def test_an_upload_cut_by_a_dropped_connection_resumes_at_the_servers_offset(
    stack: StackProcess, engines: EngineFactory, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The engine's own path (state file beside the queued copy): the network drops half way through a file,
    the next round goes on from the server's offset, not from byte 0, and the object is the file."""
    me = create_user(stack.db_url, "customer")
    tid = seed_ticket(stack.db_url, me, None, "Flaky network")
    sender = await engines.open(me, url=proxy.url)
    await sender.sync_once()
    (big,) = _files(tmp_path, {"capture.pdf": 3 * CHUNK})
    msg = sender.commands.send_message(tid, "the capture", files=[big])
    uploads = sender.attachments.uploads
    original = uploads.reporter
    reports: list[int] = []

    def reporter(attachment_id: str):
        report = original(attachment_id)

        def wrapped(done: int, size: int) -> None:
            reports.append(done)
            if done > CHUNK + 1024 * 1024 and proxy.mode == "pass" and not any(r == -1 for r in reports):
                reports.append(-1)  # the cut, once
                proxy.set_mode("drop")
            report(done, size)

        return wrapped

    uploads.reporter = reporter  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        await sender.sync_once()
    assert -1 in reports
    proxy.set_mode("pass")
    deadline = time.monotonic() + 60
    while True:  # the server may still be writing the cut PATCH (423): retry, as the loop's backoff does
        del reports[reports.index(-1) + 1 :]
        try:
            await sender.sync_once()
            break
        except RetryableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    resumed = reports[reports.index(-1) + 1 :]
    assert resumed[0] >= CHUNK, "the next round went on from the server's offset"
    assert resumed == sorted(resumed) and resumed[-1] == big.stat().st_size
    assert sender.status.pending == 0
    assert sql(stack.db_url, "select sha256 from public.attachments where message_id = %s", msg.id) == [
        (hashlib.sha256(big.read_bytes()).hexdigest(),)
    ]

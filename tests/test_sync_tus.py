"""Resumable attachment uploads (``Remote.upload_resumable``, sync/tus.py) against the real localbase's TUS
endpoint: progress per byte (many reports inside a 6 MB chunk, monotonic, ending at the size); an upload
whose process is killed with SIGKILL mid-file continues in a new process at the server's offset instead of
starting over; a remembered upload the server forgot starts again; refusals are the sync error tree; the
stored object's sha256 is the file's."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from sync.errors import PermanentError, RetryableError
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote
from sync.tus import CHUNK
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_attachment_remote import _ticket

MB = 1024 * 1024

CHILD = """
import asyncio, sys
from pathlib import Path
from sync.models import RemoteConfig
from sync.remote import SupabaseRemote

async def main(url, anon, token, key, src, state):
    remote = SupabaseRemote(RemoteConfig(url, anon))
    await remote.use_token(token)
    def progress(done, size):
        print(done, flush=True)
    await remote.upload_resumable("attachments", key, Path(src), "application/pdf", progress=progress,
                                  state=Path(state))
    print("done", flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


async def _download_sha(remote: SupabaseRemote, key: str, tmp: Path) -> str:
    dest = tmp / f"down-{uuid.uuid4().hex}"
    await remote.download_file("attachments", key, dest)
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def _file(tmp: Path, size: int) -> tuple[Path, str]:
    src = tmp / f"{uuid.uuid4().hex}.pdf"
    data = b"%PDF" + os.urandom(size - 4)
    src.write_bytes(data)
    return src, hashlib.sha256(data).hexdigest()


async def test_progress_is_per_byte_monotonic_and_reaches_the_size(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=users.customer.id))
        key = f"{_ticket(db, users.customer.id)}/{uuid.uuid4()}/scan.pdf"
        size = 2 * CHUNK + 123_457
        src, sha = _file(tmp_path, size)
        reports: list[tuple[int, int]] = []
        state = tmp_path / "scan.tus"
        await remote.upload_resumable(
            "attachments", key, src, "application/pdf", progress=lambda d, s: reports.append((d, s)), state=state
        )
        done = [d for d, _ in reports]
        assert {s for _, s in reports} == {size}
        assert done == sorted(done) and done[0] == 0 and done[-1] == size
        assert len([d for d in done if 0 < d < CHUNK]) >= 10  # inside the first chunk, not per chunk
        assert not state.exists()  # finished: nothing left to resume
        assert await _download_sha(remote, key, tmp_path) == sha
        row = db.execute(
            "select (metadata->>'size')::bigint, metadata->>'mimetype', owner_id from storage.objects"
            " where bucket_id = 'attachments' and name = %s",
            (key,),
        ).fetchone()
        assert row == (size, "application/pdf", users.customer.id)
        # the resend of a lost answer replaces it (upsert), as the plain upload does
        await remote.upload_resumable("attachments", key, src, "application/pdf", state=state)
        assert await _download_sha(remote, key, tmp_path) == sha
    finally:
        await remote.close()


async def test_a_killed_upload_resumes_at_the_servers_offset(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
    ticket = _ticket(db, users.customer.id)
    key = f"{ticket}/{uuid.uuid4()}/big.pdf"
    size = 3 * CHUNK + 5
    src, sha = _file(tmp_path, size)
    state = tmp_path / "big.tus"
    token = stack.mint(sub=users.customer.id)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, stack.api_url, stack.anon_key, token, key, str(src), str(state)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert child.stdout is not None
    try:
        for line in child.stdout:  # wait until the second chunk is on its way, then kill -9
            if line.strip().isdigit() and int(line) > CHUNK + 2 * MB:
                break
        else:
            pytest.fail(f"the child ended before the second chunk: {child.wait()}")
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
        child.stdout.close()
    assert json.loads(state.read_text())["key"] == key  # the URL is remembered for the next run

    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=users.customer.id))
        reports: list[int] = []
        deadline = time.monotonic() + 60
        while True:  # the server may still be writing the killed PATCH (423): retry, as the loop does
            reports.clear()
            try:
                await remote.upload_resumable(
                    "attachments", key, src, "application/pdf", progress=lambda d, s: reports.append(d), state=state
                )
                break
            except RetryableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        assert reports[0] >= CHUNK  # it went on from the server's offset: at least the first chunk was kept
        assert reports == sorted(reports) and reports[-1] == size
        assert await _download_sha(remote, key, tmp_path) == sha
        assert not state.exists()
    finally:
        await remote.close()


async def test_a_forgotten_upload_starts_again_and_refusals_are_the_error_tree(
    stack: StackProcess, users: Users, db: psycopg.Connection, tmp_path: Path
) -> None:
    remote = SupabaseRemote(RemoteConfig(stack.api_url, stack.anon_key))
    try:
        await remote.use_token(stack.mint(sub=users.customer.id))
        ticket = _ticket(db, users.customer.id)
        key = f"{ticket}/{uuid.uuid4()}/note.pdf"
        src, sha = _file(tmp_path, 300_000)
        state = tmp_path / "note.tus"
        gone = f"{stack.api_url}/storage/v1/upload/resumable/{uuid.uuid4().hex}"  # expired on the server
        state.write_text(json.dumps({"url": gone, "bucket": "attachments", "key": key, "size": 300_000}))
        reports: list[int] = []
        await remote.upload_resumable(
            "attachments", key, src, "application/pdf", progress=lambda d, s: reports.append(d), state=state
        )
        assert reports[0] == 0 and reports[-1] == 300_000
        assert await _download_sha(remote, key, tmp_path) == sha

        with pytest.raises(PermanentError) as refused:  # another customer's ticket: RLS
            await remote.upload_resumable(
                "attachments", f"{_ticket(db, users.customer2.id)}/{uuid.uuid4()}/x.pdf", src, "application/pdf"
            )
        assert refused.value.code == "403"
        with pytest.raises(PermanentError) as wrong_type:
            await remote.upload_resumable("attachments", f"{ticket}/{uuid.uuid4()}/x.html", src, "text/html")
        assert wrong_type.value.code == "415"
    finally:
        await remote.close()

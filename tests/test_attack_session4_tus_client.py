"""Attacker's review of the sync engine's TUS client (sync/tus.py) against a hostile server (an httpx mock
transport standing in for a compromised or misconfigured Storage): the client must send the user's token only
to its own upload endpoint, and a nonsense answer must be the sync error tree (retryable: the queued file and
its state stay) — never a crash out of the error tree, nor an upload taken as finished that was not.

Held: a ``Location`` on another host is rewritten onto our endpoint (only the upload id is kept); ``..``
segments stay under the endpoint's path.
Holes found (fail before the fix): an upload "id" of several segments (``..%2F..%2Fobject/x``) was used as
is; a 307 from a PATCH or HEAD was followed to another host (the engine's client follows redirects); an
``Upload-Offset`` of ``²`` escaped as ValueError; an offset past the file's size was taken as a finished
upload; one that never moves forward looped for ever (the ``0`` case hangs before the fix).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sync.errors import RetryableError, SyncError
from sync.tus import TusUpload

API = "https://project.example"
ENDPOINT = f"{API}/storage/v1/upload/resumable"
SIZE = 1000

Handler = Callable[[httpx.Request], httpx.Response]


def _run(tmp: Path, handler: Handler, seen: list[httpx.Request]) -> Path:
    src = tmp / "a.pdf"
    src.write_bytes(b"%PDF" + b"x" * (SIZE - 4))
    state = tmp / "a.tus"

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PATCH":
            request.read()
        return handler(request)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record), follow_redirects=True) as http:
            upload = TusUpload(
                http, ENDPOINT, {"apikey": "anon", "Authorization": "Bearer secret"}, "attachments", "t/m/a.pdf",
                src, "application/pdf", state=state, chunk=400,
            )  # fmt: skip
            await upload.run()

    asyncio.run(go())
    return state


def _created(location: str) -> httpx.Response:
    return httpx.Response(201, headers={"Location": location, "Tus-Resumable": "1.0.0"})


def _only_our_endpoint(seen: list[httpx.Request]) -> None:
    for request in seen:
        assert request.url.host == "project.example", request.url
        assert request.url.path.startswith("/storage/v1/upload/resumable"), request.url


def test_a_location_on_another_host_is_rewritten_onto_our_endpoint(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    offset = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal offset
        if request.method == "POST":
            return _created("https://evil.example/storage/v1/upload/resumable/abc123")
        offset += len(request.content)
        return httpx.Response(204, headers={"Upload-Offset": str(offset)})

    _run(tmp_path, handler, seen)
    assert offset == SIZE
    _only_our_endpoint(seen)
    assert {str(r.url) for r in seen[1:]} == {f"{ENDPOINT}/abc123"}


@pytest.mark.parametrize(
    "location",
    [
        "/storage/v1/upload/resumable/../../object/attachments/t/m/a.pdf",
        "https://evil.example/storage/v1/upload/resumable/..%2F..%2Fobject/x",
        "/storage/v1/upload/resumable/abc/../../../../auth/v1/user",
        "/storage/v1/upload/resumable/",
    ],
)
def test_an_upload_id_that_is_not_one_path_segment_is_refused(tmp_path: Path, location: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return _created(location)
        return httpx.Response(204, headers={"Upload-Offset": str(SIZE)})

    with pytest.raises(SyncError):
        _run(tmp_path, handler, seen)
    _only_our_endpoint(seen)
    assert (tmp_path / "a.pdf").exists()


@pytest.mark.parametrize("method", ["PATCH", "HEAD"])
def test_a_redirect_to_another_host_is_not_followed(tmp_path: Path, method: str) -> None:
    seen: list[httpx.Request] = []
    state = tmp_path / "a.tus"
    if method == "HEAD":  # a remembered upload: the client asks its offset first
        state.write_text(f'{{"url": "{ENDPOINT}/abc", "bucket": "attachments", "key": "t/m/a.pdf", "size": {SIZE}}}')

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host != "project.example":
            return httpx.Response(204, headers={"Upload-Offset": str(SIZE)})
        if request.method == "POST":
            return _created(f"{ENDPOINT}/abc")
        if request.method == method:
            return httpx.Response(307, headers={"Location": "https://evil.example/steal"})
        return httpx.Response(204, headers={"Upload-Offset": "0"})

    with pytest.raises(SyncError):
        _run(tmp_path, handler, seen)
    assert all(r.url.host == "project.example" for r in seen), [str(r.url) for r in seen]


@pytest.mark.parametrize("answer", ["\xb2", str(SIZE + 1), "0"])
def test_a_nonsense_offset_is_a_retryable_sync_error_and_keeps_the_state(tmp_path: Path, answer: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return _created(f"{ENDPOINT}/abc")
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Upload-Offset": "0", "Upload-Length": str(SIZE)})
        return httpx.Response(204, headers=[(b"Upload-Offset", answer.encode("latin-1"))])

    with pytest.raises(SyncError) as caught:
        _run(tmp_path, handler, seen)
    assert isinstance(caught.value, RetryableError), caught.value
    assert len(seen) < 20  # no endless loop on an offset that never moves
    assert (tmp_path / "a.tus").exists()  # the next round resumes this upload

"""Attacker's review of localbase's TUS endpoint (``/storage/v1/upload/resumable``) as the sync engine now
uses it: raw httpx against the real localbase, as a customer with their own ticket and as another customer.

Held (and kept as regressions): another user's upload id is unknown to them (HEAD, PATCH and DELETE all 404,
the owner's upload untouched); offsets past the declared length or not the server's are refused; negative,
missing and oversized ``Upload-Length``; ``objectName`` with ``..`` or in another customer's ticket folder;
anon creates nothing.
Holes found (fail before the fix): a latin-1 digit such as ``²`` (which ``str.isdigit`` accepts) in
``Upload-Length`` or ``Upload-Offset`` made a 500 instead of a 400; an upload untouched for more than the
expiry could still be resumed and finished until the next creation swept it.
"""

from __future__ import annotations

import base64
import os
import uuid

import httpx
import psycopg

from localbase.storage.tus import EXPIRY_SECONDS
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_attachment_remote import _ticket

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


def _meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def _auth(stack: StackProcess, sub: str | None) -> dict[str, str]:
    token = stack.mint(sub=sub) if sub else stack.anon_key
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {token}", **TUS}


def _create(stack: StackProcess, sub: str | None, key: str, length: str | bytes = "10") -> httpx.Response:
    headers: dict[str, str | bytes] = {
        **_auth(stack, sub),
        "Upload-Length": length,
        "Upload-Metadata": _meta(bucketName="attachments", objectName=key, contentType="application/pdf"),
    }
    return httpx.post(f"{stack.api_url}/storage/v1/upload/resumable", headers=headers)


def test_another_users_upload_id_does_not_exist_for_them(
    stack: StackProcess, users: Users, db: psycopg.Connection
) -> None:
    ticket = _ticket(db, users.customer.id)
    key = f"{ticket}/{uuid.uuid4()}/a.pdf"
    created = _create(stack, users.customer.id, key)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    mine, theirs = _auth(stack, users.customer.id), _auth(stack, users.customer2.id)
    assert (
        httpx.patch(location, content=b"%PDF-1", headers={**theirs, **OCTETS, "Upload-Offset": "0"}).status_code == 404
    )
    assert httpx.head(location, headers=theirs).status_code == 404
    assert httpx.delete(location, headers=theirs).status_code == 404
    assert httpx.head(location, headers=_auth(stack, None)).status_code == 404
    assert httpx.head(location, headers=mine).headers["upload-offset"] == "0"
    # offsets: past the length, not the server's, more bytes than declared
    assert httpx.patch(location, content=b"x", headers={**mine, **OCTETS, "Upload-Offset": "11"}).status_code == 409
    assert httpx.patch(location, content=b"x" * 11, headers={**mine, **OCTETS, "Upload-Offset": "0"}).status_code == 413
    assert httpx.head(location, headers=mine).headers["upload-offset"] == "0"
    done = httpx.patch(location, content=b"%PDF-12345", headers={**mine, **OCTETS, "Upload-Offset": "0"})
    assert done.status_code == 204 and done.headers["upload-offset"] == "10"
    # finished: gone for everyone, the object is the owner's
    assert httpx.head(location, headers=mine).status_code == 404
    got = httpx.get(f"{stack.api_url}/storage/v1/object/attachments/{key}", headers=_auth(stack, users.customer2.id))
    assert got.status_code in (400, 404)


def test_creation_refuses_bad_lengths_foreign_folders_and_anon(
    stack: StackProcess, users: Users, db: psycopg.Connection
) -> None:
    mine = _ticket(db, users.customer.id)
    theirs = _ticket(db, users.customer2.id)
    key = f"{mine}/{uuid.uuid4()}/a.pdf"
    for length in ("-1", "", "1e3", "0x10", str(10**30)):
        r = _create(stack, users.customer.id, key, length)
        assert r.status_code in (400, 413), (length, r.status_code, r.text)
    for bad in (
        f"{theirs}/{uuid.uuid4()}/a.pdf",
        f"{mine}/../{theirs}/x/a.pdf",
        f"../{mine}/x/a.pdf",
        "canned/x/a.pdf",
    ):
        r = _create(stack, users.customer.id, bad)
        assert r.status_code in (400, 403), (bad, r.status_code, r.text)
    assert _create(stack, None, key).status_code in (400, 403)


def test_a_latin1_digit_in_a_length_or_offset_is_a_clear_400(
    stack: StackProcess, users: Users, db: psycopg.Connection
) -> None:
    key = f"{_ticket(db, users.customer.id)}/{uuid.uuid4()}/a.pdf"
    # '²' is one byte in latin-1 (how HTTP headers are read) and str.isdigit() says True, int() refuses it
    r = _create(stack, users.customer.id, key, length=b"1\xb2")
    assert r.status_code == 400, (r.status_code, r.text)
    created = _create(stack, users.customer.id, key)
    location = created.headers["location"]
    mine = _auth(stack, users.customer.id)
    r = httpx.patch(location, content=b"x", headers={**mine, **OCTETS, "Upload-Offset": b"\xb2"})
    assert r.status_code == 400, (r.status_code, r.text)


def test_an_expired_upload_cannot_be_resumed(stack: StackProcess, users: Users, db: psycopg.Connection) -> None:
    key = f"{_ticket(db, users.customer.id)}/{uuid.uuid4()}/a.pdf"
    created = _create(stack, users.customer.id, key)
    location = created.headers["location"]
    mine = _auth(stack, users.customer.id)
    assert httpx.patch(location, content=b"%PDF", headers={**mine, **OCTETS, "Upload-Offset": "0"}).status_code == 204
    upload_id = location.rsplit("/", 1)[1]
    folder = stack.data_dir / "storage" / "resumable"
    old = os.path.getmtime(folder / f"{upload_id}.json") - EXPIRY_SECONDS - 60
    for suffix in ("json", "part"):
        os.utime(folder / f"{upload_id}.{suffix}", (old, old))
    assert httpx.head(location, headers=mine).status_code == 404
    r = httpx.patch(location, content=b"-12345", headers={**mine, **OCTETS, "Upload-Offset": "4"})
    assert r.status_code == 404
    got = httpx.get(f"{stack.api_url}/storage/v1/object/attachments/{key}", headers=mine)
    assert got.status_code in (400, 404)

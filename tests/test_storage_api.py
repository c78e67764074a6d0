"""The Storage API (storage/v1 routes) through storage3 (supabase-py's storage client) unchanged, as the service role, a
signed-in user and anon: buckets, uploads (multipart and raw), downloads, info/exists, list, remove,
move/copy, signed download and upload URLs, public URLs, limits, key checks and TUS resumable uploads
(raw httpx, 6 MB chunks). Every answer is checked against Supabase Storage's wire shapes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from localbase.storage.blobs import BlobStore
from tests.conftest import Users
from tests.stackproc import StackProcess

StorageFactory = Callable[[str], Client]


@pytest.fixture(scope="module")
def as_(stack: StackProcess, users: Users) -> Iterator[StorageFactory]:
    opened: list[httpx.Client] = []
    made: dict[str, Client] = {}

    def get(who: str) -> Client:
        if who not in made:
            http = httpx.Client(timeout=120)
            opened.append(http)
            token = {"anon": stack.anon_key, "service": stack.service_role_key}.get(who)
            if token is None:
                token = stack.mint(sub=getattr(users, who).id)
            made[who] = create_client(
                stack.api_url,
                stack.anon_key,
                ClientOptions(
                    headers={"Authorization": f"Bearer {token}"},
                    httpx_client=http,
                    auto_refresh_token=False,
                    persist_session=False,
                ),
            )
        return made[who]

    yield get
    for http in opened:
        http.close()


@pytest.fixture
def bucket(as_: StorageFactory) -> Iterator[str]:
    """A fresh public-less bucket made by the service role, emptied and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    as_("service").storage.create_bucket(name)
    yield name
    as_("service").storage.empty_bucket(name)
    as_("service").storage.delete_bucket(name)


def storage_error(call: Callable[[], object]) -> StorageApiError:
    with pytest.raises(StorageApiError) as err:
        call()
    return err.value


def under(prefix: str, name: str) -> str:
    """``prefix/name``: an object's key under its bucket, or its URL under an endpoint (the name stays relative)."""
    return f"{prefix}/{name}"


def headers(stack: StackProcess, token: str | None = None) -> dict[str, str]:
    token = token or stack.service_role_key
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {token}"}


# buckets ----------------------------------------------------------------------------------------------


def test_bucket_lifecycle_as_service_role(as_: StorageFactory) -> None:
    s = as_("service").storage
    name = f"life-{uuid.uuid4().hex[:8]}"
    assert s.create_bucket(
        name, options={"public": True, "file_size_limit": "1MB", "allowed_mime_types": ["image/png", "text/*"]}
    ) == {"name": name}
    got = s.get_bucket(name)
    assert (got.id, got.name, got.public, got.file_size_limit, got.allowed_mime_types) == (
        name,
        name,
        True,
        1_000_000,
        ["image/png", "text/*"],
    )
    assert name in [b.id for b in s.list_buckets()]
    assert s.update_bucket(name, {"public": False, "file_size_limit": 2048}) == {"message": "Successfully updated"}
    got = s.get_bucket(name)
    assert (got.public, got.file_size_limit) == (False, 2048)
    dup = storage_error(lambda: s.create_bucket(name))
    assert (dup.status, dup.code) == ("409", "Duplicate")
    s.from_(name).upload("x.txt", b"x", {"content-type": "text/plain"})
    busy = storage_error(lambda: s.delete_bucket(name))
    assert (busy.status, busy.code) == ("409", "ResourceNotEmpty")
    assert s.empty_bucket(name) == {"message": "Successfully emptied"}
    assert s.delete_bucket(name) == {"message": "Successfully deleted"}
    missing = storage_error(lambda: s.get_bucket(name))
    assert (missing.status, missing.message) == ("404", "Bucket not found")


@pytest.mark.parametrize("who", ["customer", "agent", "anon"])
def test_only_the_service_role_manages_buckets(as_: StorageFactory, who: str) -> None:
    s = as_(who).storage
    err = storage_error(lambda: s.create_bucket(f"mine-{uuid.uuid4().hex[:8]}"))
    assert (err.status, err.code, err.message) == ("403", "Unauthorized", "new row violates row-level security policy")
    assert s.list_buckets() == []  # storage.buckets has RLS and no policy for API users
    assert storage_error(lambda: s.get_bucket("attachments")).status == "404"


def test_invalid_bucket_names_are_refused(as_: StorageFactory) -> None:
    err = storage_error(lambda: as_("service").storage.create_bucket("a/b"))
    assert (err.status, err.message) == ("400", "Bucket name invalid")


# objects ----------------------------------------------------------------------------------------------


def test_upload_download_info_exists(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    up = b.upload(
        "folder/a b.txt",
        b"hello storage",
        {"content-type": "text/plain", "cache-control": "60", "metadata": {"ticket": "t1"}},
    )
    assert (up.path, up.full_path) == ("folder/a b.txt", under(bucket, "folder/a b.txt"))
    assert b.download("folder/a b.txt") == b"hello storage"
    info = b.info("folder/a b.txt")
    assert info["size"] == 13 and info["content_type"] == "text/plain"
    assert info["cache_control"] == "max-age=60" and info["metadata"] == {"ticket": "t1"}
    assert info["etag"] == f'"{hashlib.md5(b"hello storage").hexdigest()}"'
    assert b.exists("folder/a b.txt") is True
    assert b.exists("folder/nope.txt") is False
    missing = storage_error(lambda: b.download("folder/nope.txt"))
    assert (missing.status, missing.code, missing.message) == ("404", "not_found", "Object not found")


def test_upload_without_upsert_keeps_the_first_upsert_replaces(
    as_: StorageFactory, bucket: str, stack: StackProcess
) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("one.txt", b"first")
    dup = storage_error(lambda: b.upload("one.txt", b"second"))
    assert (dup.status, dup.code, dup.message) == ("409", "Duplicate", "The resource already exists")
    assert b.download("one.txt") == b"first"
    old_version = b.info("one.txt")["version"]
    b.upload("one.txt", b"third", {"upsert": "true"})
    assert b.download("one.txt") == b"third"
    b.update("one.txt", b"fourth")
    assert b.download("one.txt") == b"fourth"
    # the replaced versions' files are gone from disk
    blobs = stack.data_dir / "storage" / "blobs"
    assert not (blobs / old_version[:2] / old_version).exists()


def test_raw_body_upload_with_headers(stack: StackProcess, as_: StorageFactory, bucket: str) -> None:
    meta = base64.b64encode(b'{"k": 1}').decode()
    r = httpx.post(
        under(f"{stack.api_url}/storage/v1/object/{bucket}", "raw.png"),
        content=b"\x89PNG....",
        headers={**headers(stack), "content-type": "image/png", "cache-control": "max-age=5", "x-metadata": meta},
    )
    assert r.status_code == 200, r.text
    assert r.json()["Key"] == under(bucket, "raw.png")
    got = httpx.get(under(f"{stack.api_url}/storage/v1/object/{bucket}", "raw.png"), headers=headers(stack))
    assert got.content == b"\x89PNG...."
    assert got.headers["content-type"] == "image/png" and got.headers["cache-control"] == "max-age=5"
    assert as_("service").storage.from_(bucket).info("raw.png")["metadata"] == {"k": 1}
    bad = httpx.post(
        under(f"{stack.api_url}/storage/v1/object/{bucket}", "raw2.png"),
        content=b"x",
        headers={**headers(stack), "content-type": "image/png", "x-metadata": "not base64 json"},
    )
    assert bad.status_code == 400 and bad.json()["statusCode"] == "400"


def test_list_with_prefix_limit_offset_sort_and_search(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    for name in ["f/c.txt", "f/a.txt", "f/b.txt", "f/sub/d.txt", "top.txt"]:
        b.upload(name, name.encode())
    assert [e["name"] for e in b.list()] == ["f", "top.txt"]
    listed = b.list("f")
    assert [e["name"] for e in listed] == ["a.txt", "b.txt", "c.txt", "sub"]
    assert listed[-1]["id"] is None and listed[0]["metadata"]["size"] == 7
    assert [e["name"] for e in b.list("f", {"limit": 2, "offset": 1})] == ["b.txt", "c.txt"]
    assert [e["name"] for e in b.list("f", {"sortBy": {"column": "name", "order": "desc"}})] == [
        "sub",
        "c.txt",
        "b.txt",
        "a.txt",
    ]
    assert [e["name"] for e in b.list("f", {"search": "b"})] == ["b.txt"]
    newest = b.list("f", {"sortBy": {"column": "created_at", "order": "desc"}, "limit": 1})
    assert newest[0]["name"] == "b.txt"
    err = storage_error(lambda: b.list("f", {"sortBy": {"column": "id; drop table storage.objects"}}))
    assert err.status == "400"


def test_remove_many_and_the_1000_limit(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("r/1.txt", b"1")
    b.upload("r/2.txt", b"2")
    removed = b.remove(["r/1.txt", "r/2.txt", "r/missing.txt"])
    assert sorted(r["name"] for r in removed) == ["r/1.txt", "r/2.txt"]
    assert b.list("r") == []
    too_many = storage_error(lambda: b.remove([f"x{i}" for i in range(1001)]))
    assert too_many.status == "400"


def test_move_and_copy(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("m/src.txt", b"moving")
    assert b.move("m/src.txt", "m/dst.txt")["message"] == "Successfully moved"
    assert b.exists("m/src.txt") is False and b.download("m/dst.txt") == b"moving"
    copied = b.copy("m/dst.txt", "m/copy.txt")
    assert copied["Key"] == under(bucket, "m/copy.txt")
    b.remove(["m/dst.txt"])  # the copy keeps its bytes when the original goes
    assert b.download("m/copy.txt") == b"moving"
    b.upload("m/other.txt", b"other")
    clash = storage_error(lambda: b.move("m/other.txt", "m/copy.txt"))
    assert (clash.status, clash.code) == ("409", "Duplicate")
    missing = storage_error(lambda: b.copy("m/none.txt", "m/x.txt"))
    assert missing.status == "404"


# URLs -------------------------------------------------------------------------------------------------


def test_signed_urls_one_and_batch(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("s/one.txt", b"signed one")
    url = b.create_signed_url("s/one.txt", 60)["signedURL"]
    assert httpx.get(url).content == b"signed one"  # no key, no token: the link is the permission
    assert httpx.get(url + "&download=").headers["content-disposition"].startswith("attachment")
    batch = b.create_signed_urls(["s/one.txt", "s/none.txt"], 60)
    assert batch[0]["error"] is None and httpx.get(batch[0]["signedURL"]).content == b"signed one"
    assert batch[1]["signedURL"] is None and "does not exist" in batch[1]["error"]
    assert storage_error(lambda: b.create_signed_url("s/none.txt", 60)).status == "404"


def test_expired_or_misused_signed_url_is_refused(as_: StorageFactory, bucket: str, stack: StackProcess) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("e/one.txt", b"1")
    b.upload("e/two.txt", b"2")
    base = f"{stack.api_url}/storage/v1/object/sign/{bucket}"
    now = int(time.time())
    expired = jwt.encode(
        {"url": under(bucket, "e/one.txt"), "scope": "download", "iat": now - 120, "exp": now - 60},
        stack.jwt_secret,
        algorithm="HS256",
    )
    r = httpx.get(under(base, "e/one.txt"), params={"token": expired})
    assert r.status_code == 400 and r.json()["error"] == "InvalidJWT" and r.json()["message"] == "jwt expired"
    good = b.create_signed_url("e/one.txt", 60)["signedURL"]
    token = httpx.URL(good).params["token"]
    other = httpx.get(under(base, "e/two.txt"), params={"token": token})
    assert other.status_code == 400 and other.json()["error"] == "InvalidSignature"
    # an upload token never downloads, a download token never uploads
    up_token = b.create_signed_upload_url("e/three.txt")["token"]
    assert httpx.get(under(base, "e/three.txt"), params={"token": up_token}).json()["error"] == "InvalidSignature"
    put = httpx.put(
        under(f"{stack.api_url}/storage/v1/object/upload/sign/{bucket}", "e/one.txt"),
        params={"token": token},
        content=b"x",
        headers={"content-type": "text/plain"},
    )
    assert put.json()["error"] == "InvalidSignature"
    forged = jwt.encode(
        {"url": under(bucket, "e/one.txt"), "scope": "download", "exp": now + 60},
        "not-the-secret-" * 3,
        algorithm="HS256",
    )
    assert httpx.get(under(base, "e/one.txt"), params={"token": forged}).json()["error"] == "InvalidJWT"


def test_signed_upload_url_valid_two_hours(as_: StorageFactory, bucket: str) -> None:
    b = as_("service").storage.from_(bucket)
    signed = b.create_signed_upload_url("u/file.txt")
    claims = jwt.decode(signed["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2 * 60 * 60 and claims["scope"] == "upload"
    up = b.upload_to_signed_url("u/file.txt", signed["token"], b"via signed url")
    assert up.full_path == under(bucket, "u/file.txt")
    assert b.download("u/file.txt") == b"via signed url"
    again = storage_error(lambda: b.upload_to_signed_url("u/file.txt", signed["token"], b"again"))
    assert again.status == "409"


def test_public_urls_only_for_public_buckets(as_: StorageFactory, bucket: str) -> None:
    s = as_("service").storage
    s.from_(bucket).upload("p.txt", b"private")
    assert httpx.get(s.from_(bucket).get_public_url("p.txt")).json()["message"] == "Bucket not found"
    s.update_bucket(bucket, {"public": True})
    assert httpx.get(s.from_(bucket).get_public_url("p.txt")).content == b"private"


# limits and names -------------------------------------------------------------------------------------


def test_size_and_type_limits_while_streaming(as_: StorageFactory, stack: StackProcess) -> None:
    s = as_("service").storage
    name = f"lim-{uuid.uuid4().hex[:8]}"
    s.create_bucket(name, options={"file_size_limit": 1024, "allowed_mime_types": ["image/*", "application/pdf"]})
    b = s.from_(name)
    b.upload("ok.png", b"x" * 1024, {"content-type": "image/png"})
    big = storage_error(lambda: b.upload("big.png", b"x" * 1025, {"content-type": "image/png"}))
    assert (big.status, big.code) == ("413", "Payload too large")
    html = storage_error(lambda: b.upload("x.html", b"<script>", {"content-type": "text/html"}))
    assert (html.status, html.code) == ("415", "invalid_mime_type")
    assert html.message == "mime type text/html is not supported"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while the bytes stream
        for _ in range(64):
            yield b"y" * 1024

    r = httpx.post(
        under(f"{stack.api_url}/storage/v1/object/{name}", "stream.png"),
        content=chunks(),
        headers={**headers(stack), "content-type": "image/png"},
    )
    assert r.status_code == 400 and r.json()["statusCode"] == "413"
    assert b.exists("stream.png") is False
    staging = list((stack.data_dir / "storage" / "staging").iterdir())
    assert staging == []  # nothing half-written is left behind
    s.empty_bucket(name)
    s.delete_bucket(name)


@pytest.mark.parametrize(
    "key",
    [
        "%2e%2e/escape.txt",
        "a/%2e%2e/%2e%2e/escape.txt",
        "a//b.txt",
        "%2e/a.txt",
        "a/%2E/b.txt",
        "a%2F..%2F..%2Fescape.txt",
        "back\\slash.txt",
        "nul%00.txt",
    ],
)
def test_path_traversal_in_object_names_is_refused(
    stack: StackProcess, bucket: str, key: str, db: psycopg.Connection
) -> None:
    # percent-encoded so that httpx sends the dot segments as they are; the server decodes them
    r = httpx.post(
        f"{stack.api_url}/storage/v1/object/{bucket}/{key}",
        content=b"evil",
        headers={**headers(stack), "content-type": "text/plain"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidKey"
    assert db.execute("select count(*) from storage.objects where bucket_id = %s", (bucket,)).fetchone() == (0,)
    storage_root = stack.data_dir / "storage"
    assert not (stack.data_dir / "escape.txt").exists() and not (storage_root / "escape.txt").exists()
    for path in storage_root.rglob("*"):
        assert path.resolve().is_relative_to(storage_root.resolve())


def test_bytes_live_under_the_data_dir_by_version(as_: StorageFactory, bucket: str, stack: StackProcess) -> None:
    b = as_("service").storage.from_(bucket)
    b.upload("where.txt", b"on disk")
    version = b.info("where.txt")["version"]
    assert (stack.data_dir / "storage" / "blobs" / version[:2] / version).read_bytes() == b"on disk"


def test_the_bytes_are_this_users_alone(as_: StorageFactory, bucket: str, stack: StackProcess) -> None:
    """Another user of the machine can neither list nor read the stored files (review15: folders 0755 and files
    0644 let anyone read every attachment, internal notes' files included, bypassing RLS)."""
    b = as_("service").storage.from_(bucket)
    b.upload("passport.png", b"SECRET PASSPORT BYTES")
    version = b.info("passport.png")["version"]
    # an unfinished resumable upload's part and description too
    created = httpx.post(
        f"{stack.api_url}/storage/v1/upload/resumable",
        headers={
            **headers(stack, stack.service_role_key),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": _tus_meta(bucketName=bucket, objectName="half.bin", contentType="text/plain"),
        },
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["location"].rsplit("/", 1)[1]
    storage_root = stack.data_dir / "storage"
    blob = storage_root / "blobs" / version[:2] / version
    part = storage_root / "resumable" / f"{upload_id}.part"
    meta = storage_root / "resumable" / f"{upload_id}.json"
    assert stat.S_IMODE(storage_root.stat().st_mode) == 0o700
    assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    for path in (blob, part, meta):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # the data dir: the server's own user may pass through it as root, nobody else may list it
    assert stat.S_IMODE(stack.data_dir.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)
    if os.geteuid() == 0:  # the attack itself, as another user
        for argv in (["cat", str(blob)], ["ls", str(storage_root / "blobs")]):
            got = subprocess.run(argv, user="nobody", capture_output=True, text=True, check=False)
            assert got.returncode != 0 and "SECRET" not in got.stdout and "Permission denied" in got.stderr


def test_a_world_readable_tree_from_before_is_closed(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    (root / "blobs" / "ab").mkdir(parents=True)
    root.chmod(0o755)
    BlobStore(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


async def test_a_copy_where_links_are_not_possible_is_private_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review15b: the copy fallback of ``link_copy`` (shutil.copyfile) made the new version's file with the
    process umask's modes (0644 under the usual 022): other users of the machine could read a copied attachment."""
    store = BlobStore(tmp_path / "storage")
    writer = store.writer(None)
    await writer.write(b"SECRET PASSPORT BYTES")
    original = (await writer.commit()).version

    def no_links(src: object, dst: object) -> None:
        raise OSError("links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    old_umask = os.umask(0o022)
    try:
        copy = await store.link_copy(original)
    finally:
        os.umask(old_umask)
    path = store.path(copy)
    assert path.read_bytes() == b"SECRET PASSPORT BYTES"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != store.path(original).stat().st_ino  # a copy, not a link


def test_bad_tokens(stack: StackProcess, bucket: str) -> None:
    expired = stack.mint(sub=str(uuid.uuid4()), ttl=-10)
    r = httpx.get(f"{stack.api_url}/storage/v1/bucket", headers=headers(stack, expired))
    assert r.status_code == 400 and r.json()["error"] == "InvalidJWT"
    odd_role = stack.mint(sub=str(uuid.uuid4()), role="postgres")
    r = httpx.get(under(f"{stack.api_url}/storage/v1/object/info/{bucket}", "x.txt"), headers=headers(stack, odd_role))
    assert r.status_code in (400, 403) and r.json()["statusCode"] in ("403", "404")


# TUS ----------------------------------------------------------------------------------------------------

CHUNK = 6 * 1024 * 1024


def _tus_meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def test_tus_resumable_upload_in_6mb_chunks(
    stack: StackProcess, as_: StorageFactory, bucket: str, users: Users, tmp_path: Path
) -> None:
    data = os.urandom(CHUNK * 2 + 12345)
    token = stack.service_role_key
    base = f"{stack.api_url}/storage/v1/upload/resumable"
    tus = {"Tus-Resumable": "1.0.0"}
    with httpx.Client(timeout=120, headers={**headers(stack, token), **tus}) as http:
        created = http.post(
            base,
            headers={
                "Upload-Length": str(len(data)),
                "Upload-Metadata": _tus_meta(
                    bucketName=bucket,
                    objectName="big/file.bin",
                    contentType="application/octet-stream",
                    cacheControl="3600",
                ),
            },
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        assert location.startswith(base + "/")
        patch_headers = {"Content-Type": "application/offset+octet-stream"}
        first = http.patch(location, content=data[:CHUNK], headers={**patch_headers, "Upload-Offset": "0"})
        assert first.status_code == 204 and first.headers["upload-offset"] == str(CHUNK)
        # a retry of an old offset is refused, the client asks where to resume
        stale = http.patch(location, content=data[:CHUNK], headers={**patch_headers, "Upload-Offset": "0"})
        assert stale.status_code == 409
        head = http.head(location)
        assert head.headers["upload-offset"] == str(CHUNK) and head.headers["upload-length"] == str(len(data))
        # somebody else cannot see or touch it
        other = stack.mint(sub=users.customer2.id)
        assert httpx.head(location, headers={**headers(stack, other), **tus}).status_code == 404
        offset = CHUNK
        while offset < len(data):
            part = data[offset : offset + CHUNK]
            r = http.patch(location, content=part, headers={**patch_headers, "Upload-Offset": str(offset)})
            assert r.status_code == 204, r.text
            offset = int(r.headers["upload-offset"])
        assert offset == len(data)
    b = as_("service").storage.from_(bucket)
    assert hashlib.sha256(b.download("big/file.bin")).hexdigest() == hashlib.sha256(data).hexdigest()
    assert b.info("big/file.bin")["size"] == len(data)
    # this upload's staging files are gone (other tests' unfinished uploads on the shared stack may remain)
    upload_id = location.rsplit("/", 1)[1]
    assert [p for p in (stack.data_dir / "storage" / "resumable").iterdir() if p.name.startswith(upload_id)] == []


def test_tus_limits_and_termination(stack: StackProcess, as_: StorageFactory) -> None:
    s = as_("service").storage
    name = f"tus-{uuid.uuid4().hex[:8]}"
    s.create_bucket(name, options={"file_size_limit": 1000, "allowed_mime_types": ["image/png"]})
    base = f"{stack.api_url}/storage/v1/upload/resumable"
    h = {**headers(stack), "Tus-Resumable": "1.0.0"}
    big = httpx.post(
        base,
        headers={
            **h,
            "Upload-Length": "1001",
            "Upload-Metadata": _tus_meta(bucketName=name, objectName="a.png", contentType="image/png"),
        },
    )
    assert big.status_code == 413 and big.json()["statusCode"] == "413"
    wrong = httpx.post(
        base,
        headers={
            **h,
            "Upload-Length": "10",
            "Upload-Metadata": _tus_meta(bucketName=name, objectName="a.txt", contentType="text/plain"),
        },
    )
    assert wrong.status_code == 415
    ok = httpx.post(
        base,
        headers={
            **h,
            "Upload-Length": "10",
            "Upload-Metadata": _tus_meta(bucketName=name, objectName="a.png", contentType="image/png"),
        },
    )
    location = ok.headers["location"]
    over = httpx.patch(
        location,
        content=b"z" * 11,
        headers={**h, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert over.status_code == 413
    assert httpx.head(location, headers=h).headers["upload-offset"] == "0"
    assert httpx.delete(location, headers=h).status_code == 204
    assert httpx.head(location, headers=h).status_code == 404
    assert httpx.post(base, headers={**headers(stack), "Upload-Length": "1"}).status_code == 412
    s.delete_bucket(name)


def test_objects_rows_match_supabase_columns(db: psycopg.Connection) -> None:
    cols = {
        r[0]
        for r in db.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'storage' and table_name = 'objects'"
        )
    }
    assert {
        "id",
        "bucket_id",
        "name",
        "owner",
        "owner_id",
        "metadata",
        "user_metadata",
        "version",
        "path_tokens",
        "created_at",
        "updated_at",
        "last_accessed_at",
    } <= cols
    owner = db.execute("select tableowner from pg_tables where schemaname = 'storage' and tablename = 'objects'")
    assert owner.fetchone() == ("supabase_storage_admin",)
    assert db.execute(
        "select storage.foldername('a/b/c.png'), storage.filename('a/b/c.png'), storage.extension('a/b/c.png')"
    ).fetchone() == (["a", "b"], "c.png", "png")


def test_abandoned_resumable_uploads_expire_after_a_day(tmp_path: Path) -> None:
    from localbase.storage.tus import EXPIRY_SECONDS, sweep_expired

    for name in ("old", "fresh"):
        (tmp_path / f"{name}.json").write_text("{}")
        (tmp_path / f"{name}.part").write_bytes(b"x")
    old = time.time() - EXPIRY_SECONDS - 60
    for suffix in ("json", "part"):
        os.utime(tmp_path / f"old.{suffix}", (old, old))
    assert sweep_expired(tmp_path, time.time()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "fresh.part"]


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("alter table storage.objects enable row level security", False),
        ("comment on policy attachments_objects_delete on storage.objects is 'x'", False),
        ("create index objects_mine_idx on storage.objects (name)", False),
        ("create table storage.mine (id int)", False),
        ("create function storage.mine() returns int language sql as 'select 1'", False),
        ("drop function storage.foldername(text)", False),
        ("create policy mine on storage.objects for select to authenticated using (false)", True),
        (
            "create trigger mine after insert on storage.objects for each row execute function"
            " storage.update_updated_at_column()",
            True,
        ),
        ("insert into storage.buckets (id, name) values ('ddl-check', 'ddl-check')", True),
    ],
)
def test_migrations_may_do_in_storage_only_what_supabase_allows(
    stack: StackProcess, statement: str, allowed: bool
) -> None:
    """Since April 2025 Supabase lets `postgres` add policies and triggers to storage tables and write
    buckets and objects, nothing else; localbase refuses the rest the same way (as postgres, the role
    migrations run as, and even as the superuser)."""
    for url in (stack.postgres_url, stack.db_url):
        with psycopg.connect(url) as conn:  # one transaction, rolled back when the block ends
            if allowed:
                conn.execute(statement)
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
                    conn.execute(statement)
            conn.rollback()


def test_postgres_cannot_become_the_storage_admin(stack: StackProcess) -> None:
    """Regression: postgres was a full member of supabase_storage_admin, so `set role` gave it the
    owner's rights (and slipped past the DDL guard); on Supabase it is no member at all."""
    with psycopg.connect(stack.postgres_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set role supabase_storage_admin")
        conn.rollback()


def test_half_written_uploads_are_dropped_when_the_stack_starts(tmp_path: Path) -> None:
    from localbase.storage.blobs import BlobStore

    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "crashed.part").write_bytes(b"half")
    BlobStore(tmp_path)
    assert list((tmp_path / "staging").iterdir()) == []


def test_concurrent_uploads_to_one_path_one_wins_no_stray_bytes(
    as_: StorageFactory, bucket: str, stack: StackProcess
) -> None:
    import concurrent.futures

    def put(i: int) -> int:
        r = httpx.post(
            under(f"{stack.api_url}/storage/v1/object/{bucket}", "race.bin"),
            content=bytes([i]) * 200_000,
            headers={**headers(stack), "content-type": "application/octet-stream"},
            timeout=60,
        )
        return r.status_code if r.status_code == 200 else int(r.json()["statusCode"])

    def blob_files() -> set[str]:
        return {p.name for p in (stack.data_dir / "storage" / "blobs").rglob("*") if p.is_file()}

    before = blob_files()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(put, range(4)))
    assert codes == [200, 409, 409, 409]
    data = as_("service").storage.from_(bucket).download("race.bin")
    assert len(set(data)) == 1 and len(data) == 200_000
    version = as_("service").storage.from_(bucket).info("race.bin")["version"]
    assert blob_files() - before == {version}  # the losers' bytes were removed
    rows = as_("service").storage.from_(bucket).list()
    assert [r["name"] for r in rows] == ["race.bin"]


def test_bytes_without_a_row_are_removed_when_the_stack_starts(tmp_path: Path) -> None:
    """A crash between storing an upload's bytes and committing its row leaves a file nothing names."""
    stack = StackProcess(tmp_path / "data")
    stack.start()
    kept = "keep/kept.txt"  # bucket/name
    try:
        with httpx.Client(timeout=60, headers=headers(stack)) as http:
            http.post(f"{stack.api_url}/storage/v1/bucket", json={"id": "keep", "name": "keep"})
            http.post(
                f"{stack.api_url}/storage/v1/object/{kept}",
                content=b"kept",
                headers={"content-type": "text/plain"},
            )
        stray = uuid.uuid4().hex
        stray_path = tmp_path / "data" / "storage" / "blobs" / stray[:2] / stray
        stray_path.parent.mkdir(parents=True, exist_ok=True)
        stray_path.write_bytes(b"orphan")
        stack.restart()
        assert not stray_path.exists()
        with httpx.Client(timeout=60, headers=headers(stack)) as http:
            assert http.get(f"{stack.api_url}/storage/v1/object/{kept}").content == b"kept"
    finally:
        stack.stop()


def test_range_requests_and_head(stack: StackProcess, as_: StorageFactory, bucket: str) -> None:
    as_("service").storage.from_(bucket).upload(
        "range.bin", bytes(range(256)) * 4, {"content-type": "application/octet-stream"}
    )
    url = under(f"{stack.api_url}/storage/v1/object/{bucket}", "range.bin")
    part = httpx.get(url, headers={**headers(stack), "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    assert part.headers["content-range"] == "bytes 10-19/1024"
    head = httpx.head(url, headers=headers(stack))
    assert head.status_code == 200 and head.headers["content-length"] == "1024" and head.content == b""


def test_multipart_bodies_with_too_many_or_too_large_fields_are_refused(stack: StackProcess, bucket: str) -> None:
    url = under(f"{stack.api_url}/storage/v1/object/{bucket}", "form.txt")
    many = [(f"f{i}", (None, "x")) for i in range(40)] + [("file", ("form.txt", b"body", "text/plain"))]
    r = httpx.post(url, headers=headers(stack), files=many)
    assert r.status_code == 400 and "form fields" in r.json()["message"]
    huge = {"metadata": (None, "x" * (65 * 1024)), "file": ("form.txt", b"body", "text/plain")}
    r = httpx.post(url, headers=headers(stack), files=huge)
    assert r.status_code == 400 and "too large" in r.json()["message"]
    nofile = httpx.post(url, headers=headers(stack), files={"cacheControl": (None, "60")})
    assert nofile.status_code == 400 and nofile.json()["message"] == "No file in the multipart body"


def test_storage_queries_carry_the_callers_role_timeout(
    stack: StackProcess, bucket: str, db: psycopg.Connection
) -> None:
    """Regression: storage transactions ran under the authenticator's 8 s timeout, not the caller's
    role's (anon: 3 s on Supabase); a policy that runs away is now cancelled at the role's timeout."""
    timeout = db.execute(
        "select c from pg_db_role_setting d, unnest(d.setconfig) c"
        " where d.setrole = 'anon'::regrole and c like 'statement_timeout=%'"
    ).fetchone()
    assert timeout == ("statement_timeout=3s",)
    policy = f"slow_{bucket.replace('-', '_')}"
    db.execute(
        f"create policy {policy} on storage.objects for select to anon"
        f" using (bucket_id = '{bucket}' and pg_sleep(20) is not null)"
    )
    try:
        httpx.post(
            under(f"{stack.api_url}/storage/v1/object/{bucket}", "slow.txt"),
            content=b"x",
            headers={**headers(stack), "content-type": "text/plain"},
        )
        started = time.monotonic()
        r = httpx.post(
            f"{stack.api_url}/storage/v1/object/list/{bucket}",
            json={"prefix": ""},
            headers=headers(stack, stack.anon_key),
            timeout=60,
        )
        elapsed = time.monotonic() - started
        assert r.json()["statusCode"] == "544", r.text  # Storage's DatabaseTimeout
        assert elapsed < 7.5, elapsed  # the anon role's 3 s, not the authenticator's 8 s
    finally:
        db.execute(f"drop policy {policy} on storage.objects")


# content types ----------------------------------------------------------------------------------------

SMUGGLED = "image/png; a=,text/html"  # passed an image/* allowlist on its part before `;`; a browser may see HTML


def _refused_type(r: httpx.Response, *, http_status: int = 400) -> None:
    assert r.status_code == http_status, r.text
    body = r.json()
    assert (body["statusCode"], body["code"], body["error"]) == ("415", "InvalidMimeType", "invalid_mime_type")


@pytest.fixture
def images(as_: StorageFactory) -> Iterator[str]:
    """A fresh bucket allowing images only, like `avatars`."""
    name = f"img-{uuid.uuid4().hex[:8]}"
    as_("service").storage.create_bucket(name, options={"allowed_mime_types": ["image/*"]})
    yield name
    as_("service").storage.empty_bucket(name)
    as_("service").storage.delete_bucket(name)


def test_a_smuggled_content_type_is_refused_on_every_upload_path(
    stack: StackProcess, as_: StorageFactory, images: str, bucket: str
) -> None:
    api = f"{stack.api_url}/storage/v1"
    png = b"\x89PNG...."
    raw = {**headers(stack), "content-type": SMUGGLED}
    _refused_type(httpx.post(under(f"{api}/object/{images}", "raw.png"), content=png, headers=raw))
    _refused_type(httpx.put(under(f"{api}/object/{images}", "raw.png"), content=png, headers=raw))
    form = httpx.post(
        under(f"{api}/object/{images}", "form.png"), files={"file": ("a.png", png, SMUGGLED)}, headers=headers(stack)
    )
    _refused_type(form)
    b = as_("service").storage.from_(images)
    token = b.create_signed_upload_url("signed.png")["token"]
    signed = httpx.put(
        under(f"{api}/object/upload/sign/{images}", "signed.png"),
        params={"token": token},
        content=png,
        headers={"content-type": SMUGGLED},
    )
    _refused_type(signed)
    tus = httpx.post(
        f"{api}/upload/resumable",
        headers={
            **headers(stack),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(png)),
            "Upload-Metadata": _tus_meta(bucketName=images, objectName="tus.png", contentType=SMUGGLED),
        },
    )
    _refused_type(tus, http_status=415)  # TUS answers with the real status
    assert b.list() == []
    # malformed is malformed without an allowlist too: commas, other parameters, an empty type
    for bad in (SMUGGLED, "text/plain; charset=utf-8; x=y", "text/html,text/plain", "image/", "a b/c"):
        r = httpx.post(
            under(f"{api}/object/{bucket}", "x.bin"), content=b"x", headers={**headers(stack), "content-type": bad}
        )
        _refused_type(r)
    assert as_("service").storage.from_(bucket).list() == []


def test_an_allowed_upload_is_stored_normalized_and_served_with_nosniff(
    stack: StackProcess, as_: StorageFactory, images: str
) -> None:
    s = as_("service").storage
    s.update_bucket(images, {"public": True, "allowed_mime_types": ["image/*"]})
    b = s.from_(images)
    r = httpx.post(
        under(f"{stack.api_url}/storage/v1/object/{images}", "ok.png"),
        content=b"\x89PNG....",
        headers={**headers(stack), "content-type": "Image/PNG"},
    )
    assert r.status_code == 200, r.text
    assert b.info("ok.png")["content_type"] == "image/png"
    b.upload("form.png", b"\x89PNG....", {"content-type": "image/png"})
    for url in (
        under(f"{stack.api_url}/storage/v1/object/{images}", "ok.png"),
        b.get_public_url("ok.png"),
        b.create_signed_url("form.png", 60)["signedURL"],
    ):
        got = httpx.get(url, headers=headers(stack))
        assert got.status_code == 200 and got.content == b"\x89PNG...."
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in got.headers


def test_documents_a_browser_would_run_are_not_served_as_such(
    stack: StackProcess, as_: StorageFactory, bucket: str
) -> None:
    s = as_("service").storage
    s.update_bucket(bucket, {"public": True})
    b = s.from_(bucket)
    page = b"<html><script>alert(document.domain)</script></html>"
    b.upload("page.html", page, {"content-type": "text/html"})
    b.upload(
        "logo.svg",
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        {"content-type": "image/svg+xml"},
    )
    # any +xml type: Chromium renders each as an XML document, XHTML scripts included
    b.upload(
        "maths.xml", b"<math xmlns='http://www.w3.org/1998/Math/MathML'/>", {"content-type": "application/mathml+xml"}
    )
    for name, served in (
        ("page.html", "text/plain"),
        ("logo.svg", "image/svg+xml"),
        ("maths.xml", "application/mathml+xml"),
    ):
        for url in (
            f"{stack.api_url}/storage/v1/object/{bucket}/{name}",
            b.get_public_url(name),
            b.create_signed_url(name, 60)["signedURL"],
        ):
            got = httpx.get(url, headers=headers(stack))
            assert got.status_code == 200
            # HTML as text, as Supabase Storage serves it; anything that could run is sandboxed
            assert got.headers["content-type"].split(";")[0] == served
            assert got.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in got.headers["content-security-policy"]
    assert b.download("page.html") == page  # the bytes are unchanged


def test_a_stored_type_that_does_not_parse_is_neither_served_nor_copied(
    stack: StackProcess, as_: StorageFactory, db: psycopg.Connection, bucket: str, images: str
) -> None:
    """A row written before types were checked (or by SQL) keeps its raw type: it is served as bytes
    and cannot be copied into a bucket with an allowlist."""
    b = as_("service").storage.from_(bucket)
    b.upload("old.png", b"\x89PNG....", {"content-type": "image/png"})
    db.execute(
        "update storage.objects set metadata = jsonb_set(metadata, '{mimetype}', to_jsonb(%s::text))"
        " where bucket_id = %s and name = 'old.png'",
        (SMUGGLED, bucket),
    )
    got = httpx.get(under(f"{stack.api_url}/storage/v1/object/{bucket}", "old.png"), headers=headers(stack))
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["x-content-type-options"] == "nosniff"
    copy = httpx.post(
        f"{stack.api_url}/storage/v1/object/copy",
        json={"bucketId": bucket, "sourceKey": "old.png", "destinationBucket": images, "destinationKey": "old.png"},
        headers=headers(stack),
    )
    _refused_type(copy)
    assert as_("service").storage.from_(images).list() == []

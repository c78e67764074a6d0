"""uuid-ossp's and pgcrypto's functions in schema `extensions`, as on every Supabase project.

The embedded PostgreSQL ships neither extension, so sql/local defines SQL equivalents; these tests
pin that they give the same results as the real ones (published test vectors, Python's hashlib/hmac
and the `bcrypt` package), and that a migration running as `postgres` can use them — before, a
migration calling `uuid_generate_v4()`, `digest()` or `crypt()` failed on localbase.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator

import bcrypt
import psycopg
import pytest

from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def owner(stack: StackProcess) -> Iterator[psycopg.Connection]:
    """As the project's `postgres` role, which runs the migrations."""
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        yield conn


def one(conn: psycopg.Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_uuid_ossp_name_based_uuids_match_rfc_4122(owner: psycopg.Connection) -> None:
    dns = uuid.NAMESPACE_DNS
    assert one(owner, "select extensions.uuid_ns_dns()") == dns
    assert one(owner, "select extensions.uuid_ns_url()") == uuid.NAMESPACE_URL
    assert one(owner, "select extensions.uuid_ns_oid()") == uuid.NAMESPACE_OID
    assert one(owner, "select extensions.uuid_ns_x500()") == uuid.NAMESPACE_X500
    assert one(owner, "select extensions.uuid_nil()") == uuid.UUID(int=0)
    for name in ("www.example.com", "", "ünïcode"):
        assert one(owner, "select extensions.uuid_generate_v3(extensions.uuid_ns_dns(), %s)", name) == uuid.uuid3(
            dns, name
        )
        assert one(owner, "select extensions.uuid_generate_v5(extensions.uuid_ns_dns(), %s)", name) == uuid.uuid5(
            dns, name
        )
    v1, v1mc, v4 = owner.execute(
        "select extensions.uuid_generate_v1(), extensions.uuid_generate_v1mc(), extensions.uuid_generate_v4()"
    ).fetchone()  # type: ignore[misc]
    assert (v1.version, v1mc.version, v4.version) == (1, 1, 4)
    assert v1mc.node & (1 << 40), "v1mc sets the multicast bit of its random node id"
    assert abs(v1.time - uuid.uuid1().time) < 10**9, "v1 carries the current time (100 ns since 1582)"


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
def test_pgcrypto_digest_and_hmac_match_hashlib(owner: psycopg.Connection, algorithm: str) -> None:
    for data in (b"", b"abc", b"x" * 1000):
        assert (
            one(owner, "select extensions.digest(%s::bytea, %s)", data, algorithm)
            == hashlib.new(algorithm, data).digest()
        )
        for key in (b"key", b"k" * 200):
            assert (
                one(owner, "select extensions.hmac(%s::bytea, %s::bytea, %s)", data, key, algorithm)
                == hmac.new(key, data, algorithm).digest()
            )
    assert one(owner, "select extensions.digest('abc', %s)", algorithm) == hashlib.new(algorithm, b"abc").digest()


def test_pgcrypto_random_bytes_and_errors(owner: psycopg.Connection) -> None:
    row = owner.execute("select extensions.gen_random_bytes(1024), extensions.gen_random_bytes(1024)").fetchone()
    assert row is not None
    a, b = row
    assert len(a) == len(b) == 1024 and a != b
    assert len(set(a)) > 200, "bytes look random"
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        owner.execute("select extensions.gen_random_bytes(1025)")
    with pytest.raises(psycopg.errors.ExternalRoutineInvocationException, match="No such hash algorithm"):
        owner.execute("select extensions.digest('abc', 'whirlpool')")


def test_pgcrypto_crypt_is_bcrypt_compatible(owner: psycopg.Connection) -> None:
    for password, salt in (("supportchat-demo", bcrypt.gensalt(4)), ("pässwörd", bcrypt.gensalt(4, b"2a"))):
        assert (
            one(owner, "select extensions.crypt(%s, %s)", password, salt.decode())
            == bcrypt.hashpw(password.encode(), salt).decode()
        )
    salt = str(one(owner, "select extensions.gen_salt('bf', 4)"))
    assert salt.startswith("$2a$04$") and len(salt) == 29
    hashed = str(one(owner, "select extensions.crypt('s3cret', %s)", salt))
    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    assert one(owner, "select extensions.crypt('s3cret', %s) = %s", hashed, hashed) is True, "crypt(pw, hash) checks"
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        owner.execute("select extensions.crypt('pw', '$1$saltsalt')")


def test_a_migration_running_as_postgres_can_use_them(owner: psycopg.Connection) -> None:
    name = f"ext_probe_{uuid.uuid4().hex[:8]}"
    owner.execute(
        f"create table public.{name} (id uuid primary key default extensions.uuid_generate_v4(),"
        " secret text not null default encode(extensions.digest('x', 'sha256'), 'hex'))"
    )
    try:
        owner.execute(f"insert into public.{name} default values")
        assert owner.execute(f"select secret from public.{name}").fetchone() == (hashlib.sha256(b"x").hexdigest(),)
    finally:
        owner.execute(f"drop table public.{name}")

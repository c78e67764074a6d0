"""The server's purge of avatar pictures no profile names (notify/orphans.py, migration 20261202000100) against
the real localbase, through supabase-py with each user's token: a replaced picture older than the grace goes
(its bytes too), the current one and a young one stay; a hostile user cannot get someone else's picture purged
(pointing their own profile anywhere, clearing the victim's profile, writing into the victim's folder, a
same-named file of their own) and the avatars bucket's policies are the ones of 20261130000150; a user who
points their profile back at a picture while the purge removes it waits and is refused, never left naming a
picture that is gone; the notify worker runs the purge in its loop."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from notify.orphans import StorageAdmin, purge_avatar_orphans
from tests.conftest import User, create_user
from tests.smtpsink import Sink
from tests.stackproc import StackProcess
from tests.test_notify import smtp, wait_for, worker  # noqa: F401 (the fixture)

HOUR = 3600.0
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def clients(stack: StackProcess) -> Iterator[Any]:
    opened: list[httpx.Client] = []

    def as_(user: User) -> Client:
        http = httpx.Client(timeout=120)
        opened.append(http)
        return create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(
                headers={"Authorization": f"Bearer {stack.mint(sub=user.id)}"},
                httpx_client=http,
                auto_refresh_token=False,
                persist_session=False,
            ),
        )

    yield as_
    for http in opened:
        http.close()


def upload(client: Client, user: User, name: str | None = None) -> str:
    key = f"{user.id}/{name or 'avatar-' + uuid.uuid4().hex[:12] + '.png'}"
    client.storage.from_("avatars").upload(key, PNG, {"content-type": "image/png"})
    return key


def name_it(client: Client, user: User, key: str | None) -> None:
    url = None if key is None else f"avatars/{key}"
    client.table("profiles").update({"avatar_url": url}).eq("id", user.id).execute()


def age(db: psycopg.Connection, key: str, hours: float) -> None:
    """Make an object look written ``hours`` ago (storage's trigger would stamp updated_at with now())."""
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute(
            "update storage.objects set created_at = now() - make_interval(secs => %(s)s),"
            " updated_at = now() - make_interval(secs => %(s)s) where bucket_id = 'avatars' and name = %(key)s",
            {"s": hours * HOUR, "key": key},
        )


def present(db: psycopg.Connection, keys: list[str]) -> set[str]:
    rows = db.execute(
        "select name from storage.objects where bucket_id = 'avatars' and name = any(%s)", (keys,)
    ).fetchall()
    return {str(r[0]) for r in rows}


def avatar_url(db: psycopg.Connection, user: User) -> str | None:
    row = db.execute("select avatar_url from public.profiles where id = %s", (user.id,)).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def download_status(stack: StackProcess, key: str) -> int:
    response = httpx.get(
        f"{stack.api_url}/storage/v1/object/avatars/{key}",
        headers={"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"},
        timeout=60,
    )
    return response.status_code


def purge(stack: StackProcess, storage: StorageAdmin | None = None) -> int:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        return purge_avatar_orphans(conn, storage or StorageAdmin(stack.api_url, stack.service_role_key), HOUR)


def test_a_replaced_picture_is_purged_the_current_and_a_young_one_stay(
    stack: StackProcess, db: psycopg.Connection, clients: Any
) -> None:
    user = create_user(stack.db_url, "customer")
    c = clients(user)
    old = upload(c, user)
    name_it(c, user, old)
    current = upload(c, user)
    name_it(c, user, current)  # the app's delete of `old` never happened (offline, killed)
    young = upload(c, user)  # uploaded a moment ago, about to be named
    age(db, old, 2)
    age(db, current, 2)
    assert download_status(stack, old) == 200

    assert purge(stack) >= 1
    assert purge(stack) == 0, "nothing left to purge"
    assert present(db, [old, current, young]) == {current, young}
    assert download_status(stack, old) in (400, 404), "its bytes went too"
    assert download_status(stack, current) == 200 and avatar_url(db, user) == f"avatars/{current}"

    name_it(c, user, None)  # the user removes their picture: after the grace it goes too
    age(db, young, 2)
    purge(stack)
    assert present(db, [current, young]) == set()


def test_a_deleted_users_pictures_are_purged(stack: StackProcess, db: psycopg.Connection, clients: Any) -> None:
    user = create_user(stack.db_url, "customer")
    c = clients(user)
    key = upload(c, user)
    name_it(c, user, key)
    age(db, key, 2)
    purge(stack)
    assert present(db, [key]) == {key}, "named: kept however old"
    db.execute("delete from auth.users where id = %s", (user.id,))
    purge(stack)
    assert present(db, [key]) == set()


def test_a_hostile_user_cannot_get_someone_elses_picture_purged(
    stack: StackProcess, db: psycopg.Connection, clients: Any
) -> None:
    victim, attacker = create_user(stack.db_url, "customer"), create_user(stack.db_url, "customer")
    v, a = clients(victim), clients(attacker)
    picture = upload(v, victim)
    name_it(v, victim, picture)
    age(db, picture, 24 * 30)
    file_name = picture.split("/")[1]

    # point their own profile anywhere: someone else's picture, through a dotted path, a picture that is not
    # there, another bucket, the victim's folder itself
    for url in (
        f"avatars/{picture}",
        f"avatars/{attacker.id}/../{picture}",
        f"avatars/{attacker.id}/{file_name}",  # same file name in their own folder, not uploaded
        f"attachments/{picture}",
        f"avatars/{victim.id}/",
    ):
        with pytest.raises(APIError) as err:
            a.table("profiles").update({"avatar_url": url}).eq("id", attacker.id).execute()
        assert err.value.code == "22023", url
    # release the victim's picture by clearing the victim's profile: RLS finds no row to change
    assert a.table("profiles").update({"avatar_url": None}).eq("id", victim.id).execute().data == []
    # write into the victim's folder, or delete the picture outright: Storage's policies refuse
    with pytest.raises(StorageApiError):
        a.storage.from_("avatars").upload(f"{victim.id}/x.png", PNG, {"content-type": "image/png"})
    assert a.storage.from_("avatars").remove([picture]) == []
    # an orphan of their own with the victim's file name: the purge removes exactly that object
    decoy = upload(a, attacker, file_name)
    age(db, decoy, 24 * 30)

    assert purge(stack) >= 1
    assert present(db, [picture, decoy]) == {picture}
    assert avatar_url(db, victim) == f"avatars/{picture}" and download_status(stack, picture) == 200


def test_the_avatar_policies_are_unchanged(db: psycopg.Connection) -> None:
    rows = db.execute(
        "select policyname, cmd, roles::text[] from pg_policies where schemaname = 'storage'"
        " and tablename = 'objects' and (policyname like 'avatars%%' or qual like '%%avatars%%'"
        " or with_check like '%%avatars%%') order by policyname"
    ).fetchall()
    assert [(r[0], r[1], list(r[2])) for r in rows] == [
        ("avatars_objects_delete", "DELETE", ["authenticated"]),
        ("avatars_objects_insert", "INSERT", ["authenticated"]),
        ("avatars_objects_select", "SELECT", ["authenticated"]),
        ("avatars_objects_update", "UPDATE", ["authenticated"]),
    ]


@dataclass(frozen=True)
class _Racing(StorageAdmin):
    """Storage as the service role, where the owner points their profile back at a candidate in the middle
    of the removal (while the purge holds the profile)."""

    racer: Any = None

    def remove(self, names: list[str], bucket: str = "attachments") -> list[str]:
        self.racer()
        return super().remove(names, bucket)


def test_naming_a_picture_while_it_is_purged_waits_and_is_refused(
    stack: StackProcess, db: psycopg.Connection, clients: Any
) -> None:
    user = create_user(stack.db_url, "customer")
    c = clients(user)
    earlier = upload(c, user)
    current = upload(c, user)
    name_it(c, user, current)
    age(db, earlier, 2)
    outcome: list[BaseException | None] = []

    def go_back() -> None:  # the user picks their earlier picture again, on another connection
        try:
            name_it(clients(user), user, earlier)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    racer = threading.Thread(target=go_back)

    def race() -> None:
        racer.start()
        wait_for(
            lambda: bool(
                db.execute(
                    "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%%profiles%%'"
                ).fetchone()
            ),
            "the profile update waiting for the purge",
        )

    assert purge(stack, _Racing(stack.api_url, stack.service_role_key, racer=race)) == 1
    racer.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], APIError) and outcome[0].code == "22023", outcome
    assert present(db, [earlier]) == set()
    assert avatar_url(db, user) == f"avatars/{current}", "the profile never names a picture that is gone"


def test_the_notify_worker_purges_avatars_in_its_loop(
    stack: StackProcess, db: psycopg.Connection, clients: Any, smtp: tuple[Sink, str]
) -> None:
    user = create_user(stack.db_url, "agent")
    c = clients(user)
    old, kept = upload(c, user), upload(c, user)
    name_it(c, user, kept)
    age(db, old, 200)  # older than the default week
    age(db, kept, 200)
    storage = StorageAdmin(stack.api_url, stack.service_role_key)
    with worker(stack, smtp[1], storage=storage) as w:
        wait_for(lambda: w.stats.purged >= 1 and not present(db, [old]), "the worker's purge", 60)
    assert present(db, [kept]) == {kept}

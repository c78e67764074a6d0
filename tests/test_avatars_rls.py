"""The `avatars` bucket and profiles.avatar_url (migration 20261130000150), attacked through supabase-py
with each user's token: writing into someone else's folder (upload, upsert over their file, move into
it), deleting their picture, oversized and wrong-type files, malformed paths, naming someone else's
picture (or an outside URL) as one's avatar, reading a picture one may not see, and anon."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from tests.conftest import Users
from tests.stackproc import StackProcess

Factory = Callable[[str], Client]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64


@pytest.fixture(scope="module")
def as_(stack: StackProcess, users: Users) -> Iterator[Factory]:
    opened: list[httpx.Client] = []
    made: dict[str, Client] = {}

    def get(who: str) -> Client:
        if who not in made:
            http = httpx.Client(timeout=120)
            opened.append(http)
            token = {"anon": stack.anon_key, "service": stack.service_role_key}.get(who) or stack.mint(
                sub=getattr(users, who).id
            )
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


def bucket(client: Client) -> Any:
    return client.storage.from_("avatars")


def refused(call: Callable[[], object]) -> StorageApiError:
    with pytest.raises(StorageApiError) as err:
        call()
    return err.value


def rls_refused(call: Callable[[], object]) -> None:
    err = refused(call)
    assert (err.status, err.code, err.message) == (
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    ), err


@pytest.fixture(scope="module")
def pictures(as_: Factory, users: Users) -> dict[str, str]:
    """Each user's current picture (object key), uploaded by its owner."""
    made = {}
    for who in ("customer", "customer2", "agent"):
        key = f"{getattr(users, who).id}/avatar-{uuid.uuid4().hex[:12]}.png"
        bucket(as_(who)).upload(key, PNG, {"content-type": "image/png"})
        made[who] = key
    return made


def test_owners_write_their_own_folder_and_name_their_picture(
    as_: Factory, users: Users, pictures: dict[str, str]
) -> None:
    c = as_("customer")
    bucket(c).upload(pictures["customer"], JPEG, {"content-type": "image/jpeg", "upsert": "true"})  # replace own
    assert bucket(c).download(pictures["customer"]) == JPEG
    row = (
        c.table("profiles")
        .update({"avatar_url": f"avatars/{pictures['customer']}"})
        .eq("id", users.customer.id)
        .execute()
        .data[0]
    )
    assert row["avatar_url"] == f"avatars/{pictures['customer']}"
    c.table("profiles").update({"avatar_url": None}).eq("id", users.customer.id).execute()  # and clear it


def test_nobody_writes_into_someone_elses_folder(as_: Factory, users: Users, pictures: dict[str, str]) -> None:
    c = as_("customer")
    victim = users.customer2.id
    rls_refused(lambda: bucket(c).upload(f"{victim}/avatar-evil.png", PNG, {"content-type": "image/png"}))
    # upsert over the victim's existing picture: their row is not ours to update, so nothing changes
    refused(lambda: bucket(c).upload(pictures["customer2"], JPEG, {"content-type": "image/jpeg", "upsert": "true"}))
    assert bucket(as_("customer2")).download(pictures["customer2"]) == PNG
    # move our own file into the victim's folder
    own = f"{users.customer.id}/avatar-move-{uuid.uuid4().hex[:8]}.png"
    bucket(c).upload(own, PNG, {"content-type": "image/png"})
    refused(lambda: bucket(c).move(own, f"{victim}/avatar-moved.png"))
    # delete the victim's picture: Storage answers, but the object stays
    bucket(c).remove([pictures["customer2"]])
    assert bucket(as_("customer2")).download(pictures["customer2"]) == PNG
    # staff have no more right than anyone over someone else's folder
    rls_refused(lambda: bucket(as_("agent")).upload(f"{victim}/avatar-agent.png", PNG, {"content-type": "image/png"}))
    rls_refused(lambda: bucket(as_("admin")).upload(f"{victim}/avatar-admin.png", PNG, {"content-type": "image/png"}))


@pytest.mark.parametrize(
    "path",
    [
        "avatar.png",  # no folder
        "{me}/nested/avatar.png",  # a sub-folder
        "{me}/.hidden.png",  # a file name that starts with a dot
        "{me}/a b.png",  # outside the file-name alphabet
    ],
)
def test_malformed_paths_are_refused(as_: Factory, users: Users, path: str) -> None:
    key = path.format(me=users.customer.id)
    refused(lambda: bucket(as_("customer")).upload(key, PNG, {"content-type": "image/png"}))


def test_oversized_and_wrong_type_files_are_refused(as_: Factory, users: Users) -> None:
    c = as_("customer")
    folder = users.customer.id
    big = refused(
        lambda: bucket(c).upload(f"{folder}/big.png", PNG + b"\0" * (1024 * 1024), {"content-type": "image/png"})
    )
    assert (big.status, big.code) == ("413", "Payload too large")
    for i, mime in enumerate(("image/svg+xml", "text/html", "application/pdf")):
        err = refused(
            lambda i=i, mime=mime: bucket(c).upload(
                f"{folder}/evil-{i}.png",  # type: ignore[misc]
                b"<svg onload=alert(1)>",
                {"content-type": mime},
            )
        )
        assert (err.status, err.code) == ("415", "invalid_mime_type")


@pytest.mark.parametrize(
    "value",
    [
        "avatars/{other}/avatar.png",  # someone else's picture as mine
        "avatars/{me}/../{other}/avatar.png",  # the same through a dotted path
        "https://tracker.example/pixel.png",  # an outside URL every reader's app would fetch
        "attachments/{me}/avatar.png",  # another bucket
        "avatars/{me}/",  # no file
    ],
)
def test_a_profile_names_only_a_picture_in_its_own_folder(as_: Factory, users: Users, value: str) -> None:
    url = value.format(me=users.customer.id, other=users.customer2.id)
    with pytest.raises(APIError) as err:
        as_("customer").table("profiles").update({"avatar_url": url}).eq("id", users.customer.id).execute()
    assert err.value.code == "22023"
    # an admin may clear or change a profile, but not point it at another user's picture either
    with pytest.raises(APIError):
        as_("admin").table("profiles").update({"avatar_url": f"avatars/{users.admin.id}/x.png"}).eq(
            "id", users.customer.id
        ).execute()


def test_who_reads_whose_picture(as_: Factory, stack: StackProcess, pictures: dict[str, str]) -> None:
    # a customer sees staff and themselves, never another customer (as the profiles policies say)
    assert bucket(as_("customer")).download(pictures["agent"]) == PNG
    assert bucket(as_("customer")).download(pictures["customer"]) in (PNG, JPEG)
    err = refused(lambda: bucket(as_("customer")).download(pictures["customer2"]))
    assert err.status in ("400", "404")
    assert pictures["customer2"].split("/")[1] not in {
        e["name"] for e in bucket(as_("customer")).list(pictures["customer2"].split("/")[0])
    }
    # staff see every profile, so every picture
    assert bucket(as_("agent")).download(pictures["customer2"]) == PNG
    # anon: nothing, and no writes
    anon = as_("anon")
    refused(lambda: bucket(anon).download(pictures["agent"]))
    refused(lambda: bucket(anon).upload(f"{uuid.uuid4()}/a.png", PNG, {"content-type": "image/png"}))

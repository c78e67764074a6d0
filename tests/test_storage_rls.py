"""RLS on storage.objects for the `attachments` bucket (migration 20261129000400), attacked through
supabase-py's storage client with each user's token: another customer's file by guessed path, by
list, by signed URL, by move/copy into one's own folder; internal notes' files; closed tickets;
oversized and wrong-type files; malformed paths; deleting or overwriting another's file; and the
public.attachments rows that describe the files.

World: customer owns t_open (unassigned), t_agent2 (assigned to agent2) and t_closed; customer2 owns
t_other (assigned to agent). In t_open the customer wrote m_customer, the agent wrote a public reply
m_reply and an internal note m_note; customer2 wrote m_other in t_other. Each message has one file.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from tests.conftest import Users
from tests.stackproc import StackProcess

Factory = Callable[[str], Client]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4 invoice"


@dataclass(frozen=True)
class World:
    t_open: str
    t_agent2: str
    t_closed: str
    t_other: str
    m_customer: str
    m_reply: str
    m_note: str
    m_other: str

    @property
    def f_customer(self) -> str:
        return f"{self.t_open}/{self.m_customer}/screenshot.png"

    @property
    def f_reply(self) -> str:
        return f"{self.t_open}/{self.m_reply}/invoice.pdf"

    @property
    def f_note(self) -> str:
        return f"{self.t_open}/{self.m_note}/internal.pdf"

    @property
    def f_other(self) -> str:
        return f"{self.t_other}/{self.m_other}/card.png"


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


def files(client: Client):  # type: ignore[no-untyped-def]
    return client.storage.from_("attachments")


@pytest.fixture(scope="module")
def world(as_: Factory, users: Users) -> World:
    svc = as_("service")

    def ticket(customer: str, subject: str, **extra: str) -> str:
        return str(
            svc.table("tickets").insert({"customer_id": customer, "subject": subject, **extra}).execute().data[0]["id"]
        )

    def message(who: str, ticket_id: str, **extra: object) -> str:
        return str(
            as_(who).table("messages").insert({"ticket_id": ticket_id, "content": "m", **extra}).execute().data[0]["id"]
        )

    t_open = ticket(users.customer.id, "printer on fire")
    t_agent2 = ticket(users.customer.id, "billing", assignee_id=users.agent2.id)
    t_closed = ticket(users.customer.id, "done")
    t_other = ticket(users.customer2.id, "other customer's secret", assignee_id=users.agent.id)
    w = World(
        t_open,
        t_agent2,
        t_closed,
        t_other,
        message("customer", t_open),
        message("agent", t_open),
        message("agent", t_open, is_internal=True),
        message("customer2", t_other),
    )
    svc.table("tickets").update({"status": "closed"}).eq("id", t_closed).execute()
    files(as_("customer")).upload(w.f_customer, PNG, {"content-type": "image/png"})
    files(as_("agent")).upload(w.f_reply, PDF, {"content-type": "application/pdf"})
    files(as_("agent")).upload(w.f_note, PDF, {"content-type": "application/pdf"})
    files(as_("customer2")).upload(w.f_other, PNG, {"content-type": "image/png"})
    return w


def refused(call: Callable[[], object]) -> StorageApiError:
    with pytest.raises(StorageApiError) as err:
        call()
    return err.value


def not_found(call: Callable[[], object]) -> None:
    err = refused(call)
    assert (err.status, err.code) == ("404", "not_found"), err


def rls_refused(call: Callable[[], object]) -> None:
    err = refused(call)
    assert (err.status, err.code, err.message) == (
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    ), err


def names(listed: list[dict[str, object]]) -> set[str]:
    return {str(e["name"]) for e in listed}


# reading ------------------------------------------------------------------------------------------------


def test_customer_reads_own_tickets_files_but_not_internal_notes(world: World, as_: Factory) -> None:
    c = files(as_("customer"))
    assert c.download(world.f_customer) == PNG
    assert c.download(world.f_reply) == PDF
    not_found(lambda: c.download(world.f_note))
    not_found(lambda: c.info(world.f_note))
    assert c.exists(world.f_note) is False
    assert names(c.list(world.t_open)) == {world.m_customer, world.m_reply}
    assert c.list(f"{world.t_open}/{world.m_note}") == []
    not_found(lambda: c.create_signed_url(world.f_note, 60))
    batch = c.create_signed_urls([world.f_reply, world.f_note], 60)
    assert batch[0]["signedURL"] and batch[1]["signedURL"] is None


def test_customer_signed_in_with_password_reads_own_file(stack: StackProcess, users: Users, world: World) -> None:
    with httpx.Client(timeout=60) as http:
        client = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False),
        )
        client.auth.sign_in_with_password({"email": users.customer.email, "password": users.customer.password})
        assert files(client).download(world.f_customer) == PNG
        not_found(lambda: files(client).download(world.f_other))


def test_another_customer_gets_nothing_by_guessed_path_list_or_signing(world: World, as_: Factory) -> None:
    c2 = files(as_("customer2"))
    for path in (world.f_customer, world.f_reply, world.f_note):
        not_found(lambda path=path: c2.download(path))  # type: ignore[misc]
        assert c2.exists(path) is False
        not_found(lambda path=path: c2.create_signed_url(path, 60))  # type: ignore[misc]
    assert c2.list(world.t_open) == []
    assert c2.list(f"{world.t_open}/{world.m_customer}") == []
    assert world.t_open not in names(c2.list())
    assert all(item["signedURL"] is None for item in c2.create_signed_urls([world.f_customer], 60))


def test_signed_url_of_one_ticket_does_not_open_another(world: World, as_: Factory, stack: StackProcess) -> None:
    own = files(as_("customer2")).create_signed_url(world.f_other, 60)["signedURL"]
    assert httpx.get(own).content == PNG
    token = httpx.URL(own).params["token"]
    stolen = httpx.get(
        f"{stack.api_url}/storage/v1/object/sign/attachments/{world.f_customer}", params={"token": token}
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "InvalidSignature"


def test_staff_read_per_ticket_rules(world: World, as_: Factory) -> None:
    agent = files(as_("agent"))
    assert agent.download(world.f_customer) == PNG and agent.download(world.f_note) == PDF
    assert agent.download(world.f_other) == PNG  # t_other is assigned to the agent
    agent2 = files(as_("agent2"))
    assert agent2.download(world.f_note) == PDF  # t_open is unassigned: every agent sees it
    not_found(lambda: agent2.download(world.f_other))  # assigned to someone else
    admin = files(as_("admin"))
    assert {admin.download(p) for p in (world.f_customer, world.f_note, world.f_other)} == {PNG, PDF}


def test_anon_sees_nothing(world: World, as_: Factory, stack: StackProcess) -> None:
    anon = files(as_("anon"))
    not_found(lambda: anon.download(world.f_customer))
    assert anon.list(world.t_open) == []
    rls_refused(lambda: anon.upload(f"{world.t_open}/{uuid.uuid4()}/a.png", PNG, {"content-type": "image/png"}))
    public = httpx.get(f"{stack.api_url}/storage/v1/object/public/attachments/{world.f_customer}")
    assert public.status_code == 400 and public.json()["message"] == "Bucket not found"


# moving, copying, deleting, overwriting ---------------------------------------------------------------


def test_move_or_copy_another_customers_file_into_own_folder(world: World, as_: Factory) -> None:
    c2 = files(as_("customer2"))
    stolen = f"{world.t_other}/{world.m_other}/stolen.png"
    not_found(lambda: c2.move(world.f_customer, stolen))
    not_found(lambda: c2.copy(world.f_customer, stolen))
    not_found(lambda: files(as_("customer")).copy(world.f_note, f"{world.t_open}/{world.m_customer}/note.pdf"))
    # staff cannot take a customer's file either: moving needs ownership
    not_found(lambda: files(as_("agent")).move(world.f_customer, f"{world.t_open}/{world.m_reply}/x.png"))
    assert files(as_("customer")).download(world.f_customer) == PNG
    assert files(as_("service")).exists(stolen) is False


def test_customer_cannot_move_own_file_into_another_ticket(world: World, as_: Factory) -> None:
    c = files(as_("customer"))
    path = f"{world.t_open}/{world.m_customer}/movable.png"
    c.upload(path, PNG, {"content-type": "image/png"})
    rls_refused(lambda: c.move(path, f"{world.t_other}/{uuid.uuid4()}/movable.png"))
    rls_refused(lambda: c.copy(path, f"{world.t_other}/{uuid.uuid4()}/copied.png"))
    assert c.download(path) == PNG


def test_nobody_deletes_or_overwrites_anothers_file(world: World, as_: Factory) -> None:
    assert files(as_("customer")).remove([world.f_reply, world.f_note]) == []
    assert files(as_("agent")).remove([world.f_customer]) == []
    assert files(as_("customer2")).remove([world.f_customer]) == []
    rls_refused(
        lambda: files(as_("customer")).upload(
            world.f_reply, b"%PDF fake", {"content-type": "application/pdf", "upsert": "true"}
        )
    )
    assert files(as_("agent")).download(world.f_reply) == PDF
    assert files(as_("service")).exists(world.f_customer) is True


def test_uploader_deletes_own_file(world: World, as_: Factory) -> None:
    c = files(as_("customer"))
    path = f"{world.t_open}/{world.m_customer}/delete-me.png"
    c.upload(path, PNG, {"content-type": "image/png"})
    assert [r["name"] for r in c.remove([path])] == [path]
    assert files(as_("service")).exists(path) is False


# uploading ----------------------------------------------------------------------------------------------


def test_uploads_only_into_tickets_one_may_write(world: World, as_: Factory) -> None:
    png = {"content-type": "image/png"}
    rls_refused(lambda: files(as_("customer")).upload(f"{world.t_closed}/{uuid.uuid4()}/late.png", PNG, png))
    rls_refused(lambda: files(as_("customer2")).upload(f"{world.t_open}/{uuid.uuid4()}/intrude.png", PNG, png))
    rls_refused(lambda: files(as_("agent2")).upload(f"{world.t_other}/{uuid.uuid4()}/x.png", PNG, png))
    # onto somebody else's message, visible or not
    rls_refused(lambda: files(as_("customer")).upload(f"{world.t_open}/{world.m_reply}/mine.png", PNG, png))
    rls_refused(lambda: files(as_("customer")).upload(f"{world.t_open}/{world.m_note}/mine.png", PNG, png))
    # malformed paths
    for bad in (
        f"{world.t_open}/not-a-uuid/x.png",
        f"{world.t_open}/x.png",
        f"{world.t_open}/{uuid.uuid4()}/deeper/x.png",
        f"{uuid.uuid4()}/{uuid.uuid4()}/x.png",
    ):
        rls_refused(lambda bad=bad: files(as_("customer")).upload(bad, PNG, png))  # type: ignore[misc]
    # a new message's files may go first (the message follows them), into a ticket one may write
    files(as_("customer")).upload(f"{world.t_open}/{uuid.uuid4()}/first.png", PNG, png)
    files(as_("agent")).upload(f"{world.t_other}/{uuid.uuid4()}/reply.png", PNG, png)


def test_oversized_and_wrong_type_files_are_refused(world: World, as_: Factory) -> None:
    c = files(as_("customer"))
    folder = f"{world.t_open}/{uuid.uuid4()}"
    big = refused(lambda: c.upload(f"{folder}/big.png", b"\0" * (25 * 1024 * 1024 + 1), {"content-type": "image/png"}))
    assert (big.status, big.code) == ("413", "Payload too large")
    for mime in ("text/html", "image/svg+xml", "application/x-msdownload"):
        err = refused(
            lambda mime=mime: c.upload(
                f"{folder}/evil",
                b"<svg onload=alert(1)>",  # type: ignore[misc]
                {"content-type": mime},
            )
        )
        assert (err.status, err.code) == ("415", "invalid_mime_type")
    assert c.list(folder) == []


# public.attachments --------------------------------------------------------------------------------------


def test_attachment_rows_follow_message_visibility(world: World, as_: Factory, db: psycopg.Connection) -> None:
    sha = hashlib.sha256(PNG).hexdigest()
    row = (
        as_("customer")
        .table("attachments")
        .insert(
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "screenshot.png",
                "mime": "application/x-lie",
                "size": 1,
                "sha256": sha,
                "object_path": world.f_customer,
            }
        )
        .execute()
        .data[0]
    )
    assert (row["mime"], row["size"]) == ("image/png", len(PNG))  # the stored object's truth, not the client's
    as_("agent").table("attachments").insert(
        {
            "message_id": world.m_note,
            "ticket_id": world.t_open,
            "name": "internal.pdf",
            "sha256": sha,
            "object_path": world.f_note,
        }
    ).execute()
    seen = {r["name"] for r in as_("customer").table("attachments").select("name").execute().data}
    assert "screenshot.png" in seen and "internal.pdf" not in seen
    assert as_("customer2").table("attachments").select("*").eq("ticket_id", world.t_open).execute().data == []
    assert {
        r["name"] for r in as_("agent").table("attachments").select("name").eq("ticket_id", world.t_open).execute().data
    } >= {"screenshot.png", "internal.pdf"}
    with pytest.raises(APIError) as err:
        as_("anon").table("attachments").select("*").execute()
    assert err.value.code == "42501"
    publication = db.execute(
        "select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'attachments'"
    ).fetchone()
    assert publication == (1,)


def test_attachment_display_name_may_differ_from_the_key(world: World, as_: Factory) -> None:
    """Regression: the row's name had to equal the key's last segment, so a file called "résumé.pdf"
    (not a valid Storage key) could not keep its name."""
    c = as_("customer")
    key = f"{world.t_open}/{world.m_customer}/resume.pdf"
    files(c).upload(key, PDF, {"content-type": "application/pdf"})
    row = (
        c.table("attachments")
        .insert(
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "résumé 2026 \u2013 final.pdf",
                "sha256": hashlib.sha256(PDF).hexdigest(),
                "object_path": key,
            }
        )
        .execute()
        .data[0]
    )
    assert (row["name"], row["object_path"], row["mime"]) == ("résumé 2026 \u2013 final.pdf", key, "application/pdf")


def test_attachment_rows_cannot_be_forged(world: World, as_: Factory, users: Users) -> None:
    sha = "0" * 64
    world_uploader = users.customer2.id
    stray = f"{world.t_open}/{uuid.uuid4()}/stray.png"
    files(as_("customer")).upload(stray, PNG, {"content-type": "image/png"})
    cases = [
        # another user's message and file (the trigger finds no file of the caller's there)
        (
            "customer",
            {
                "message_id": world.m_reply,
                "ticket_id": world.t_open,
                "name": "invoice.pdf",
                "object_path": world.f_reply,
            },
            "23503",
        ),
        # a file that was never uploaded
        (
            "customer",
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "ghost.png",
                "object_path": f"{world.t_open}/{world.m_customer}/ghost.png",
            },
            "23503",
        ),
        # one's own file, but in another message's folder than the row's
        (
            "customer",
            {"message_id": world.m_customer, "ticket_id": world.t_open, "name": "stray.png", "object_path": stray},
            "23514",
        ),
        # a path deeper than <ticket>/<message>/<key> (no such file can exist: uploads refuse it)
        (
            "customer",
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "x.png",
                "object_path": f"{world.t_open}/{world.m_customer}/a/x.png",
            },
            "23503",
        ),
        # someone else's ticket (its message is invisible to the caller)
        (
            "customer2",
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "screenshot.png",
                "object_path": world.f_customer,
            },
            "23503",
        ),
        # one's own file, described as somebody else's upload
        (
            "customer",
            {
                "message_id": world.m_customer,
                "ticket_id": world.t_open,
                "name": "screenshot.png",
                "object_path": world.f_customer,
                "uploader_id": world_uploader,
            },
            "23503",
        ),
    ]
    for who, values, code in cases:
        with pytest.raises(APIError) as err:
            as_(who).table("attachments").insert({**values, "sha256": sha}).execute()
        assert err.value.code == code, (who, values, err.value)
    with pytest.raises(APIError) as err:
        as_("customer").table("attachments").update({"size": 0}).eq("object_path", world.f_customer).execute()
    assert err.value.code == "42501"


# signed upload URLs and resumable uploads act for their creator ----------------------------------------


def test_signed_upload_url_follows_its_creators_rights(
    world: World, as_: Factory, db: psycopg.Connection, users: Users
) -> None:
    png = {"content-type": "image/png"}
    rls_refused(lambda: files(as_("customer2")).create_signed_upload_url(f"{world.t_open}/{uuid.uuid4()}/x.png"))
    ticket = str(
        as_("service")
        .table("tickets")
        .insert({"customer_id": users.customer.id, "subject": "s"})
        .execute()
        .data[0]["id"]
    )
    path = f"{ticket}/{uuid.uuid4()}/later.png"
    signed = files(as_("customer")).create_signed_upload_url(path)
    # the ticket closes before the link is used: RLS is asked again, as the customer, and refuses
    db.execute("update public.tickets set status = 'closed' where id = %s", (ticket,))
    rls_refused(lambda: files(as_("anon")).upload_to_signed_url(path, signed["token"], PNG, png))
    db.execute("update public.tickets set status = 'open' where id = %s", (ticket,))
    files(as_("anon")).upload_to_signed_url(path, signed["token"], PNG, png)
    owner = db.execute(
        "select owner_id from storage.objects where bucket_id = 'attachments' and name = %s", (path,)
    ).fetchone()
    assert owner == (users.customer.id,)


def test_resumable_upload_into_attachments_as_a_customer(
    world: World, as_: Factory, stack: StackProcess, users: Users
) -> None:
    import base64

    def meta(name: str, mime: str) -> str:
        return ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in {"bucketName": "attachments", "objectName": name, "contentType": mime}.items()
        )

    base = f"{stack.api_url}/storage/v1/upload/resumable"

    def h(who: str) -> dict[str, str]:
        return {
            "apikey": stack.anon_key,
            "Authorization": f"Bearer {stack.mint(sub=getattr(users, who).id)}",
            "Tus-Resumable": "1.0.0",
        }

    intruder = httpx.post(
        base,
        headers={
            **h("customer2"),
            "Upload-Length": str(len(PNG)),
            "Upload-Metadata": meta(f"{world.t_open}/{uuid.uuid4()}/x.png", "image/png"),
        },
    )
    assert intruder.status_code == 403 and intruder.json()["error"] == "Unauthorized"
    path = f"{world.t_open}/{uuid.uuid4()}/tus.png"
    created = httpx.post(
        base, headers={**h("customer"), "Upload-Length": str(len(PNG)), "Upload-Metadata": meta(path, "image/png")}
    )
    assert created.status_code == 201, created.text
    done = httpx.patch(
        created.headers["location"],
        content=PNG,
        headers={**h("customer"), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert done.status_code == 204 and done.headers["upload-offset"] == str(len(PNG))
    assert files(as_("customer")).download(path) == PNG
    not_found(lambda: files(as_("customer2")).download(path))

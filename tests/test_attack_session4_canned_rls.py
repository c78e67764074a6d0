"""Attacker's review of canned reply files on the server (migration 20261201000410) between staff members and
through the TUS endpoint, with the official supabase client and raw httpx against the real localbase. All of
this held when tried: another agent neither reads, lists, overwrites, deletes nor describes (row) the files of
an agent's personal canned reply; an admin does not delete an agent's object in a shared reply's folder; a
customer or another agent cannot start a resumable upload into a reply's folder; anon gets nothing.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from postgrest.exceptions import APIError

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_storage_rls import Factory, as_, files, not_found, rls_refused
from tests.test_sync_support import sql

uses_as = as_
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

PDF = b"%PDF-1.4 my card"


def _tus_create(stack: StackProcess, token: str, key: str) -> int:
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"bucketName": "attachments", "objectName": key, "contentType": "application/pdf"}.items()
    )
    return httpx.post(
        f"{stack.api_url}/storage/v1/upload/resumable",
        headers={
            "apikey": stack.anon_key,
            "Authorization": f"Bearer {token}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(PDF)),
            "Upload-Metadata": meta,
        },
    ).status_code


def test_an_agents_personal_canned_files_are_theirs_alone(stack: StackProcess, users: Users, as_: Factory) -> None:
    [(reply,)] = sql(
        stack.db_url,
        "insert into public.canned_replies (owner_id, title, body) values (%s, 'Card', 'Best') returning id::text",
        users.agent.id,
    )
    key = f"canned/{reply}/card.pdf"
    files(as_("agent")).upload(key, PDF, {"content-type": "application/pdf"})
    row = {"canned_reply_id": reply, "name": "card.pdf", "sha256": "0" * 64, "object_path": key}
    [stored] = as_("agent").table("canned_reply_files").insert(row).execute().data

    for who in ("agent2", "admin", "customer", "anon"):
        not_found(lambda who=who: files(as_(who)).download(key))
        assert files(as_(who)).list(f"canned/{reply}") == []
        if who == "anon":  # no grant at all
            with pytest.raises(APIError, match="permission denied"):
                as_(who).table("canned_reply_files").select("id").execute()
        else:
            assert as_(who).table("canned_reply_files").select("id").eq("id", stored["id"]).execute().data == []
        assert files(as_(who)).remove([key]) == []
    rls_refused(
        lambda: files(as_("agent2")).upload(key, b"%PDF evil", {"content-type": "application/pdf", "upsert": "true"})
    )
    with pytest.raises(APIError):
        as_("agent2").table("canned_reply_files").insert(
            {**row, "name": "x.pdf", "object_path": f"canned/{reply}/x.pdf"}
        ).execute()
    assert (
        as_("agent2").table("canned_reply_files").update({"deleted_at": "now()"}).eq("id", stored["id"]).execute().data
        == []
    )
    for who in ("agent2", "customer"):
        assert _tus_create(stack, stack.mint(sub=getattr(users, who).id), f"canned/{reply}/y.pdf") == 403
    assert _tus_create(stack, stack.anon_key, f"canned/{reply}/y.pdf") in (400, 403)
    assert files(as_("agent")).download(key) == PDF  # untouched
    assert sql(stack.db_url, "select deleted_at is null from canned_reply_files where id = %s", stored["id"]) == [
        (True,)
    ]

    # a shared reply: the admin writes it, but an object an agent left there (when they were admin) stays theirs
    [(shared,)] = sql(
        stack.db_url, "insert into public.canned_replies (title, body) values ('Shared', 'Hi') returning id::text"
    )
    assert _tus_create(stack, stack.mint(sub=users.agent.id), f"canned/{shared}/z.pdf") == 403
    files(as_("admin")).upload(f"canned/{shared}/z.pdf", PDF, {"content-type": "application/pdf"})
    assert files(as_("agent")).download(f"canned/{shared}/z.pdf") == PDF  # staff read the shared reply's files
    not_found(lambda: files(as_("customer")).download(f"canned/{shared}/z.pdf"))
    assert files(as_("agent")).remove([f"canned/{shared}/z.pdf"]) == []
    rls_refused(
        lambda: files(as_("agent")).upload(
            f"canned/{shared}/z.pdf", b"%PDF evil", {"content-type": "application/pdf", "upsert": "true"}
        )
    )
    # leave no replies behind in the shared users' pickers (later tests' first syncs)
    sql(stack.db_url, "update public.canned_replies set deleted_at = now() where id in (%s, %s)", reply, shared)

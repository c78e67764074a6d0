"""A deleted message's attachments (issue 13): rows gone, files unreadable to others, listed for purging."""

from __future__ import annotations

import hashlib

import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError

from tests.conftest import Users
from tests.test_storage_rls import PDF, Factory, as_, files

uses_as = as_


def test_deleting_a_message_takes_its_attachments(as_: Factory, users: Users) -> None:
    svc = as_("service")
    ticket = str(
        svc.table("tickets")
        .insert({"customer_id": users.customer.id, "subject": "invoice", "assignee_id": users.agent.id})
        .execute()
        .data[0]["id"]
    )
    message = str(
        as_("agent").table("messages").insert({"ticket_id": ticket, "content": "your invoice"}).execute().data[0]["id"]
    )
    path = f"{ticket}/{message}/invoice.pdf"
    files(as_("agent")).upload(path, PDF, {"content-type": "application/pdf"})
    described = {
        "message_id": message,
        "ticket_id": ticket,
        "name": "invoice.pdf",
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "object_path": path,
    }
    as_("agent").table("attachments").insert(described).execute()
    assert files(as_("customer")).download(path) == PDF
    assert as_("customer").table("attachments").select("id").eq("message_id", message).execute().data

    as_("agent").table("messages").update({"deleted_at": "now"}).eq("id", message).execute()
    with pytest.raises(StorageApiError):
        files(as_("customer")).download(path)
    for who in ("customer", "agent", "admin", "service"):
        assert as_(who).table("attachments").select("id").eq("message_id", message).execute().data == []
    # its uploader's object outlives the delete until the purge: the rows still cannot come back (review21: every
    # cache would pull them again under the deleted message, clearing their tombstones)
    with pytest.raises(APIError) as again:
        as_("agent").table("attachments").insert(described).execute()
    assert again.value.code == "23503" and "deleted" in str(again.value.message)
    assert {"bucket_id": "attachments", "name": path} in svc.rpc("attachment_objects_to_purge", {}).execute().data
    for who in ("customer", "agent", "admin"):
        with pytest.raises(APIError) as err:
            as_(who).rpc("attachment_objects_to_purge", {}).execute()
        assert err.value.code == "42501"
    # the uploader removes the bytes through the Storage API, and the list empties
    files(as_("agent")).remove([path])
    assert {"bucket_id": "attachments", "name": path} not in svc.rpc("attachment_objects_to_purge", {}).execute().data

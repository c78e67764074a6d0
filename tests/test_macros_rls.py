"""Macros on the server as an attacker would try them (issue 14), through supabase-py: customers never read or
write any; agents make personal macros but never change or remove shared ones, nor anyone else's, nor turn one
into a shared one or hand it to someone else; admins manage the shared ones. The app's checks refuse bad
actions before anything is queued, with the server's rules (pure)."""

from __future__ import annotations

import uuid

import pytest

from sync.workspace_rows import RowWrite, check_write
from tests.conftest import Users
from tests.test_history_rls import As, as_, refused
from tests.test_rest_clients import clients_fixture

uses_clients = clients_fixture
uses_as = as_
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


def test_macro_rows_by_role(as_: As, users: Users) -> None:
    suffix = uuid.uuid4().hex[:6]
    admin, agent, agent2 = as_("admin"), as_("agent"), as_("agent2")
    shared = admin.table("macros").insert({"name": f"Close {suffix}", "actions": {"status": "resolved"}}).execute()
    shared_id = shared.data[0]["id"]
    mine = agent.table("macros").insert({"owner_id": users.agent.id, "name": f"Mine {suffix}", "reply": "Hi!"})
    mine_id = mine.execute().data[0]["id"]

    # customers: nothing to read, nothing to write
    for who in ("customer", "customer2"):
        c = as_(who)
        assert c.table("macros").select("id").execute().data == []
        assert c.rpc("sync_macros", {}).execute().data == []
        refused(lambda c=c: c.table("macros").insert({"name": "x", "reply": "y"}).execute())  # type: ignore[misc]
        refused(
            lambda c=c, who=who: (  # type: ignore[misc]
                c.table("macros").insert({"owner_id": getattr(users, who).id, "name": "x", "reply": "y"}).execute()
            )
        )
        assert c.table("macros").update({"name": "pwned"}).eq("id", shared_id).execute().data == []
    refused(lambda: as_("anon").table("macros").select("id").execute())

    # agents read shared ones and their own
    assert {shared_id, mine_id} <= {r["id"] for r in agent.table("macros").select("id").execute().data}
    assert mine_id not in {r["id"] for r in agent2.table("macros").select("id").execute().data}
    # ...but never change or remove a shared one
    assert agent.table("macros").update({"reply": "hijacked"}).eq("id", shared_id).execute().data == []
    assert agent.table("macros").update({"deleted_at": "now"}).eq("id", shared_id).execute().data == []
    refused(lambda: agent.table("macros").delete().eq("id", shared_id).execute())
    # ...nor make a shared one, or one for a colleague, or turn theirs into a shared one or a colleague's
    refused(lambda: agent.table("macros").insert({"name": "shared?", "reply": "no"}).execute())
    refused(
        lambda: agent.table("macros").insert({"owner_id": users.agent2.id, "name": "yours", "reply": "no"}).execute()
    )
    refused(lambda: agent.table("macros").update({"owner_id": None}).eq("id", mine_id).execute())
    refused(lambda: agent.table("macros").update({"owner_id": users.agent2.id}).eq("id", mine_id).execute())
    # a colleague neither changes nor removes another's personal macro
    assert agent2.table("macros").update({"name": "mine now"}).eq("id", mine_id).execute().data == []
    assert agent2.table("macros").update({"deleted_at": "now"}).eq("id", mine_id).execute().data == []
    # the owner changes and removes their own; the admin changes the shared one
    assert agent.table("macros").update({"reply": "Hello!"}).eq("id", mine_id).execute().data[0]["reply"] == "Hello!"
    assert admin.table("macros").update({"reply": "Done"}).eq("id", shared_id).execute().data
    gone = agent.table("macros").update({"deleted_at": "now"}).eq("id", mine_id).execute().data[0]
    assert gone["deleted_at"] is not None
    row = as_("service").table("macros").select("name, reply, owner_id").eq("id", shared_id).execute().data[0]
    assert row == {"name": f"Close {suffix}", "reply": "Done", "owner_id": None}


TAG = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@pytest.mark.parametrize(
    ("actions", "reason"),
    [
        ({"status": "deleted"}, "status"),
        ({"priority": "asap"}, "priority"),
        ({"assignee": "everyone"}, "assigns"),
        ({"add_tags": "VIP"}, "tag ids"),
        ({"remove_tags": ["VIP"]}, "tag ids"),
        ({"close": True}, "cannot set close"),
        (["status"], "an object"),
    ],
)
def test_bad_macro_actions_are_refused_before_queueing(actions: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_write(RowWrite("macros", "insert", {"id": TAG, "name": "m", "actions": actions}))
    ok = {"status": "resolved", "priority": "high", "assignee": "me", "add_tags": [TAG], "remove_tags": []}
    assert check_write(RowWrite("macros", "insert", {"id": TAG, "name": "m", "actions": ok}))

"""The macros page (issue 14, item 7) through NiceGUI's simulated `User` on the real stack: an admin makes a
shared macro (reply, status, priority, assignee, tags); an agent sees it without edit buttons and makes, edits
and removes a personal one; every change reaches the server through the outbox."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Users, create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    sign_in,
)
from tests.test_sync_support import sql

pytestmark = pytest.mark.timeout(240)


def _one(user: Any, marker: str) -> Any:
    return next(iter(user.find(marker=marker).elements))


def _server(db_url: str, name: str) -> list[tuple[Any, ...]]:
    return sql(
        db_url,
        "select owner_id::text, reply, actions, deleted_at is not null from macros where name = %s",
        name,
    )


async def test_admins_make_shared_macros_agents_personal_ones(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    suffix = uuid.uuid4().hex[:6]
    # fresh staff: their first syncs are short even late in the full suite (the shared ones see every ticket)
    admin_account, agent_account = create_user(stack.db_url, "admin"), create_user(stack.db_url, "agent")
    tag = sql(
        stack.db_url, "insert into tags (name, color) values (%s, '#16a34a') returning id::text", f"done-{suffix}"
    )
    tag_id = tag[0][0]
    shared, personal = f"Resolve {suffix}", f"Mine {suffix}"
    async with running_app() as admin:
        await sign_in(admin, admin_account)
        await eventually(lambda: any(t.id == tag_id for t in engine_of(admin).workspace.tags()), "the tag")
        await admin.open("/macros")
        admin.find(marker="macro-new").click()
        admin.find(marker="macro-name").type(shared)
        _one(admin, "macro-reply").value = "Fixed on our side, closing this."
        _one(admin, "macro-status").value = "resolved"
        _one(admin, "macro-priority").value = "low"
        _one(admin, "macro-assignee").value = "me"
        _one(admin, "macro-add-tags").value = [tag_id]
        _one(admin, "macro-shared").value = True
        admin.find(marker="macro-save").click()
        await admin.should_see(
            content=f"status → resolved · priority → low · assign to me · + done-{suffix}", retries=WAIT
        )
        await eventually(
            lambda: (
                _server(stack.db_url, shared)
                == [
                    (
                        None,
                        "Fixed on our side, closing this.",
                        {"status": "resolved", "priority": "low", "assignee": "me", "add_tags": [tag_id]},
                        False,
                    )
                ]
            ),
            "the shared macro on the server",
            timeout=60,
        )
        macro_id = next(m.id for m in engine_of(admin).workspace.macros() if m.name == shared)

        agent = another_user()
        await sign_in(agent, agent_account)
        await eventually(lambda: any(m.name == shared for m in engine_of(agent).workspace.macros()), "pulled")
        await agent.open("/macros")
        await agent.should_see(marker=f"macro-row-{macro_id}", retries=WAIT)
        await agent.should_not_see(marker=f"macro-edit-{macro_id}")  # shared ones are the admins'
        agent.find(marker="macro-new").click()
        assert not _one(agent, "macro-shared").enabled
        agent.find(marker="macro-name").type(personal)
        _one(agent, "macro-status").value = "pending"
        agent.find(marker="macro-save").click()
        await eventually(
            lambda: _server(stack.db_url, personal) == [(agent_account.id, None, {"status": "pending"}, False)],
            "the personal macro on the server",
            timeout=60,
        )
        mine = next(m.id for m in engine_of(agent).workspace.macros() if m.name == personal)
        agent.find(marker=f"macro-edit-{mine}").click()
        _one(agent, "macro-reply").value = "Waiting for your answer."
        _one(agent, "macro-status").value = ""  # no change
        _one(agent, "macro-remove-tags").value = [tag_id]
        agent.find(marker="macro-save").click()
        await eventually(
            lambda: (
                _server(stack.db_url, personal)
                == [(agent_account.id, "Waiting for your answer.", {"remove_tags": [tag_id]}, False)]
            ),
            "the edit on the server",
            timeout=60,
        )
        agent.find(marker=f"macro-delete-{mine}").click()
        await eventually(lambda: _server(stack.db_url, personal)[0][3] is True, "removed on the server", timeout=60)
        await agent.should_not_see(marker=f"macro-row-{mine}", retries=WAIT)
        assert _server(stack.db_url, shared)[0][3] is False  # the shared one untouched

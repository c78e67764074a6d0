"""Attacks on `app_settings.staff_require_mfa` with a stolen staff password (migration 20261130000900), through
supabase-py on the real stack. With the requirement on, a staff session below aal2 must not get around it:
an admin's password alone neither switches the requirement off nor makes another account an admin (which
would then enrol a factor of its own at aal1 and read everything at aal2), and an agent's password alone
reads no customer's profile. Customers keep their own profile writes; an aal2 admin can still switch it off.
"""

from __future__ import annotations

import psycopg
import pyotp
from supabase import Client

from tests.conftest import User
from tests.stackproc import StackProcess
from tests.test_staff_mfa_rls import client_of, desk, set_required

__all__ = ["desk"]  # the fixture, used by name below


def setting(stack: StackProcess) -> bool:
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute("select staff_require_mfa from public.app_settings").fetchone()
    assert row is not None
    return bool(row[0])


def role_of(stack: StackProcess, user: User) -> str:
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute("select role from public.profiles where id = %s", (user.id,)).fetchone()
    assert row is not None
    return str(row[0])


def to_aal2(sb: Client) -> None:
    enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})
    assert enrolled.totp is not None
    sb.auth.mfa.challenge_and_verify({"factor_id": enrolled.id, "code": pyotp.TOTP(enrolled.totp.secret).now()})
    session = sb.auth.get_session()
    assert session is not None
    sb.postgrest.auth(session.access_token)


def test_an_admin_password_alone_cannot_switch_the_requirement_off(
    stack: StackProcess, desk: tuple[User, User, User, str]
) -> None:
    agent, admin, _, ticket = desk
    set_required(stack, True)
    boss = client_of(stack, admin)
    assert boss.table("app_settings").update({"staff_require_mfa": False}).eq("id", True).execute().data == []
    assert boss.table("app_settings").update({"edit_window_seconds": 1}).eq("id", True).execute().data == []
    assert setting(stack) is True
    assert client_of(stack, agent).table("tickets").select("id").eq("id", ticket).execute().data == []
    # the same admin after the code step can
    to_aal2(boss)
    boss.table("app_settings").update({"staff_require_mfa": False}).eq("id", True).execute()
    assert setting(stack) is False


def test_an_admin_password_alone_makes_nobody_admin(stack: StackProcess, desk: tuple[User, User, User, str]) -> None:
    _, admin, customer, ticket = desk
    set_required(stack, True)
    boss = client_of(stack, admin)
    assert boss.table("profiles").update({"role": "admin"}).eq("id", customer.id).execute().data == []
    assert role_of(stack, customer) == "customer"
    # (had it worked: the accomplice, at aal1, enrols a first factor and reads everything at aal2)
    accomplice = client_of(stack, customer)
    to_aal2(accomplice)
    assert [t["id"] for t in accomplice.table("tickets").select("id").eq("id", ticket).execute().data] == [ticket]
    assert accomplice.table("tickets").select("id").neq("customer_id", customer.id).limit(1).execute().data == []


def test_a_staff_password_alone_reads_only_its_own_profile(
    stack: StackProcess, desk: tuple[User, User, User, str]
) -> None:
    agent, admin, customer, _ = desk
    set_required(stack, True)
    sb = client_of(stack, agent)
    seen = {
        p["id"] for p in sb.table("profiles").select("id").in_("id", [agent.id, admin.id, customer.id]).execute().data
    }
    assert seen == {agent.id}
    assert sb.table("profiles").update({"display_name": "renamed at aal1"}).eq("id", agent.id).execute().data == []
    # customers keep reading staff and writing their own profile
    mine = client_of(stack, customer)
    seen = {p["id"] for p in mine.table("profiles").select("id").in_("id", [agent.id, customer.id]).execute().data}
    assert seen == {agent.id, customer.id}
    assert [
        p["display_name"]
        for p in mine.table("profiles").update({"display_name": "Cust"}).eq("id", customer.id).execute().data
    ] == ["Cust"]
    # off again: the agent reads everyone as before
    set_required(stack, False)
    seen = {
        p["id"] for p in sb.table("profiles").select("id").in_("id", [agent.id, admin.id, customer.id]).execute().data
    }
    assert seen == {agent.id, admin.id, customer.id}

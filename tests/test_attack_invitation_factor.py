"""review17: a second factor planted before an invitation's acceptance locked the invitee out.

An outsider who knows an invited address signs it up first (sign-ups are confirmed at once), which binds the
invitation to that account, and enrols a TOTP factor on it. The invitee then signs in with the emailed code, which
opens that same account at aal1, and accepts: the acceptance ended the outsider's sessions and cleared their
password (migration 20261211000510), but kept their factor. The invitee could neither reach aal2 (the code is the
outsider's) nor enrol a factor of their own or remove the planted one (both need aal2), and the app asks every
sign-in of an account with a factor for its code: the new agent or admin was locked out until another admin
deleted the factor. Now an acceptance from a session below aal2 also removes the account's factors (nobody in that
session proved them), while one from an aal2 session keeps them (its own code was just verified).
"""

from __future__ import annotations

import psycopg
from supabase import Client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_auth_mfa import enrolled
from tests.test_invitations import _signed_up_by_an_outsider, client, clients, code_for, invite, new_email

__all__ = ["clients"]  # the fixture, used by name below


def _factors(stack: StackProcess, address: str) -> list[str]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        rows = conn.execute(
            "select f.status::text from auth.mfa_factors f join auth.users u on u.id = f.user_id where u.email = %s",
            (address,),
        ).fetchall()
    return [r[0] for r in rows]


def _signed_in_with_the_code(stack: StackProcess, made: list[Client], address: str) -> Client:
    owner = client(stack, made)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    return owner


def test_a_factor_enrolled_before_the_acceptance_is_gone_after_it(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    address = new_email()
    mallory = _signed_up_by_an_outsider(stack, users, clients, address)
    planted, code = enrolled(mallory)
    mallory.auth.mfa.challenge_and_verify({"factor_id": planted, "code": code.now()})
    assert _factors(stack, address) == ["verified"]
    owner = _signed_in_with_the_code(stack, clients, address)
    assert owner.rpc("accept_invitation").execute().data == "admin"
    assert _factors(stack, address) == [], "the outsider's factor outlived the acceptance"
    mine, own_code = enrolled(owner)  # the invitee sets up their own two-step sign-in
    verified = owner.auth.mfa.challenge_and_verify({"factor_id": mine, "code": own_code.now()})
    assert verified.access_token
    assert _factors(stack, address) == ["verified"]


def test_an_invitee_who_verified_their_own_factor_keeps_it(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    address = new_email()
    invite(stack, clients, users, address, "agent")
    owner = _signed_in_with_the_code(stack, clients, address)
    mine, code = enrolled(owner)
    owner.auth.mfa.challenge_and_verify({"factor_id": mine, "code": code.now()})  # aal2 before accepting
    assert owner.rpc("accept_invitation").execute().data == "agent"
    assert _factors(stack, address) == ["verified"]

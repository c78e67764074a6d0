"""Unit tests of sync/decisions.py: the engine's pure decisions (no I/O, no clock)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase_auth.errors import AuthApiError, AuthRetryableError

from sync.decisions import (
    OutboxEntry,
    backoff_delay,
    bisect,
    canonical_ts,
    channel_refusal,
    check_content,
    classify_code,
    needs_backfill,
    overlay_ticket,
    plan_batches,
    probe_verdict,
    resolve_ticket_update,
    stale_tickets,
)
from sync.errormap import map_exception
from sync.errors import AuthError, PermanentError, RetryableError
from sync.models import RemoteConfig


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("42501", None, PermanentError),  # RLS refusal (ticket closed or reassigned while offline)
        ("42501", 403, PermanentError),
        ("42501", 401, AuthError),  # ran as anon: our token was not accepted
        ("23505", None, PermanentError),
        ("23503", None, PermanentError),  # the ticket is gone
        ("23514", None, PermanentError),  # check violation (content too long)
        ("22P02", None, PermanentError),  # bad uuid
        ("P0001", None, PermanentError),
        ("PGRST204", None, PermanentError),
        ("PGRST301", None, AuthError),
        ("PGRST303", None, AuthError),
        ("40001", None, RetryableError),  # serialization failure
        ("40P01", None, RetryableError),  # deadlock
        ("57P01", None, RetryableError),  # admin shutdown
        ("53300", None, RetryableError),  # too many connections
        ("502", None, RetryableError),  # a proxy's HTML page: postgrest-py puts the status in `code`
        ("503", None, RetryableError),
        ("429", None, RetryableError),
        ("408", None, RetryableError),
        ("404", None, PermanentError),
        ("401", None, AuthError),
        (None, 500, RetryableError),
        ("XYZ", None, RetryableError),  # unknown: never give up on a user's message without a reason
    ],
)
def test_classify_code(code: str | None, status: int | None, kind: type) -> None:
    err = classify_code(code, "msg", None, None, status)
    assert type(err) is kind
    assert err.code == code


def test_classify_keeps_the_servers_four_keys() -> None:
    exc = APIError(
        {
            "code": "42501",
            "message": 'new row violates row-level security policy for table "messages"',
            "details": "d",
            "hint": "h",
        }
    )
    err = map_exception(exc)
    assert isinstance(err, PermanentError)
    assert (err.code, err.details, err.hint) == ("42501", "d", "h")
    assert "row-level security" in err.reason()


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("reset"),
        ConnectionResetError(),
        TimeoutError(),
        AuthRetryableError("down", 0),
    ],
)
def test_network_failures_are_retryable(exc: Exception) -> None:
    assert isinstance(map_exception(exc), RetryableError)


def test_refused_refresh_is_auth_refused_but_server_error_is_retryable() -> None:
    refused = map_exception(AuthApiError("Invalid Refresh Token", 400, "refresh_token_not_found"))
    assert isinstance(refused, AuthError) and refused.refused
    assert isinstance(map_exception(AuthApiError("boom", 503, None)), RetryableError)


def test_backoff_grows_is_capped_and_jittered() -> None:
    low = [backoff_delay(a, lambda: 0.0) for a in range(12)]
    high = [backoff_delay(a, lambda: 1.0) for a in range(12)]
    assert low[0] == 0.25 and high[0] == 0.5
    assert all(b >= a for a, b in itertools.pairwise(low))
    assert max(high) == 30.0 and max(low) == 15.0  # capped; jitter spans the upper half
    assert all(lo < hi for lo, hi in zip(low, high, strict=True))


def _entries(kinds: str) -> list[OutboxEntry]:
    names = {"m": "message", "c": "ticket_create", "u": "ticket_update", "r": "read"}
    return [OutboxEntry(i, names[k], f"e{i}", "t", {}) for i, k in enumerate(kinds)]


def test_plan_batches_keeps_order_groups_runs_and_caps_size() -> None:
    batches = plan_batches(_entries("cmmmmmuumrrm"), max_batch=3)
    shape = ["".join(e.kind[0] for e in b) for b in batches]
    assert shape == ["t", "mmm", "mm", "t", "t", "m", "rr", "m"]
    flat = [e.seq for b in batches for e in b]
    assert flat == sorted(flat)


def test_bisect_isolates_a_bad_row_in_log_steps() -> None:
    batch = _entries("m" * 64)
    bad = 37
    requests = 0
    failed: list[int] = []

    def send(part: list[OutboxEntry]) -> None:
        nonlocal requests
        requests += 1
        if any(e.seq == bad for e in part):
            if len(part) == 1:
                failed.append(part[0].seq)
                return
            left, right = bisect(part)
            send(left)
            send(right)

    send(batch)
    assert failed == [bad]
    assert requests <= 2 * 6 + 1


def test_overlay_keeps_unsent_local_fields_only() -> None:
    server = {"id": "t", "status": "open", "priority": "high", "assignee_id": None, "subject": "s"}
    merged = overlay_ticket(server, {"status": "pending", "subject": "ignored"})
    assert merged["status"] == "pending" and merged["priority"] == "high" and merged["subject"] == "s"


def test_resolve_ticket_update_server_wins_per_field() -> None:
    base = {"status": "open", "priority": "normal"}
    wanted = {"status": "resolved", "priority": "high"}
    # someone else set the priority meanwhile: their value stays, my status still goes
    send, overruled = resolve_ticket_update(base, wanted, {"status": "open", "priority": "urgent"})
    assert send == {"status": "resolved"}
    assert overruled == {"priority": "urgent"}
    # already so on the server: nothing to send, nothing overruled
    assert resolve_ticket_update(base, wanted, {"status": "resolved", "priority": "high"}) == ({}, {})


def test_take_loses_against_someone_who_took_it_first() -> None:
    send, overruled = resolve_ticket_update({"assignee_id": None}, {"assignee_id": "me"}, {"assignee_id": "other"})
    assert send == {} and overruled == {"assignee_id": "other"}


def test_stale_tickets_spares_local_work() -> None:
    assert stale_tickets({"a", "b", "c"}, {"a"}, keep={"c"}) == {"b"}


def test_needs_backfill() -> None:
    assert not needs_backfill(None, {"assignee_id": "me"}, messages_synced=False)  # first pull fetches all
    assert needs_backfill(None, {"assignee_id": "me"}, messages_synced=True)  # new to this cache
    assert needs_backfill({"assignee_id": "x"}, {"assignee_id": "me"}, messages_synced=True)  # reassigned
    assert not needs_backfill({"assignee_id": "me"}, {"assignee_id": "me"}, messages_synced=True)


def test_canonical_ts_orders_as_text() -> None:
    a = canonical_ts("2026-11-24T01:00:00.5+01:00")
    b = canonical_ts("2026-11-24 00:30:00Z")
    c = canonical_ts("2026-11-24T00:00:00.123456+00:00")
    assert a == "2026-11-24T00:00:00.500000+00:00"
    assert c is not None and a is not None and b is not None and c < a < b
    assert canonical_ts(None) is None


def test_content_checks() -> None:
    with pytest.raises(ValueError, match="empty"):
        check_content("   ")
    with pytest.raises(ValueError, match="10000"):
        check_content("x" * 10_001)
    assert check_content("x" * 10_000)


def test_remote_config_refuses_the_service_key() -> None:
    service = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4"
        "cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
    )
    with pytest.raises(ValueError, match="service key"):
        RemoteConfig("http://127.0.0.1:1", service)
    with pytest.raises(ValueError, match="http"):
        RemoteConfig("ftp://x", "anon")


def test_remote_config_refuses_secret_keys_and_non_anon_roles() -> None:
    """Regression: only a JWT with role service_role was refused; a new-style `sb_secret_` key and a
    JWT with role supabase_admin (a superuser on Supabase) were accepted as the app's anon key."""
    import jwt

    admin = jwt.encode({"role": "supabase_admin", "exp": 1983812996}, "x" * 32, algorithm="HS256")
    for key in ("sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", admin):
        with pytest.raises(ValueError, match="service key"):
            RemoteConfig("http://127.0.0.1:1", key)
    anon = jwt.encode({"role": "anon", "exp": 1983812996}, "x" * 32, algorithm="HS256")
    assert RemoteConfig("http://127.0.0.1:1", anon).anon_key == anon
    assert RemoteConfig("http://127.0.0.1:1", "sb_publishable_abc").anon_key == "sb_publishable_abc"


def test_canonical_ts_pads_the_fractions_postgresql_shortens() -> None:
    for sent in ("2026-11-24T01:02:03.21478+00:00", "2026-11-24T01:02:03.5+00:00", "2026-11-24T01:02:03+00:00"):
        slow = datetime.fromisoformat(sent).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        assert canonical_ts(sent) == slow
    assert canonical_ts("2026-11-24T01:02:03.5+01:00") == "2026-11-24T00:02:03.500000+00:00"


@pytest.mark.parametrize(
    ("now", "heard_at", "ponged", "verdict", "why"),
    [
        (2.0, 0.0, True, "answers", "the pong came"),
        (2.0, 0.0, False, "waiting", "no pong yet, within the timeout"),
        (5.0, 0.0, False, "silent", "nothing at all within the timeout: the server does not answer"),
        # fix17: a slow server's pong comes after the frames queued before it; a socket still delivering is alive
        (5.0, 1.5, False, "answers", "a data frame or a reply after the ping, the pong still late"),
        (9.0, 4.0, False, "answers", "a frame after the ping is proof of life past the timeout too"),
        (5.0, 0.5, False, "silent", "the last frame came before the ping: it proves nothing about now"),
    ],
)
def test_probe_verdict(now: float, heard_at: float, ponged: bool, verdict: str, why: str) -> None:
    assert probe_verdict(now, 1.0, heard_at, ponged, timeout=4.0) == verdict, why


TOPIC = "ticket:3f1e0c2a-0000-4000-8000-000000000001"
NO_READ = f"You do not have permissions to read from this Channel topic: {TOPIC}"


@pytest.mark.parametrize(
    ("error", "refusal", "why"),
    [
        # rt17: a refused ticket channel was joined again by realtime-py every 10 s, for good
        (
            json.dumps(
                {"reason": f"Unauthorized: You do not have permissions to read from this Channel topic: {TOPIC}"}
            ),
            "no-access",
            "the join refused by RLS on realtime.messages (Supabase and localbase word it so)",
        ),
        (
            json.dumps(
                {
                    "extension": "system",
                    "status": "error",
                    "message": NO_READ,
                    "channel": TOPIC,
                }
            ),
            "no-access",
            "a joined channel shut when a new access token no longer reads it (no error code before it)",
        ),
        (
            json.dumps({"message": f"You no longer have permission to read from this Channel topic: {TOPIC}"}),
            "other",
            "one of its extensions taken away at a token's check: a new join may be let in with the others",
        ),
        (
            json.dumps(NO_READ),
            "no-access",
            "an older Realtime's join refusal: the reason alone, as a JSON string",
        ),
        (json.dumps({"reason": "Token has expired 1764560000"}), "other", "an expired token: a new one gets past"),
        (json.dumps({"reason": "InvalidJWTToken: Token has expired 12 seconds ago"}), "other", "Supabase's wording"),
        (json.dumps({"reason": "ClientJoinRateLimitReached: Too many joins per second"}), "other", "a quota"),
        (
            json.dumps({"reason": "Realtime was unable to connect to the project database"}),
            "other",
            "the policies could not be asked: no verdict on access",
        ),
        (
            json.dumps(
                {"reason": f"something else: You do not have permissions to read from this Channel topic: {TOPIC}"}
            ),
            "other",
            "the sentence is matched at the start of the reason, not anywhere in it",
        ),
        (json.dumps({"reason": 403}), "other", "a reason that is no text"),
        ("mismatch between server and client bindings for postgres changes", "other", "realtime-py's own error"),
        ("", "other", "no error at all"),
        (None, "other", "no error at all"),
    ],
)
def test_channel_refusal(error: str | None, refusal: str, why: str) -> None:
    assert channel_refusal(error) == refusal, why

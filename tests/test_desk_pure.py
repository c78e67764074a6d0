"""The agent workspace's pure UI decisions (issue 14): canned-reply variables, fill-in fields and fuzzy
ranking; the SLA badge's state; snooze presets; the inbox state's filter and saved views."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from supportchat_app.canned import CannedIndex, Field, context_for, fields, render
from supportchat_app.components.sla_badge import label_of, state_of
from supportchat_app.components.snooze import presets
from supportchat_app.components.tags import text_color
from supportchat_app.state import InboxState
from sync.workspace_rows import CannedReply, InboxFilter, SavedView, TicketSla

CONTEXT = context_for("Carl Customer", "Ann Agent", "0123456789abcdef", "Printer on fire")


@pytest.mark.parametrize(
    ("body", "answers", "expected"),
    [
        ("Hi {{customer.name}}", {}, "Hi Carl Customer"),
        ("Hi {{ customer.first_name | there }}!", {}, "Hi Carl!"),
        ("Hi {{customer.first_name|there}}", {}, "Hi Carl"),
        ("— {{agent.first_name}}, re #{{ticket.id}}: {{ticket.subject}}", {}, "— Ann, re #01234567: Printer on fire"),
        ("Order {{order number}} ships {{date|soon}}", {"order number": "A-1", "date": ""}, "Order A-1 ships soon"),
        ("Unknown {{x}} stays empty", {}, "Unknown  stays empty"),
        ("{{Customer.Name}} (names are case-insensitive)", {}, "Carl Customer (names are case-insensitive)"),
    ],
)
def test_render_fills_known_variables_fields_and_fallbacks(body: str, answers: dict[str, str], expected: str) -> None:
    assert render(body, CONTEXT, answers) == expected


def test_empty_customer_name_takes_the_fallback() -> None:
    assert render("Hi {{customer.name|there}}", context_for("", "Ann", "x", "s")) == "Hi there"


def test_values_from_the_ticket_or_the_agent_are_inserted_as_text_never_expanded_again() -> None:
    """A customer controls their name and the subject: a ``{{...}}`` in them (or in an answer) is text, never a
    variable filled a second time, a field asked of the agent, or a loop (review sec17b: checked and sound, pinned)."""
    hostile = context_for("{{agent.name}} {{order number|x}}", "Ann Agent", "0123456789abcdef", "{{customer.name}}")
    body = "Hi {{customer.name}}, re {{ticket.subject}}: {{order number}}"
    assert fields(body) == [Field("order number", "")]  # only the reply's own, not the customer's
    assert render(body, hostile, {"order number": "{{agent.name}}"}) == (
        "Hi {{agent.name}} {{order number|x}}, re {{customer.name}}: {{agent.name}}"
    )
    many = "{{ticket.subject}}" * 1000  # a shared reply of variables: the text grows once, by the values
    assert len(render(many, CONTEXT)) == len("Printer on fire") * 1000


def test_fields_are_the_unknown_names_once_each_with_their_defaults() -> None:
    assert fields("{{customer.name}} {{order number|123}} {{x}} {{order number}} {{ticket.id}}") == [
        Field("order number", "123"),
        Field("x", ""),
    ]


def _reply(title: str, body: str = "text", shortcut: str | None = None) -> CannedReply:
    return CannedReply(str(uuid.uuid4()), None, title, body, shortcut, "")


def test_ranking_is_fuzzy_over_titles_and_bodies_and_shortcuts_win() -> None:
    replies = [
        _reply("Refund policy", "We refund within 30 days"),
        _reply("Password reset", "Use the link"),
        _reply("Shipping delay", "Sorry, your parcel is late"),
        _reply("Greeting", "Hello!", "hi"),
    ]
    index = CannedIndex(replies)
    assert index.search("refnd")[0].title == "Refund policy"  # a typo
    assert index.search("parcel")[0].title == "Shipping delay"  # a word of the body
    assert index.search("passw")[0].title == "Password reset"  # still typing
    assert index.search("hi")[0].title == "Greeting"  # the shortcut
    assert index.search("zzzzqqq") == []
    assert [r.title for r in index.search("")] == [r.title for r in replies]


def _sla(due: datetime, start: datetime, first_response_at: str | None = None) -> TicketSla:
    return TicketSla("t", due.isoformat(), first_response_at, due.isoformat(), start.isoformat(), start.isoformat())


def test_sla_state_ok_near_breached() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    start = now - timedelta(minutes=30)
    assert state_of(_sla(now + timedelta(minutes=90), start), now) == ("ok", 5400.0)
    assert state_of(_sla(now + timedelta(minutes=9), start), now) == ("near", 540.0)  # < 25 % of 39 min left
    state, left = state_of(_sla(now - timedelta(minutes=5), start), now)  # type: ignore[misc]
    assert state == "breached" and label_of(state, left) == "overdue 5m"
    assert label_of("ok", 3 * 3600 + 120) == "3h 2m" and label_of("ok", 2 * 86400 + 3600) == "2d 1h"
    assert state_of(TicketSla("t", None, None, None, None), now) is None


def test_snooze_presets_are_in_the_future_at_sensible_times() -> None:
    now = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)  # a Friday
    chosen = dict(presets(now))
    assert all(when > now for when in chosen.values())
    assert chosen["Tomorrow 9:00"].hour == 9 and chosen["Next Monday 9:00"].weekday() == 0


def test_tag_text_colour_reads_on_its_background() -> None:
    assert text_color("#ffff00") == "#111827" and text_color("#1e3a8a") == "#ffffff"
    assert text_color("garbage") == "#ffffff"


def test_inbox_state_filters_and_saved_views_round_trip() -> None:
    changes: list[int] = []
    state = InboxState(on_change=lambda: changes.append(1))
    state.set_tags({"t1"})
    assert state.to_filter() == InboxFilter(view="mine", statuses=("open", "pending"), tags=("t1",))
    state.set_special("breaching")
    f = state.to_filter()
    assert f.breaching_within == 60 and f.sort == "sla_due_asc" and f.tags == ()
    saved = SavedView("v1", "VIP", {"view": "all", "statuses": ["open"], "tags": ["t2"]}, "priority_desc", 0)
    state.apply_view(saved)
    assert state.saved_view == "v1" and state.to_filter() == InboxFilter(
        view="all", statuses=("open",), tags=("t2",), sort="priority_desc"
    )
    before = len(changes)
    state.set_view("all")  # a widget echoing the state back changes nothing
    assert len(changes) == before and state.saved_view == "v1"
    state.set_statuses({"open", "pending"})
    assert state.saved_view is None

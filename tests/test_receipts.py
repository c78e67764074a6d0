"""The read-receipt rule (supportchat_app/components/receipts.py), one case per reason: who "the other side"
is for a customer's message, a reply and an internal note; what staff and customers see; the project's
switch that hides staff markers from customers; and that a thread's receipts cost one cache read."""

from __future__ import annotations

from typing import Any

import pytest

from supportchat_app.components.attachment_view import file_waiting, upload_count
from supportchat_app.components.receipts import PENDING_TEXT, Receipt, ThreadReceipts
from sync.models import LocalState, Message

CUSTOMER, AGENT, AGENT2 = "c-1", "a-1", "a-2"
AT = "2026-11-29T10:00:00.000000+00:00"
BEFORE, AFTER = "2026-11-29T09:59:59.000000+00:00", "2026-11-29T10:00:01.000000+00:00"


def msg(sender: str, *, internal: bool = False, state: LocalState = "sent", deleted: bool = False) -> Message:
    return Message(
        id="m-1",
        ticket_id="t-1",
        sender_id=sender,
        content="" if deleted else "hi",
        is_internal=internal,
        created_at=AT,
        local_state=state,
        deleted_at=AT if deleted else None,
    )


def receipts(me: str, markers: dict[str, str], *, customers_see: bool = True) -> ThreadReceipts:
    r = ThreadReceipts("t-1", me, me != CUSTOMER, CUSTOMER, customers_see)
    r.load(markers)
    return r


@pytest.mark.parametrize(
    ("me", "message", "markers", "expected", "why"),
    [
        (AGENT, msg(AGENT, state="pending"), {CUSTOMER: AFTER}, Receipt("sending"), "in the outbox, connected"),
        (AGENT, msg(AGENT, state="failed"), {}, Receipt("failed"), "refused: the bubble shows retry/discard"),
        (AGENT, msg(AGENT), {}, Receipt("sent"), "the server has it, nobody read it"),
        (AGENT, msg(AGENT), {CUSTOMER: BEFORE}, Receipt("sent"), "the customer last read before it was sent"),
        (AGENT, msg(AGENT), {CUSTOMER: AT}, Receipt("read", (CUSTOMER,), AT), "a marker at its instant covers it"),
        (AGENT, msg(AGENT), {AGENT2: AFTER}, Receipt("sent"), "a colleague reading a reply is not the customer"),
        (
            AGENT,
            msg(AGENT, internal=True),
            {AGENT2: AFTER, CUSTOMER: AFTER},
            Receipt("read", (AGENT2,), AFTER),
            "a note's other side is the other staff, never the customer",
        ),
        (
            CUSTOMER,
            msg(CUSTOMER),
            {AGENT: AFTER, AGENT2: BEFORE},
            Receipt("read", (AGENT,), AFTER),
            "support read the customer's message",
        ),
        (CUSTOMER, msg(CUSTOMER), {CUSTOMER: AFTER}, Receipt("sent"), "the customer's own marker is not a receipt"),
        (
            AGENT,
            msg(CUSTOMER),
            {AGENT2: AFTER, AGENT: AFTER},
            Receipt("read", (AGENT2,), AFTER, own=False),
            "staff see which colleague read a customer's message (themselves left out)",
        ),
        (AGENT, msg(CUSTOMER), {CUSTOMER: AFTER}, Receipt("none", own=False), "the sender's own marker says nothing"),
        (
            AGENT2,
            msg(AGENT),
            {CUSTOMER: AFTER},
            Receipt("read", (CUSTOMER,), AFTER, own=False),
            "staff see whether the customer read a colleague's reply",
        ),
        (
            CUSTOMER,
            msg(AGENT),
            {AGENT: AFTER, CUSTOMER: AFTER},
            Receipt("none", own=False),
            "customers get no receipts on others' messages",
        ),
        (AGENT, msg(AGENT, deleted=True), {CUSTOMER: AFTER}, Receipt("none"), "a deleted message has no receipt"),
    ],
)
def test_receipt(me: str, message: Message, markers: dict[str, str], expected: Receipt, why: str) -> None:
    assert receipts(me, markers).of(message) == expected, why


def test_an_own_message_in_the_outbox_is_queued_offline_and_sending_online() -> None:
    """ux14's walkthrough: offline, an own message said "Sending…" although nothing could be sent."""
    r = receipts(AGENT, {})
    for offline in ("offline", "connecting"):
        r.connection = offline
        assert r.of(msg(AGENT, state="pending")) == Receipt("queued")
    assert r.of(msg(AGENT, state="failed")) == Receipt("failed"), "a refused one says so, offline too"
    r.connection = "online"
    assert r.of(msg(AGENT, state="pending")) == Receipt("sending")


def test_an_own_message_in_the_outbox_after_the_session_ended_sends_after_signing_in() -> None:
    """review15b: in the engine's needs-sign-in state the queued reply said "sends when back online", though only
    signing in again sends it."""
    r = receipts(AGENT, {})
    r.connection = "needs-sign-in"
    receipt = r.of(msg(AGENT, state="pending"))
    assert PENDING_TEXT[receipt.state] == "Queued — sends after you sign in again"
    assert r.of(msg(AGENT, state="failed")) == Receipt("failed")
    # its files' progress says the same (components/attachment_view.py)
    assert upload_count(1, 3, "needs-sign-in") == "Signed out · 1 of 3 uploaded"
    assert file_waiting("needs-sign-in") == "waiting for you to sign in again"
    assert (upload_count(1, 3, "offline"), file_waiting("offline")) == (
        "Offline · 1 of 3 uploaded",
        "waiting for the connection",
    )
    assert (upload_count(1, 3, "online"), file_waiting("online")) == ("Uploading 2 of 3", "queued")


def test_the_project_switch_hides_staff_markers_from_customers_only() -> None:
    markers = {AGENT: AFTER, CUSTOMER: AFTER}
    assert receipts(CUSTOMER, markers, customers_see=False).of(msg(CUSTOMER)) == Receipt("sent")
    # staff keep every receipt whatever the switch says
    assert receipts(AGENT, markers, customers_see=False).of(msg(AGENT)).state == "read"
    assert receipts(AGENT2, markers, customers_see=False).of(msg(CUSTOMER)).readers == (AGENT,)


def test_readers_are_ordered_by_their_marker_and_read_at_is_the_newest() -> None:
    late = "2026-11-29T10:05:00.000000+00:00"
    r = receipts(CUSTOMER, {AGENT: late, AGENT2: AFTER}).of(msg(CUSTOMER))
    assert r.readers == (AGENT2, AGENT) and r.read_at == late


def test_load_reports_only_real_changes() -> None:
    r = receipts(AGENT, {CUSTOMER: BEFORE})
    assert not r.load({CUSTOMER: BEFORE})
    assert r.load({CUSTOMER: AFTER})
    assert r.of(msg(AGENT)).state == "read"


class CountingCache:
    """The two reads a thread's receipts make, counted."""

    def __init__(self, markers: dict[str, str], see: bool = True) -> None:
        self.markers, self.see, self.calls = markers, see, 0

    def read_markers(self, ticket_id: str) -> dict[str, str]:
        self.calls += 1
        return dict(self.markers)

    def customers_see_read_receipts(self) -> bool:
        return self.see

    def ticket(self, ticket_id: str) -> Any:
        return type("T", (), {"customer_id": CUSTOMER})()


def test_a_thread_reads_its_markers_once_whatever_its_length() -> None:
    cache = CountingCache({CUSTOMER: AFTER})
    r = ThreadReceipts.of_ticket(cache, "t-1", me=AGENT, staff=True)  # type: ignore[arg-type]
    states = {r.of(msg(AGENT)).state for _ in range(500)}
    assert states == {"read"} and cache.calls == 1
    assert not r.reload(cache)  # type: ignore[arg-type]
    cache.see = False
    assert r.reload(cache), "a change of the project's switch is a change"  # type: ignore[arg-type]

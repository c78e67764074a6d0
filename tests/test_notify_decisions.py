"""The notification worker's pure parts: reply classes, what a mail carries, backoff, the wire body, the URL."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest

from notify.decisions import Item, Outcome, address_refusal, backoff_seconds, classify_reply, select_items
from notify.mail import Context, Envelope, compose
from notify.smtp import SmtpTarget, wire_body

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def item(n: int, minutes: int, *, deleted: bool = False, reason: str = "reply") -> Item:
    return Item(n, f"m{n}", reason, f"text {n}", T0 + timedelta(minutes=minutes), deleted, "Alice")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, Outcome.SENT),  # accepted
        (251, Outcome.SENT),  # forwarded
        (421, Outcome.RETRY),  # service closing: come back later
        (451, Outcome.RETRY),  # local error, greylisting
        (452, Outcome.RETRY),  # mailbox full for now
        (550, Outcome.FAILED),  # no such user: retrying cannot help
        (554, Outcome.FAILED),  # rejected by policy
    ],
)
def test_smtp_reply_classes(code: int, outcome: Outcome) -> None:
    assert classify_reply(code) is outcome


def test_never_skips_everything() -> None:
    assert select_items("never", None, [item(1, 0)]) == ([], "recipient's preference is never")


def test_unread_drops_what_the_read_marker_passed() -> None:
    items = [item(1, 0), item(2, 1), item(3, 2)]
    chosen, skip = select_items("unread", T0 + timedelta(minutes=1), items)
    assert ([i.notification_id for i in chosen], skip) == ([3], None)
    assert select_items("unread", T0 + timedelta(minutes=5), items) == ([], "read in the app before the delay ran out")


def test_always_mails_read_messages_but_never_deleted_ones() -> None:
    chosen, _ = select_items("always", T0 + timedelta(hours=1), [item(2, 1), item(1, 0, deleted=True), item(3, 2)])
    assert [i.notification_id for i in chosen] == [2, 3]
    assert select_items("always", None, [item(1, 0, deleted=True)]) == ([], "message deleted")


def test_backoff_doubles_with_half_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, full in ((1, 30), (2, 60), (3, 120), (20, 3600)):
        waits = [backoff_seconds(attempt, 30, rng=rng) for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full / 10  # jittered, so workers do not retry in lockstep


def test_wire_body_doubles_leading_dots_and_uses_crlf() -> None:
    assert wire_body(b"a\n.\n..b\r\nc") == b"a\r\n..\r\n...b\r\nc\r\n"  # a lone "." would end DATA early
    body = wire_body(
        compose(
            Envelope("id-1", "c@example.test", "Cus", "t-1", "dots", "http://x/?t=t-1"),
            [Item(1, "m", "reply", ".\n..hidden\nend.", T0, False, "Alice")],
            [],
            "help@example.test",
        )
    )
    assert b"\r\n.\r\n" not in body and body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    unstuffed = body.replace(b"\r\n..", b"\r\n.")
    assert message_from_bytes(unstuffed, policy=default).get_body(("plain",)).get_content().count("..hidden") == 1  # type: ignore[union-attr]


def test_no_header_injection_through_subjects_or_names() -> None:
    mail = compose(
        Envelope(
            "id-9",
            "c@example.test",
            "Eve\r\nBcc: all@example.test",
            "t-1",
            "Hi\r\nBcc: victims@example.test\nX-Evil: 1",
            "http://x",
        ),
        [Item(1, "m", "reply", "body", T0, False, "Mallory\nReply-To: evil@example.test")],
        [],
        "help@example.test",
    )
    parsed = message_from_bytes(mail, policy=default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None and parsed["Reply-To"] is None
    assert parsed["Subject"] == "Re: Hi Bcc: victims@example.test X-Evil: 1"
    assert parsed["To"].addresses[0].addr_spec == "c@example.test"


def test_no_control_characters_in_headers() -> None:
    """Regression (review sec17b): only line breaks were taken out of header values, so a name or subject with ESC,
    BEL or another control went into From, To and Subject as it was: not allowed in a header (RFC 5322), which
    strict mail servers refuse and terminals showing the header obey."""
    hostile = "Mallory\x1b[2J\x07\tTab\x7f"
    mail = compose(
        Envelope("id-9", "c@example.test", hostile, "t-1", "Hi " + hostile, "http://x"),
        [Item(1, "m", "reply", "body", T0, False, hostile)],
        [],
        "help@example.test",
    )
    head = mail.split(b"\r\n\r\n", 1)[0]
    assert not [line for line in head.split(b"\r\n") if any(c < 0x20 or c == 0x7F for c in line)]
    parsed = message_from_bytes(mail, policy=default)
    assert parsed["Subject"] == "Re: Hi Mallory[2J Tab"
    assert parsed["To"].addresses[0].display_name == "Mallory[2J Tab"


def test_encoded_words_in_names_and_subjects_show_as_typed() -> None:
    """A display name typed as an RFC 2047 encoded word was sent as it was, and mail readers decoded it: the From
    line said "Bank Security <security@bank.example> via SupportChat" (review16). It is encoded now, so a reader
    decodes it back to the characters the user typed."""
    spoof = "=?utf-8?b?" + base64.b64encode(b"Bank Security <security@bank.example> ").decode() + "?="
    mail = compose(
        Envelope("id-9", "c@example.test", spoof, "t-1", f"Invoice {spoof}", "http://x"),
        [Item(1, "m", "reply", "body", T0, False, spoof)],
        [],
        "help@example.test",
    )
    parsed = message_from_bytes(mail, policy=default)
    assert parsed["From"].addresses[0].display_name == f"{spoof} via SupportChat"
    assert parsed["From"].addresses[0].addr_spec == "help@example.test"
    assert parsed["To"].addresses[0].display_name == spoof and parsed["To"].addresses[0].addr_spec == "c@example.test"
    assert parsed["Subject"] == f"Re: Invoice {spoof}"
    assert "bank.example" not in str(parsed["From"]) + str(parsed["To"]) + str(parsed["Subject"])


def test_compose_names_the_sender_and_quotes_context_and_items() -> None:
    ctx = [Context("Cus Tomer", "my printer\nis on fire", T0 - timedelta(minutes=5))]
    items = [item(1, 0), Item(2, "m2", "reply", "<script>x</script>", T0 + timedelta(minutes=1), False, "Bob")]
    msg = compose(
        Envelope("id-2", "c@example.test", "Cus Tömer", "t-9", "Drucker brennt", "http://app/?t=t-9"),
        items,
        ctx,
        "help@example.test",
    )
    parsed = message_from_bytes(msg, policy=default)
    assert parsed["From"].addresses[0].display_name == "Bob via SupportChat"
    assert parsed["To"].addresses[0].display_name == "Cus Tömer"
    assert parsed["Message-ID"] == "<id-2@supportchat>" and parsed["References"] == "<ticket-t-9@supportchat>"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "  > my printer" in text and "Alice, Bob sent 2 messages" in text and "http://app/?t=t-9" in text
    assert "&lt;script&gt;" in html and "<script>" not in html and 'href="http://app/?t=t-9"' in html


def test_mentions_say_so() -> None:
    msg = message_from_bytes(
        compose(
            Envelope("id-3", "a@example.test", "Agent", "t-1", "VIP", "http://x"),
            [item(1, 0, reason="mention")],
            [],
            "help@example.test",
        ),
        policy=default,
    )
    assert msg["Subject"] == "Mention: VIP" and "Alice mentioned you" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.test", ("mail.example.test", 25, False, False, None, None)),
        ("smtps://u%40x:p%3Aw@mail.example.test", ("mail.example.test", 465, True, False, "u@x", "p:w")),
        ("smtp://mail.example.test:2525?starttls=require", ("mail.example.test", 2525, False, True, None, None)),
    ],
)
def test_smtp_url(url: str, expected: tuple[object, ...]) -> None:
    t = SmtpTarget.parse(url)
    assert (t.host, t.port, t.tls, t.starttls_required, t.user, t.password) == expected
    assert "p:w" not in t.redacted()


@pytest.mark.parametrize("url", ["http://mail.example.test", "smtp://", "smtp://h?starttls=maybe"])
def test_bad_smtp_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match=r"smtp|host|starttls"):
        SmtpTarget.parse(url)


def test_only_ascii_addresses_are_mailed() -> None:
    assert address_refusal("ann@example.test") is None
    assert address_refusal("anné@example.test") == (
        "the recipient's address is not ASCII (this worker does not send SMTPUTF8 mail)"
    )
    assert address_refusal("ann@exämple.test") is not None

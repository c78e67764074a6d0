"""The inbox shell's HTML (components/inbox_shell.py) as an attacker would fill it: every user text escaped, a tag
colour that is not a colour dropped (no CSS injected into a style attribute), the inline script's values JSON;
and the NiceGUI speedups (supportchat_app/speedups.py) answer exactly as the functions they wrap.
"""

from __future__ import annotations

import functools
import html.parser
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import binding, helpers

from supportchat_app import speedups
from supportchat_app.components import inbox_shell, shell_base
from supportchat_app.components.inbox_list import row_data
from sync.models import Ticket
from sync.workspace_rows import Tag, TicketSla

EVIL = "<img src=x onerror=alert(1)>\"'><script>alert(2)</script>&amp;"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class _Tree(html.parser.HTMLParser):
    """The tags and the text a browser's parser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(markup: str) -> _Tree:
    tree = _Tree()
    tree.feed(markup)
    return tree


def _ticket(**over: Any) -> Ticket:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "customer_id": str(uuid.uuid4()),
        "assignee_id": str(uuid.uuid4()),
        "subject": EVIL,
        "status": "open",
        "priority": "urgent",
        "created_at": str(NOW - timedelta(hours=1)),
        "updated_at": str(NOW),
        "customer_name": EVIL,
        "assignee_name": EVIL,
        "last_message_preview": EVIL,
        "last_message_at": str(NOW),
        "unread_count": 2,
    }
    fields.update(over)
    return Ticket(**fields)


def _row(ticket: Ticket, **kw: Any) -> dict[str, Any]:
    sla = TicketSla(ticket.id, str(NOW + timedelta(hours=2)), None, None, None, str(NOW - timedelta(hours=1)))
    return row_data(ticket, staff=True, now=NOW, sla=sla, **kw)


def test_hostile_texts_are_text_and_a_fake_colour_is_dropped() -> None:
    ticket = _ticket()
    tags = (
        Tag(str(uuid.uuid4()), EVIL, "#ff0000"),
        Tag(str(uuid.uuid4()), "vip", "red;background:url(https://evil.example/x)"),
    )
    markup = inbox_shell.shell_html([_row(ticket, tags=tags, viewers=(EVIL,))], entries=4)
    tree = _parse(markup)
    names = [t for t, _ in tree.tags]
    assert "img" not in names and names.count("script") == 1  # only the shell's own inline script
    assert not any(k.startswith("on") for _, attrs in tree.tags for k in attrs)
    assert "evil.example" not in markup  # the fake colour never reached a style attribute
    styles = [attrs.get("style") or "" for _, attrs in tree.tags]
    assert any("background: #ff0000" in s for s in styles)
    text = "".join(tree.text)
    assert EVIL in text  # the subject, preview, tag name, assignee: shown as the very characters
    assert text.count(EVIL) >= 4
    row = next(attrs for tag, attrs in tree.tags if attrs.get("data-testid") == "shell-row")
    assert row["data-ticket-id"] == str(ticket.id)
    badge = next(attrs for tag, attrs in tree.tags if "sc-sla" in (attrs.get("class") or "").split())
    assert badge["data-state"] == "ok"
    timed = next(attrs for tag, attrs in tree.tags if attrs.get("elementtiming"))
    assert timed["elementtiming"] == f"sla:{ticket.id}"


def test_the_rows_use_the_list_components_classes() -> None:
    markup = inbox_shell.shell_html([_row(_ticket(subject="Printer on fire"))], entries=4, selected="")
    classes = {c for _, attrs in _parse(markup).tags for c in (attrs.get("class") or "").split()}
    # the same classes inbox_list.js draws with, so the list's CSS makes the shell look like the list
    assert {
        "sc-row",
        "sc-row-avatar",
        "sc-row-subject",
        "sc-unread",
        "sc-row-preview",
        "sc-unread-count",
        "sc-sla",
    } <= (classes)


def test_the_inline_script_places_the_shell_and_follows_the_dark_setting() -> None:
    light = inbox_shell.shell_html([], entries=5, dark=False)
    dark = inbox_shell.shell_html([], entries=5, dark=True)
    auto = inbox_shell.shell_html([], entries=None, dark=None)
    assert "const d=false;" in light and "const d=true;" in dark and "const d=null;" in auto
    assert f"{inbox_shell.STAFF_TOP_PX + 5 * inbox_shell.ENTRY_PX}" in light
    assert f":{inbox_shell.CUSTOMER_TOP_PX};" in auto
    # the stylesheet the parser waits for comes after the rows (what precedes it may paint meanwhile)
    assert light.index(inbox_shell.SHELL_ID) < light.index(f'<link rel="stylesheet" href="{inbox_shell.PAINT_CSS}">')


class _Thing:
    def method(self, a: int) -> None: ...
    def no_args(self) -> None: ...
    def defaulted(self, a: int = 1, *rest: int, **kw: int) -> None: ...


def test_speedups_answer_as_nicegui_does() -> None:
    assert speedups.install()
    thing = _Thing()
    candidates: list[Any] = [
        thing.method,
        thing.no_args,
        thing.defaulted,
        _Thing().method,  # another instance: the same answer from the cache
        lambda: None,
        lambda e: None,
        functools.partial(lambda a, b: None, 1),
        print,
    ]
    for func in candidates:
        assert helpers.expects_arguments(func) == speedups._original_expects(func), func

    # propagation: an object nothing is bound to is skipped; a bound one still propagates
    class Model:
        value = binding.BindableProperty()

        def __init__(self) -> None:
            self.value = 0

    source, target = Model(), Model()
    binding.bind_from(target, "value", source, "value")
    source.value = 5
    assert target.value == 5
    loose = Model()
    loose.value = 7
    assert loose.value == 7 and target.value == 5


def test_the_shells_framework_rules_come_from_nicegui_and_stay_scoped(tmp_path: Any, monkeypatch: Any) -> None:
    start = '<style>@import url("/p/_nicegui/9/static/fonts.css") layer(base);</style>'
    css = shell_base.style(start)
    assert css is not None and "url(/p/_nicegui/9/static/fonts/" in css  # the font files addressed from the page
    rules = re.sub(r"@font-face\s*\{[^}]*\}", "", css[len("<style>") : -len("</style>")])
    selectors = [sel.strip() for sel in re.findall(r"([^{}]+)\{", rules)]
    outside = [s for s in selectors if "#sc-inbox-shell" not in s and not s.startswith(".nicegui-error-popup")]
    assert selectors and not outside, outside  # nothing of the page outside the shell is restyled
    assert shell_base.style("<style></style>") is None  # not NiceGUI's document: no streaming
    shell_base._css.cache_clear()
    monkeypatch.setattr(shell_base, "STATIC", tmp_path / "missing")
    assert shell_base.style(start) is None  # files unreadable: the page in one piece, not a broken response
    shell_base._css.cache_clear()


def test_the_framework_rules_kept_per_base_are_bounded() -> None:
    """The static base comes from the page NiceGUI rendered for the request, and so from its X-Forwarded-Prefix
    header (review): a client sending a new prefix on every request must not grow the process's memory."""
    shell_base._css.cache_clear()
    for i in range(40):
        assert shell_base.style(f'<style>@import url("/p{i}/_nicegui/9/static/fonts.css") layer(base);</style>')
    assert shell_base._css.cache_info().currsize <= 8
    shell_base._css.cache_clear()

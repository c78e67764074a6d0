"""Text from outside (a tag's name, a canned reply's field, the server's error words) goes into an element's props by
assignment, never through NiceGUI's props *string*: there a quote ends the value and what follows is parsed as more
props, including ``:``-prefixed ones the browser evaluates as JavaScript (review finding 7)."""

from __future__ import annotations

from nicegui import Client
from nicegui.page import page

from supportchat_app.components.tags import tag_chip
from sync.workspace_rows import Tag

HOSTILE = 'vip" :innerHTML="\'<img src=x onerror=alert(1)>\'" data-x="'


def test_a_tag_named_with_quotes_is_one_prop_and_adds_none() -> None:
    with Client(page("/props-injection"), request=None):
        chip = tag_chip(Tag("t1", HOSTILE, "#f59e0b"))
    assert chip.props["data-tag"] == HOSTILE  # before: "vip", and ':innerHTML' among the props
    assert not any(key.startswith(":") for key in chip.props)
    assert set(chip.props) == {"data-testid", "data-tag"}

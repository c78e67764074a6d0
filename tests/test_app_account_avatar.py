"""The pictures the header and the customer context panel show (issue 13, item 5 follow-up), through the real
engine, Storage and NiceGUI pages: the account button shows the signed-in user's picture (initials without
one) and follows a change made on this device; the staff's context panel shows the customer's picture, and
picks it up when it arrives while the ticket is open."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nicegui import ui

from supportchat_app import fmt
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    sign_in,
)


def picture(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    return path


def shows_picture(user: object, marker: str) -> bool:
    found = user.find(marker=marker).elements  # type: ignore[attr-defined]
    return bool(found) and "avatar-image" in markers_in(next(iter(found)))


async def test_the_header_and_the_context_panel_show_pictures(
    app_data: Path, stack: StackProcess, tmp_path: Path
) -> None:
    tag = time.time_ns() % 10**8
    customer = create_user(stack.db_url, "customer", f"Panel customer {tag}")
    agent = create_user(stack.db_url, "agent", f"Header agent {tag}")
    ticket = seed_ticket(stack.db_url, customer, agent, f"Header avatars {tag}", [(customer, "hello", False)])
    async with running_app() as page:
        await sign_in(page, agent)
        other = another_user()
        await sign_in(other, customer)
        await page.open(f"/?t={ticket}")
        await page.should_see(marker="context-panel", retries=WAIT)
        assert not shows_picture(page, "account"), "no picture yet: initials"
        assert not shows_picture(page, "context-panel")

        # the agent sets a picture on this device: the header follows without a reload
        await engine_of(page).avatars.set(picture(tmp_path, "agent.png"))
        await eventually(lambda: shows_picture(page, "account"), "the agent's picture in the header")

        # the customer sets one on theirs: it reaches the open ticket's context panel
        await engine_of(other).avatars.set(picture(tmp_path, "customer.png"))
        await eventually(lambda: shows_picture(page, "context-panel"), "the customer's picture in the panel")

        # a fresh page draws both at once, from the device's copies
        await page.open(f"/?t={ticket}")
        await page.should_see(marker="context-panel", retries=WAIT)
        assert shows_picture(page, "account") and shows_picture(page, "context-panel")
        await page.open("/profile")
        await page.should_see(marker="own-avatar", retries=WAIT)
        assert shows_picture(page, "account"), "every page's header shows it"

        await engine_of(page).avatars.set(None)
        await eventually(lambda: not shows_picture(page, "account"), "initials again in the header")


async def test_the_account_button_has_the_colour_of_the_users_avatar_elsewhere(
    app_data: Path, stack: StackProcess
) -> None:
    """The header's initials were coloured by the user's name while every other avatar of them (their bubbles, the
    inbox rows, the profile page) is coloured by their id: Alice was green in her header and indigo in the
    thread. The header takes the id too."""
    agent = create_user(stack.db_url, "agent", f"Colour agent {time.time_ns() % 10**8}")
    async with running_app() as page:
        await sign_in(page, agent)
        await page.open("/profile")
        await page.should_see(marker="account", retries=WAIT)
        header = next(iter(page.find(marker="account").elements))
        (avatar,) = [e for e in header.descendants() if isinstance(e, ui.avatar)]
        assert avatar.props["color"] == fmt.avatar_color(agent.id)
        profile = [e for e in page.find(ui.avatar).elements if e is not avatar]
        assert profile and {e.props["color"] for e in profile} == {fmt.avatar_color(agent.id)}

"""Avatars in the app (issue 13 item 5) through the real engine, Storage and NiceGUI pages: an agent sets a
picture on the profile page (a refused file says why and changes nothing); the customer's app downloads it
and shows it on the agent's bubbles and the staff inbox shows the customer's picture on the ticket row;
with the network cut, the pictures still show from the device's copy; removing the picture brings the
initials back."""

from __future__ import annotations

import io
import time
from pathlib import Path

import psycopg
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing.user import User
from PIL import Image

from tests.conftest import User as Account
from tests.conftest import create_user
from tests.faultproxy import FaultProxy
from tests.inbox import row_of, rows_of
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    sign_in,
)


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


def avatar_url(stack: StackProcess, user: Account) -> str | None:
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute("select avatar_url from public.profiles where id = %s", (user.id,)).fetchone()
    return row[0] if row else None


def message_text(user: User) -> str:
    return str(user.find(marker="avatar-message").elements.pop().text)


async def upload(user: User, name: str, data: bytes, mime: str) -> None:
    element = user.find(marker="avatar-upload").elements.pop()
    await element.handle_uploads([SmallFileUpload(name, mime, data)])


async def test_a_picture_set_on_the_profile_page_shows_to_the_other_side_and_offline(
    app_data: Path, stack: StackProcess, proxy: FaultProxy
) -> None:
    tag = time.time_ns() % 10**8
    customer = create_user(stack.db_url, "customer", f"Avatar customer {tag}")
    agent = create_user(stack.db_url, "agent", f"Avatar agent {tag}")
    reply = f"Hello from your agent {tag}"
    ticket = seed_ticket(stack.db_url, customer, agent, f"Avatars {tag}", [(agent, reply, False)])

    async with running_app() as page:
        await sign_in(page, agent)
        other = another_user()
        await sign_in(other, customer)
        await page.open("/profile")
        await page.should_see(marker="avatar-upload", retries=WAIT)
        await page.should_not_see(marker="avatar-remove")  # no picture yet: nothing to remove

        await upload(page, "notes.txt", b"just text, not a picture", "text/plain")
        await eventually(lambda: "PNG, JPEG, WebP or GIF" in message_text(page), "the wrong type refused")
        await upload(page, "huge.png", png((1, 2, 3)) + b"\0" * (1024 * 1024), "image/png")
        await eventually(lambda: "at most 1 MB" in message_text(page), "the oversized picture refused")
        assert avatar_url(stack, agent) is None, "nothing reached the server"

        await upload(page, "me.png", png((30, 140, 90)), "image/png")
        await eventually(lambda: message_text(page) == "Picture saved.", "the picture saved")
        await page.should_see(marker="avatar-remove")
        url = avatar_url(stack, agent)
        assert url is not None and url.startswith(f"avatars/{agent.id}/avatar-") and url.endswith(".png")
        assert "avatar-image" in markers_in(page.find(marker="own-avatar").elements.pop())

        engine = engine_of(other)
        await eventually(lambda: engine.cache.avatar_url(agent.id) == url, "the agent's profile change, live")
        # the sync downloads what the profiles name, in its own time (a round may be running already, or end before
        # the download does): waited for, not asserted after one round
        engine.wake()
        await eventually(lambda: engine.avatars.file(agent.id) is not None, "the agent's picture downloaded")
        assert engine.avatars.file(agent.id).read_bytes() == png((30, 140, 90))
        await other.open(f"/?t={ticket}")
        await other.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: "avatar-image" in markers_in(bubble_with(other, reply)), "the picture on the bubble")
        proxy.set_mode("drop")  # offline: the picture comes from the device's copy
        await other.open(f"/?t={ticket}")
        await other.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: "avatar-image" in markers_in(bubble_with(other, reply)), "the picture offline")
        proxy.set_mode("pass")


async def test_the_inbox_shows_the_customers_picture_and_removing_it_brings_initials_back(
    app_data: Path, stack: StackProcess
) -> None:
    tag = time.time_ns() % 10**8
    customer = create_user(stack.db_url, "customer", f"Row customer {tag}")
    agent = create_user(stack.db_url, "agent", f"Row agent {tag}")
    ticket = seed_ticket(stack.db_url, customer, agent, f"Row avatars {tag}", [(customer, "hi", False)])
    async with running_app() as page:
        await sign_in(page, customer)
        staff = another_user()
        await sign_in(staff, agent)
        await page.open("/profile")
        await page.should_see(marker="avatar-upload", retries=WAIT)
        await upload(page, "me.png", png((200, 60, 60)), "image/png")
        await eventually(lambda: message_text(page) == "Picture saved.", "the customer's picture saved")

        engine = engine_of(staff)
        await eventually(lambda: engine.cache.avatar_url(customer.id) is not None, "the profile change, live")
        await staff.open("/")
        await eventually(lambda: ticket in rows_of(staff), "the ticket's row")
        # the row is drawn before the picture arrives (initials); the download must redraw it
        engine.wake()
        await eventually(lambda: engine.avatars.file(customer.id) is not None, "the customer's picture downloaded")
        await eventually(lambda: bool(row_of(staff, ticket)["avatar"]["url"]), "the picture on the inbox row")

        await page.open("/profile")
        await page.should_see(marker="avatar-remove", retries=WAIT)
        page.find(marker="avatar-remove").click()
        await eventually(lambda: message_text(page).startswith("Picture removed"), "the picture removed")
        assert avatar_url(stack, customer) is None
        assert "avatar-image" not in markers_in(page.find(marker="own-avatar").elements.pop())

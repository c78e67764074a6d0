"""Notification preferences in the sync engine (sync/preferences.py), on a ``FakeRemote``: chosen offline
they wait in the outbox and go when the network is back; the device's newest choice wins over the server's
row until the server has it; a refused choice is shown with the reason and replaced by the next one; bad
values are refused before anything is queued. The real-stack path (page → server → worker) is in
tests/test_app_preferences.py."""

from __future__ import annotations

import pytest

from sync.preferences import Preferences, checked
from tests.test_sync_loop import World, world  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(30)


async def test_a_choice_made_offline_goes_when_the_network_is_back(world: World) -> None:
    engine, _ = await world.engine(world.customer)
    await engine.sync_once()
    assert engine.cache.preferences() == Preferences()  # no row on the server: the worker's default
    world.server.offline = True
    engine.commands.set_notification_preferences("unread", 30)
    assert engine.cache.preferences() == Preferences("unread", 30, pending=True)
    assert engine.cache.counts() == (1, 0)
    world.server.offline = False
    await engine.sync_once()
    assert world.server.preferences == {"email": "unread", "unread_after_minutes": 30}
    assert engine.cache.preferences() == Preferences("unread", 30)
    assert engine.cache.counts() == (0, 0)


async def test_the_newest_choice_replaces_a_queued_one_and_wins_over_the_pulled_row(world: World) -> None:
    engine, _ = await world.engine(world.agent)
    world.server.preferences = {"email": "always", "unread_after_minutes": None}
    await engine.sync_once()
    assert engine.cache.preferences().email == "always", "pulled from the server"
    world.server.offline = True
    engine.commands.set_notification_preferences("unread", 5)
    engine.commands.set_notification_preferences("never")
    assert engine.cache.counts() == (1, 0), "one entry per user, not one per click"
    assert engine.cache.preferences().email == "never"
    world.server.offline = False
    await engine.sync_once()
    assert world.server.calls.count("upsert notification_preferences x1") == 1
    assert world.server.preferences["email"] == "never"
    world.server.preferences = {"email": "always", "unread_after_minutes": None}  # changed on another device
    await engine.sync_once()
    assert engine.cache.preferences().email == "always", "once sent, the server's row is the truth"


async def test_a_refused_choice_shows_why_and_the_next_one_replaces_it(world: World) -> None:
    engine, _ = await world.engine(world.agent)
    world.server.refuse = lambda table, row: "new row violates check constraint" if table.startswith("notif") else None
    engine.commands.set_notification_preferences("always")
    await engine.sync_once()
    refused = engine.cache.preferences()
    assert refused.error and "check constraint" in refused.error and not refused.pending
    assert engine.cache.counts() == (0, 1)
    world.server.refuse = lambda table, row: None
    engine.commands.set_notification_preferences("never")
    await engine.sync_once()
    assert engine.cache.preferences() == Preferences("never")
    assert engine.cache.counts() == (0, 0)


@pytest.mark.parametrize(
    ("email", "minutes", "why"),
    [
        ("sometimes", None, "not one of never/unread/always"),
        ("unread", -1, "negative delay"),
        ("unread", 10081, "more than a week"),
        ("unread", True, "a bool is not a number of minutes"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(email: str, minutes: int | None, why: str) -> None:
    with pytest.raises(ValueError, match=r"must"):
        checked(email, minutes)


async def test_a_bad_value_queues_nothing(world: World) -> None:
    engine, _ = await world.engine(world.agent)
    with pytest.raises(ValueError):
        engine.commands.set_notification_preferences("unread", 99999)
    assert engine.cache.counts() == (0, 0)


def test_a_delay_only_means_something_for_unread() -> None:
    assert checked("always", 30) == Preferences("always", None)
    assert checked("unread", 0) == Preferences("unread", 0)

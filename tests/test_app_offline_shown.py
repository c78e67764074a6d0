"""The app's status bar on a dead network (tests/faultproxy.py stalls every byte): it says "Offline" within seconds,
so an agent knows replies will queue, and "Online" again once the network answers (the flow tests' harness: the
app as `supportchat` builds it, NiceGUI's simulated user, the real sync engine and localbase)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nicegui import ui
from nicegui.testing.user import User

from supportchat_app.components.sync_status import SyncStatusBar
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # noqa: F401 (app_data is a fixture)
    app_data,
    engine_of,
    eventually,
    running_app,
    sign_in,
)

OFFLINE_WITHIN = 20.0  # seconds the test waits for "Offline" (the probe takes ≤ 9 s; main took ~70)


def status_label(user: User) -> str:
    """The status bar's words as shown (its label: "Online", "Offline", …)."""
    with user:
        bars = [e for e in ui.context.client.elements.values() if isinstance(e, SyncStatusBar)]
    return bars[0].label.text if bars else ""


async def test_the_status_bar_says_offline_within_seconds_of_a_dead_network(
    app_data: Path,
    users: Users,
    stack: StackProcess,
    proxy: FaultProxy,
) -> None:
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await eventually(lambda: status_label(agent) == "Online", "the status bar to say Online")
        engine = engine_of(agent)
        for _ in range(2):  # no round under way (its request's timeout would say offline too): the app is idle
            await eventually(
                lambda: engine.remote.live.subscribed and not engine.loop.pull_pending and not engine.status.syncing,
                "the app idle, realtime subscribed",
            )
            await asyncio.sleep(0.5)
        proxy.set_mode("stall")
        began = time.monotonic()
        await eventually(lambda: status_label(agent) == "Offline", "the status bar to say Offline", OFFLINE_WITHIN)
        print(f"Offline shown after {time.monotonic() - began:.1f} s")  # the figure, with -s
        proxy.set_mode("pass")
        proxy.cut()  # the stalled connections, as the OS ends them after an outage
        await eventually(lambda: status_label(agent) == "Online", "the status bar to say Online again", 60)

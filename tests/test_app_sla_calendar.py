"""Business hours and holidays in the app (issue 14) through NiceGUI's simulated `User` on the real stack: an
admin adds weekly hours and a holiday on the desk settings page, they reach the server through the outbox,
the page says the SLA clocks are paused now, the inbox badges show it, and a removed holiday leaves the
server; an agent sees the page without the admin's controls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sla_calendar import calendar  # noqa: F401 - fixture: leaves round-the-clock UTC behind
from tests.test_sync_support import sql

pytestmark = pytest.mark.timeout(240)


async def test_admin_sets_hours_and_a_holiday_and_the_badges_pause(
    app_data: Path,
    users: Users,
    stack: StackProcess,
    proxy: FaultProxy,
    calendar: None,
) -> None:
    ticket = seed_ticket(stack.db_url, users.customer, users.agent, "Paused SLA", [(users.customer, "hello?", False)])
    other_day = (datetime.now(UTC).isoweekday() + 2) % 7 + 1  # not today (UTC, the default zone): closed now
    async with running_app() as admin:
        await sign_in(admin, users.admin)
        await admin.open("/desk-settings")
        await admin.should_see(marker="hours-add", retries=WAIT)
        await admin.should_see("round the clock")
        admin.find(marker="hours-days").elements.pop().value = [other_day]
        admin.find(marker="hours-opens").elements.pop().value = "09:00"
        admin.find(marker="hours-closes").elements.pop().value = "17:30"
        admin.find(marker="hours-add").click()
        await admin.should_see(marker=f"hours-span-{other_day}-09:00", retries=WAIT)
        admin.find(marker="holiday-day").elements.pop().value = "2031-01-01"
        admin.find(marker="holiday-name").elements.pop().value = "New year"
        admin.find(marker="holiday-add").click()
        await admin.should_see(marker="holiday-2031-01-01", retries=WAIT)
        await eventually(
            lambda: (
                sql(stack.db_url, "select weekday, opens::text, closes::text from sla_business_hours")
                == [(other_day, "09:00:00", "17:30:00")]
            ),
            "the hours on the server",
            timeout=60,
        )
        await eventually(
            lambda: sql(stack.db_url, "select name from sla_holidays where day = '2031-01-01'") == [("New year",)],
            "the holiday on the server",
            timeout=60,
        )
        await admin.should_see("SLA clocks are paused until", retries=WAIT)
        admin.find(marker="holiday-remove-2031-01-01").click()
        await eventually(
            lambda: sql(stack.db_url, "select count(*) from sla_holidays") == [(0,)], "holiday removed", timeout=60
        )
        await admin.should_not_see(marker="holiday-2031-01-01", retries=WAIT)
        # the admin's first sync brings every earlier test's tickets (the full suite): wait for this one's SLA
        engine = engine_of(admin)
        await eventually(lambda: ticket in engine.workspace.sla_of([ticket]), "the ticket's SLA row", timeout=180)
        await admin.open(f"/?t={ticket}")
        await admin.should_see(marker="sla-paused", retries=WAIT)  # the badge: outside business hours

        agent = another_user()
        colleague = create_user(stack.db_url, "agent")  # fresh: a short first sync
        await sign_in(agent, colleague)
        await eventually(lambda: len(engine_of(agent).workspace.sla_business_hours()) == 1, "the hours", timeout=180)
        await agent.open("/desk-settings")
        await agent.should_see(marker=f"hours-span-{other_day}-09:00", retries=WAIT)
        await agent.should_not_see(marker="hours-add")
        await agent.should_not_see(marker=f"hours-remove-{other_day}-09:00")

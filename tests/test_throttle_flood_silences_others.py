"""One customer writing into four tickets silences every other ticket's desktop notification (review17b).

``supportchat_app.notifier.Throttle`` lets one notification per ticket through every 10 s and at most 4 in any 10 s
overall. A notification it refuses is dropped, never told later. So a script writing as fast as it likes into four
tickets of its own holds all four slots for as long as it writes: another customer's new ticket, arriving every
10 s for ten minutes, was never a desktop notification or a chime (0 of 60). Before the throttle each was told.
"""

from __future__ import annotations

from supportchat_app.notifier import Throttle


def test_a_flood_in_four_tickets_does_not_silence_another_customers_new_ticket() -> None:
    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])
    told = asked = 0
    for step in range(6000):  # ten minutes in steps of 0.1 s
        now[0] = step / 10
        for flooded in ("flood-1", "flood-2", "flood-3", "flood-4"):
            throttle.allow(flooded)
        if step % 100 == 37:
            asked += 1
            told += throttle.allow(f"new-ticket-{step}")
    assert told > 0, f"{asked} new tickets of another customer, none notified"

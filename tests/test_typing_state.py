"""The open ticket's typing indicator (supportchat_app/state.py ``TypingState``): a message of the typist ends it
only when it was written at or after their last signal (the server's clock on both); an older message of theirs
re-synced, or edited, leaves them typing. Pure logic, no UI."""

from __future__ import annotations

from supportchat_app.state import TypingState

SIGNAL = "2026-11-30T01:00:10.000000+00:00"
BEFORE = "2026-11-30T01:00:09.999999+00:00"
AFTER = "2026-11-30T01:00:10.500000+00:00"


def test_an_older_message_of_theirs_leaves_the_indicator() -> None:
    changes: list[int] = []
    state = TypingState(on_change=lambda: changes.append(1))
    state.typing("u1", "Carol", now=0.0, at=SIGNAL)
    state.stopped("u1", BEFORE)  # re-synced or edited: written before they started typing this
    assert state.names(1.0) == ["Carol"]
    state.stopped("u1", SIGNAL)  # written in the same microsecond as the signal: what they typed
    assert state.names(1.0) == [] and len(changes) == 2


def test_a_newer_or_undated_message_ends_it() -> None:
    state = TypingState()
    state.typing("u1", "Carol", now=0.0, at=SIGNAL)
    state.typing("u2", "Dan", now=0.0, at=SIGNAL)
    state.stopped("u1", AFTER)
    state.stopped("u2", None)
    assert state.names(1.0) == []


def test_a_signal_without_a_clock_ends_at_any_message_and_forgets_an_earlier_clock() -> None:
    state = TypingState()
    state.typing("u1", "Carol", now=0.0, at=SIGNAL)
    state.typing("u1", "Carol", now=0.5)  # an older server's signal: no clock
    state.stopped("u1", BEFORE)
    assert state.names(1.0) == []
    state.typing("u1", "Carol", now=2.0, at=AFTER)
    state.clear()
    assert state.since == {} and state.names(2.5) == []


def test_a_message_after_the_one_the_signal_names_ends_it_though_the_signal_was_minted_later() -> None:
    """The keystroke just before Enter: its signal, naming her previous message, was minted a moment after her new
    message and arrived before it. The new message ends the indicator (before, it stayed beside the bubble until
    the signal expired: CI's test_typing_clears_after_a_send); her previous message, re-synced, does not."""
    previous = "2026-11-30T01:00:00.000000+00:00"
    state = TypingState()
    state.typing("u1", "Carol", now=0.0, at=SIGNAL, after_at=previous)
    state.stopped("u1", previous)  # the message the signal came after, re-synced or edited
    assert state.names(1.0) == ["Carol"]
    state.stopped("u1", BEFORE)  # written after that one, though before the signal's clock: what she typed
    assert state.names(1.0) == [] and state.since == {} and state.after == {}
    state.typing("u2", "Dan", now=0.0, at=SIGNAL, after_at="")  # he had written nothing there: any message ends it
    state.stopped("u2", BEFORE)
    assert state.names(1.0) == []

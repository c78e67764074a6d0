"""The always-visible sync status: online/offline/connecting/needs sign-in (and, online, whether live updates
were interrupted and caught up), pending and failed counts, last synced, and a progress bar during the initial
sync."""

from __future__ import annotations

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.components.isolated import Isolated
from sync.models import LiveState, SyncState, SyncStatus

STATES: dict[SyncState, tuple[str, str, str]] = {
    "online": ("cloud_done", "positive", "Online"),
    "offline": ("cloud_off", "grey-7", "Offline — your changes are kept and sent when the connection is back"),
    "connecting": ("sync", "warning", "Connecting…"),
    "needs-sign-in": ("lock", "negative", "Signed out — sign in again to keep syncing"),
}

# realtime interrupted or dropping changes (sync/catchup.py), said beside "Online"
LIVE: dict[LiveState, str] = {
    "live": "",
    "interrupted": "Live updates interrupted — catching up",
    "caught-up": "Caught up after a pause in live updates",
}


def describe(status: SyncStatus) -> tuple[str, str]:
    """The label's text and its tooltip: the state, online whether live updates were interrupted or caught up,
    the reason of a sign-out, the error of an offline spell in the tooltip, online a skipped row (said in the label,
    why in the tooltip)."""
    text = STATES[status.state][2]
    if status.state == "online" and LIVE[status.live]:
        text = f"{text} · {LIVE[status.live]}"
    label, title = (text if status.state != "offline" else "Offline"), text
    error = (status.last_error or "").strip().rstrip(":").strip()
    if error and status.state == "needs-sign-in":
        label += f" · {error}"
    elif error and status.state == "offline":
        title = f"{text} ({error})"
    elif error and status.state == "online":  # a pulled row the cache could not read was skipped (Cache._apply)
        label, title = f"{label} · a row was skipped", f"{text} ({error})"
    return label, title


class SyncStatusBar(ui.row):
    """Shows one `SyncStatus`; call `show(status)` on every StatusChanged/SyncProgress event."""

    def __init__(self) -> None:
        super().__init__(wrap=False, align_items="center")
        self.classes("gap-2 text-sm no-wrap").props('data-testid="sync-status"').mark("sync-status")
        self.status: SyncStatus | None = None
        # its changes (pending counts at every send and read) re-render only these, not the page (isolated.py)
        with self, Isolated():
            self.icon = ui.icon("sync", size="18px")
            self.label = ui.label("Starting…").classes("whitespace-nowrap")
            self.pending = ui.badge("", color="orange-7").props("rounded")
            self.failed = ui.badge("", color="negative").props("rounded")
            self.pending.visible = self.failed.visible = False
            self.synced = ui.label("").classes("text-xs opacity-70 whitespace-nowrap")
            self.sign_in = (
                ui.button("Sign in again", on_click=lambda: ui.navigate.to("/signin"))
                .props('dense unelevated no-caps color=negative size=sm data-testid="sign-in-again"')
                .mark("sign-in-again")
            )
            self.sign_in.visible = False
            self.progress = ui.linear_progress(value=0, show_value=False, size="4px").classes("w-24")
            self.progress.props('data-testid="sync-progress"').mark("sync-progress")
            self.progress.visible = False
        ui.timer(10, self._refresh_age)

    def show(self, status: SyncStatus, progress: float | None = None) -> None:
        self.status = status
        icon, color, _ = STATES[status.state]
        self.icon.name, self.icon.props["color"] = icon, color
        self.icon.update()
        # set, not parsed: the server's words must not add props
        self.label.text, self.label.props["title"] = describe(status)
        self.label.update()
        self.pending.set_text(f"{status.pending} pending")
        self.pending.visible = bool(status.pending)
        self.failed.set_text(f"{status.failed} failed")
        self.failed.visible = bool(status.failed)
        self.sign_in.visible = status.state == "needs-sign-in"
        self._refresh_age()
        value = progress if progress is not None else status.progress
        syncing = status.syncing
        # a bar while syncing for the first time (or whenever the engine reports a fraction); without a
        # known total it runs indeterminate, so the first start never looks frozen
        self.progress.visible = syncing and (value is not None or status.last_synced_at is None)
        if value is None:
            self.progress.props("indeterminate")
        else:
            self.progress.props(remove="indeterminate")
            self.progress.set_value(value)

    def _refresh_age(self) -> None:
        if self.status is not None:
            self.synced.set_text(f"Synced {fmt.since(self.status.last_synced_at)}")

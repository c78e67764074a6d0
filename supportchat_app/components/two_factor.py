"""Two-step sign-in: the sign-in page's code step (``CodeStep``) and, in Settings, turning TOTP on (QR
code and the secret as text, then a first code) or off (a current code first). The factors live in
Supabase Auth; the engine's ``two_factor`` does the calls and adopts the session that a verified code
upgrades to ``aal2``. The QR code is drawn here from the
otpauth URI (``qrcode``), not taken from the server's SVG: no server-made markup enters the page.
``StaffCodeBanner`` says why the inbox is empty when the project requires two-step sign-in of staff."""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import qrcode
import qrcode.image.svg
from nicegui import ui

from sync.mfa import staff_code_missing

if TYPE_CHECKING:
    from sync import SyncEngine


def qr_data_url(uri: str) -> str:
    """The otpauth URI as a QR code, an SVG data URL for ``ui.image``."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    image.save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def grouped(secret: str) -> str:
    """The secret in groups of four, as authenticator apps ask for it when typed by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


class TwoFactorCard(ui.column):
    """Markers: `mfa-state`, `mfa-setup`, `mfa-qr`, `mfa-secret`, `mfa-code`, `mfa-confirm`, `mfa-off`,
    `mfa-message`."""

    def __init__(self, engine: SyncEngine) -> None:
        super().__init__()
        self.classes("w-full gap-2")
        self.engine = engine
        self._factor_id: str | None = None  # the factor being confirmed, or the verified one to turn off
        self._enrolling = False
        with self:
            ui.label("Two-step sign-in").classes("text-lg font-medium")
            self.state = ui.label("").classes("text-sm opacity-70").props('data-testid="mfa-state"').mark("mfa-state")
            with ui.column().classes("w-full items-center gap-2") as self.enrol_box:
                self.qr = ui.image().classes("w-48 h-48 bg-white rounded").props('data-testid="mfa-qr"').mark("mfa-qr")
                ui.label("Or type this key into the app:").classes("text-xs opacity-70")
                self.secret = (
                    ui.label("")
                    .classes("font-mono text-sm select-all")
                    .props('data-testid="mfa-secret"')
                    .mark("mfa-secret")
                )
            with ui.row().classes("w-full items-center gap-2 no-wrap") as self.code_row:
                self.code = (
                    ui.input("6-digit code")
                    .props('outlined dense inputmode=numeric autocomplete=one-time-code data-testid="mfa-code"')
                    .mark("mfa-code")
                    .classes("grow")
                )
                self.confirm = (
                    ui.button("Confirm", on_click=self._submit)
                    .props('unelevated no-caps data-testid="mfa-confirm"')
                    .mark("mfa-confirm")
                )
            self.code.on("keydown.enter", self._submit)
            with ui.row().classes("w-full justify-end"):
                self.setup = (
                    ui.button("Set up two-step sign-in", on_click=self._enrol)
                    .props('unelevated no-caps data-testid="mfa-setup"')
                    .mark("mfa-setup")
                )
                self.off = (
                    ui.button("Turn off…", on_click=self._ask_code_to_turn_off)
                    .props('flat no-caps color=negative data-testid="mfa-off"')
                    .mark("mfa-off")
                )
            self.message = ui.label("").classes("text-sm").props('data-testid="mfa-message"').mark("mfa-message")
        self._show(verified=None)
        ui.timer(0, self.load, once=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.classes(replace="text-sm text-negative" if error else "text-sm text-positive")
        self.message.set_text(text)

    def _show(self, *, verified: bool | None) -> None:
        self.enrol_box.set_visibility(self._enrolling)
        self.code_row.set_visibility(self._enrolling)
        self.setup.set_visibility(verified is False and not self._enrolling)
        self.off.set_visibility(bool(verified) and not self._enrolling)
        if self._enrolling:
            self.state.set_text("Setting up: add this account to your authenticator app.")
        elif verified is None:
            self.state.set_text("Checking…")
        elif verified:
            self.state.set_text("On: signing in asks for a code from your authenticator app after the password.")
        else:
            self.state.set_text(
                "Off. Turn it on to ask for a code from an authenticator app (Google Authenticator, 1Password, "
                "Authy, …) after your password."
            )

    async def load(self) -> None:
        try:
            factors = await self.engine.two_factor.factors()
        except Exception as exc:  # offline, signed out: say so, keep the page usable
            self.state.set_text("")
            self._say(f"Cannot check two-step sign-in now: {exc}", error=True)
            return
        verified = [f for f in factors if f.status == "verified"]
        self._factor_id = verified[0].id if verified else None
        self._enrolling = False
        self._show(verified=bool(verified))

    async def _enrol(self) -> None:
        self.setup.props("loading")
        try:
            enrolment = await self.engine.two_factor.enroll()
        except Exception as exc:
            self._say(f"Could not start: {exc}", error=True)
            return
        finally:
            self.setup.props(remove="loading")
        self._factor_id, self._enrolling = enrolment.factor_id, True
        self.qr.set_source(qr_data_url(enrolment.uri))
        self.secret.set_text(grouped(enrolment.secret))
        self.confirm.set_text("Confirm")
        self._say("Scan the code with your authenticator app, then enter the 6 digits it shows.")
        self._show(verified=False)

    def _ask_code_to_turn_off(self) -> None:
        self._enrolling = False
        self._show(verified=True)
        self.code_row.set_visibility(True)
        self.confirm.set_text("Turn off")
        self._say("Enter a current code from your authenticator app to turn two-step sign-in off.")

    async def _submit(self) -> None:
        if self._factor_id is None:
            return
        code = self.code.value or ""
        self.confirm.props("loading")
        try:
            if self._enrolling:
                await self.engine.two_factor.confirm(self._factor_id, code)
                done = "Two-step sign-in is on. Next time you sign in, have your authenticator app at hand."
            else:
                await self.engine.two_factor.remove(self._factor_id, code)
                done = "Two-step sign-in is off."
        except Exception as exc:  # AuthError with a sentence (wrong or used code), or offline
            text = getattr(exc, "message", None) or str(exc)
            self._say(text[:1].upper() + text[1:] + ("" if text.endswith(".") else "."), error=True)
            return
        finally:
            self.confirm.props(remove="loading")
        self.code.set_value("")
        await self.load()
        self._say(done)


class CodeStep(ui.column):
    """The sign-in page's second step: the code from the authenticator app. Markers: `signin-code`,
    `signin-verify`, `signin-back`; a refusal goes to the page's own error label."""

    def __init__(self, verify: Callable[[str], Awaitable[None]], back: Callable[[], None]) -> None:
        super().__init__()
        self.classes("w-full gap-3")
        self._verify = verify
        with self:
            ui.label("Two-step sign-in: enter the 6-digit code your authenticator app shows.").classes("text-sm")
            self.code = (
                ui.input("Code")
                .props('outlined dense inputmode=numeric autocomplete=one-time-code data-testid="signin-code"')
                .mark("signin-code")
                .classes("w-full")
            )
            self.code.on("keydown.enter", self.submit)
            self.button = (
                ui.button("Verify", on_click=self.submit)
                .props('unelevated data-testid="signin-verify"')
                .mark("signin-verify")
                .classes("w-full")
            )
            ui.button("Back", icon="arrow_back", on_click=back).props(
                'flat no-caps dense data-testid="signin-back"'
            ).mark("signin-back")

    async def submit(self) -> None:
        self.button.props("loading")
        try:
            await self._verify(self.code.value or "")
        finally:
            self.code.set_value("")
            self.button.props(remove="loading")


class StaffCodeBanner(ui.row):
    """A floating notice while the project requires two-step sign-in of staff and this session has not
    passed it: the server then shows it nothing, so an empty inbox needs this explanation. Marker:
    `mfa-required`."""

    def __init__(self, engine: SyncEngine) -> None:
        super().__init__(wrap=False)
        self.engine = engine
        self.classes(
            "fixed bottom-4 left-1/2 -translate-x-1/2 z-50 items-center gap-3 px-4 py-2 rounded-lg shadow-lg "
            "bg-amber-100 text-amber-900"
        )
        self.props('data-testid="mfa-required"').mark("mfa-required")
        with self:
            ui.icon("lock")
            ui.label("This project requires two-step sign-in for staff: nothing shows until you set it up.")
            ui.button("Set up", on_click=lambda: ui.navigate.to("/settings")).props("flat no-caps dense")
        self.check()
        ui.timer(2.0, self.check)

    def check(self) -> None:
        user, session = self.engine.user, self.engine.session
        try:
            settings = self.engine.cache.app_settings() if user is not None else {}
        except Exception:  # signed out meanwhile: nothing to say
            settings = {}
        missing = (
            user is not None and session is not None and staff_code_missing(settings, user.role, session.access_token)
        )
        self.set_visibility(missing)

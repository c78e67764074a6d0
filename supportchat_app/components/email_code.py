"""A two-step dialog around an emailed code: ask for the address and send the code, then take the
code and a new password and finish (a password reset, or accepting an invitation)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui
from nicegui.events import ValueChangeEventArguments

from supportchat_app.account import AccountError

MIN_PASSWORD = 6  # GoTrue's default minimum; the server checks it again


class EmailCodeDialog(ui.dialog):
    def __init__(
        self,
        name: str,
        *,
        title: str,
        intro: str,
        finish_label: str,
        send: Callable[[str], Awaitable[None]],
        finish: Callable[[str, str, str], Awaitable[str]],
        on_done: Callable[[str, str], Any],
        code_already_sent: bool = False,
        authenticator: bool = False,
        on_abandon: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`name` prefixes the elements' test ids/markers (`<name>-email`, `-send`, `-code`, `-password`, ...);
        `code_already_sent` shows the code fields at once (an invitation email already carries one);
        `authenticator` adds an optional field for an authenticator app's code (`<name>-authenticator`), read by
        `finish` through `authenticator_code`; `on_abandon` runs whenever the dialog closes (Cancel, Esc, a click
        beside it, or after finishing), to end what an unfinished `finish` left open (a kept recovery session)."""
        super().__init__()
        self._send, self._finish, self._on_done = send, finish, on_done
        self._on_abandon = on_abandon
        self.on_value_change(self._closed)
        with self, ui.card().classes("w-[420px] max-w-[92vw] gap-3"):
            ui.label(title).classes("text-lg font-medium")
            ui.label(intro).classes("text-sm opacity-70")
            self.email = (
                ui.input("Email")
                .props(f'outlined dense data-testid="{name}-email"')
                .mark(f"{name}-email")
                .classes("w-full")
            )
            label = "Email me a new code" if code_already_sent else "Email me a code"
            self.send_button = (
                ui.button(label, on_click=self.send_code)
                .props(f'unelevated no-caps data-testid="{name}-send"')
                .mark(f"{name}-send")
            )
            with ui.column().classes("w-full gap-3") as self.second:
                self.code = (
                    ui.input("Code from the email")
                    .props(f'outlined dense data-testid="{name}-code"')
                    .mark(f"{name}-code")
                    .classes("w-full")
                )
                self.password = (
                    ui.input("New password", password=True, password_toggle_button=True)
                    .props(f'outlined dense data-testid="{name}-password"')
                    .mark(f"{name}-password")
                    .classes("w-full")
                )
                self.authenticator = (
                    ui.input("Authenticator app code (only if you sign in with one)")
                    .props(f'outlined dense inputmode=numeric data-testid="{name}-authenticator"')
                    .mark(f"{name}-authenticator")
                    .classes("w-full")
                )
                self.authenticator.set_visibility(authenticator)
                self.finish_button = (
                    ui.button(finish_label, on_click=self.finish)
                    .props(f'unelevated no-caps data-testid="{name}-finish"')
                    .mark(f"{name}-finish")
                )
            self.second.set_visibility(code_already_sent)
            self.message = (
                ui.label("").classes("text-sm").props(f'data-testid="{name}-message"').mark(f"{name}-message")
            )
            ui.button("Cancel", on_click=self.close).props("flat no-caps").classes("self-end")

    async def _closed(self, event: ValueChangeEventArguments[bool]) -> None:
        if not event.value and self._on_abandon is not None:
            await self._on_abandon()

    @property
    def authenticator_code(self) -> str:
        return str(self.authenticator.value or "").strip()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.classes(replace="text-sm text-negative" if error else "text-sm")
        self.message.set_text(text)

    async def send_code(self) -> None:
        address = (self.email.value or "").strip()
        if "@" not in address:
            self._say("Enter the email address the code should go to.", error=True)
            return
        self.send_button.props("loading")
        try:
            await self._send(address)
        except AccountError as exc:
            self._say(str(exc), error=True)
            return
        finally:
            self.send_button.props(remove="loading")
        self.second.set_visibility(True)
        self._say(f"If {address} has an account, a code is on its way. Enter it below.")

    async def finish(self) -> None:
        code, password = (self.code.value or "").strip(), self.password.value or ""
        if not code.isdigit():
            self._say("Enter the code from the email (digits only).", error=True)
            return
        if len(password) < MIN_PASSWORD:
            self._say(f"Choose a password of at least {MIN_PASSWORD} characters.", error=True)
            return
        self.finish_button.props("loading")
        try:
            outcome = await self._finish((self.email.value or "").strip(), code, password)
        except AccountError as exc:
            self._say(str(exc), error=True)
            return
        finally:
            self.finish_button.props(remove="loading")
        self.close()
        self._on_done((self.email.value or "").strip(), outcome)

"""Sign-in page: email and password (then the authenticator code for an account with two-step sign-in),
plus one-click demo accounts when the demo server is in use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from supportchat_app import backend as backend_module
from supportchat_app import fmt, theme
from supportchat_app.account import Account
from supportchat_app.backend import Workspace
from supportchat_app.components.avatar import Avatar
from supportchat_app.components.email_code import EmailCodeDialog
from supportchat_app.components.two_factor import CodeStep
from supportchat_app.pages import guard
from sync.mfa import CodeRequired


def demo_accounts() -> tuple[list[tuple[str, str, str]], str]:
    # only the embedded demo's account list; never used to talk to a server
    from localbase import demo

    return demo.ACCOUNTS, demo.PASSWORD


def uses_public_keys(remote: Any) -> bool:
    """True when the server's anon key is the Supabase CLI's published demo key: anyone can use it."""
    from localbase.keys import DEMO_ANON_KEY

    return getattr(remote, "anon_key", None) == DEMO_ANON_KEY


PUBLIC_KEYS_NOTICE = (
    "This server uses the Supabase CLI's public demo keys: anyone who can reach it can read and "
    "change its data. Keep real customer conversations off it."
)


def create() -> None:
    @ui.page("/signin", title=f"Sign in · {theme.APP_NAME}")
    async def signin() -> Any:
        workspace = await guard.enter("/signin", "signed-out")
        if not isinstance(workspace, Workspace):
            return workspace
        backend = backend_module.current()
        user = workspace.engine.user

        async def sign_in(email: str, password: str) -> None:
            error.set_text("")
            button.props("loading")
            try:
                await workspace.sign_in(email.strip(), password)
            except CodeRequired:  # the password was right; the account also needs its authenticator code
                show_code_step(True)
                return
            except Exception as exc:  # AuthError carries a plain message; anything else gets one
                error.set_text(_sign_in_message(exc))
                return
            finally:
                button.props(remove="loading")
            ui.navigate.to("/")

        async def verify_code(code: str) -> None:
            error.set_text("")
            try:
                await workspace.sign_in_code(code)
            except Exception as exc:  # a wrong or used code: say so and stay on the code step
                error.set_text(_code_message(exc))
                return
            ui.navigate.to("/")

        def show_code_step(shown: bool) -> None:
            password_step.set_visibility(not shown)
            code_step.set_visibility(shown)
            password.set_value("")

        with theme.frame(f"Sign in · {theme.APP_NAME}"), theme.centered_card():
            heading(backend, expired=user is not None)  # a signed-in user gets here only when their session ended
            with ui.column().classes("w-full gap-3") as password_step:
                email = (
                    ui.input("Email", value=user.email if user is not None else "")
                    .props('outlined dense autofocus data-testid="email"')
                    .mark("email")
                    .classes("w-full")
                )
                password = (
                    ui.input("Password", password=True, password_toggle_button=True)
                    .props('outlined dense data-testid="password"')
                    .mark("password")
                    .classes("w-full")
                )
                password.on("keydown.enter", lambda: sign_in(email.value or "", password.value or ""))
            code_step = CodeStep(verify_code, lambda: show_code_step(False))
            error = (
                ui.label("").classes("text-negative text-sm").props('data-testid="signin-error"').mark("signin-error")
            )
            with ui.column().classes("w-full gap-3") as rest_of_password_step:
                button = (
                    ui.button("Sign in", on_click=lambda: sign_in(email.value or "", password.value or ""))
                    .props('unelevated data-testid="signin"')
                    .mark("signin")
                    .classes("w-full")
                )
                account_row(backend.remote, email, error)
                if backend.is_demo:
                    demo_list(sign_in)
            rest_of_password_step.bind_visibility_from(password_step, "visible")
            show_code_step(workspace.engine.code_pending)
        return None


def heading(backend: Any, *, expired: bool) -> None:
    ui.label("Sign in").classes("text-2xl font-semibold")
    where = "the demo server on this computer" if backend.is_demo else backend.choice.url
    ui.label(f"Server: {where}").classes("text-sm opacity-70")
    if uses_public_keys(backend.remote):
        ui.label(PUBLIC_KEYS_NOTICE).classes("text-sm text-warning").props('data-testid="public-keys"').mark(
            "public-keys"
        )
    if expired:
        ui.label("Your session has ended. Sign in again to keep syncing; nothing you wrote is lost.").classes(
            "text-sm text-warning"
        ).props('data-testid="expired"').mark("expired")


def demo_list(sign_in: Callable[[str, str], Awaitable[None]]) -> None:
    """The demo server's accounts, one click each."""
    accounts, demo_password = demo_accounts()
    ui.separator()
    ui.label("Demo accounts — one click to sign in").classes("text-sm font-medium")
    with ui.column().classes("w-full gap-1"):
        for account_email, role, name in accounts:
            with (
                ui.item(on_click=lambda e=account_email: sign_in(e, demo_password))
                .classes("rounded-lg w-full")
                .props(f'clickable data-testid="demo-{role}"')
                .mark(f"demo-{role}")
            ):
                with ui.item_section().props("avatar"):
                    Avatar(name, account_email)
                with ui.item_section():
                    ui.label(name).classes("text-sm font-medium")
                    ui.label(account_email).classes("text-xs opacity-60")
                with ui.item_section().props("side"):
                    ui.badge(role, color={"admin": "purple-6", "agent": "primary"}.get(role, "teal-7"))


def account_row(remote: Any, email: ui.input, note: ui.label) -> None:
    """ "Forgot password?" and "Have an invitation?": both end with a password to sign in with."""
    account = Account(remote.url, remote.anon_key)
    ui.context.client.on_delete(account.abandon_reset)  # the page went away with a reset waiting for its code

    def done(address: str, outcome: str) -> None:
        email.set_value(address)
        note.classes(replace="text-positive text-sm")
        note.set_text(outcome)

    async def reset(address: str, code: str, new_password: str) -> str:
        await account.reset_password(address, code, new_password, forgot.authenticator_code)
        return "Your password is set. Sign in with it."

    async def accept(address: str, code: str, new_password: str) -> str:
        role = await account.accept_invitation(address, code, new_password)
        return f"Welcome! You joined as {role}. Sign in with your new password."

    forgot = EmailCodeDialog(
        "reset",
        title="Reset your password",
        finish_label="Set password",
        send=account.send_reset_code,
        finish=reset,
        on_done=done,
        intro="We email you a code; enter it with a new password.",
        authenticator=True,
        on_abandon=account.abandon_reset,
    )
    invited = EmailCodeDialog(
        "join",
        title="Accept an invitation",
        finish_label="Join",
        send=account.send_sign_in_code,
        intro="An admin invited you by email: enter the code it holds and choose your password.",
        finish=accept,
        on_done=done,
        code_already_sent=True,
    )
    with ui.row().classes("w-full justify-between"):
        ui.button("Forgot password?", on_click=forgot.open).props(
            'flat no-caps dense size=sm data-testid="forgot"'
        ).mark("forgot")
        ui.button("Have an invitation?", on_click=invited.open).props(
            'flat no-caps dense size=sm data-testid="invited"'
        ).mark("invited")


def _code_message(exc: BaseException) -> str:
    text = (getattr(exc, "message", None) or str(exc) or "the code was refused").strip()
    sentence = text[0].upper() + text[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def _sign_in_message(exc: BaseException) -> str:
    """The engine's reason as a sentence, plus what to do about it."""
    if exc.__class__.__name__ != "AuthError":
        return fmt.plain_error(exc, "sign in")
    text = str(exc).strip() or "sign-in failed"
    sentence = text[0].upper() + text[1:]
    if not sentence.endswith((".", "!", "?")):
        sentence += "."
    if "password" in text.lower() or "credentials" in text.lower():
        return f"{sentence} Check the email and password, then try again."
    return f"{sentence} Try again; if it keeps happening, check the server in Settings."

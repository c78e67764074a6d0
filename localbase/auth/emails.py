"""GoTrue's email tokens and messages: one-time codes, their hashes, action links, templates, and the
per-user and global send limits.

As in GoTrue, an email carries a numeric OTP and a link `/auth/v1/verify?token=<hash>&type=<type>
&redirect_to=<url>`, where `<hash>` = hex(sha224(email + otp)) is what `auth.users` stores
(`confirmation_token`, `recovery_token`, `reauthentication_token`); a PKCE request stores and
links `pkce_<hash>` instead, so the link yields an auth code rather than tokens. A kind of email
goes to one user at most once per `max_frequency` seconds (`over_email_send_rate_limit`, with
GoTrue's "For security purposes..." message), and all emails share the global `email_sent` bucket.
"""

from __future__ import annotations

import fnmatch
import hashlib
import html
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from localbase.auth.errors import AuthError
from localbase.auth.ratelimit import RateLimits
from localbase.auth.sessions import AuthSettings
from localbase.mail import Mailer, MailError

PKCE_PREFIX = "pkce_"


class Action(StrEnum):
    """GoTrue's email action (and verification) types."""

    SIGNUP = "signup"
    INVITE = "invite"
    MAGICLINK = "magiclink"
    RECOVERY = "recovery"
    EMAIL_CHANGE = "email_change"
    EMAIL = "email"  # verify only: an OTP from a signup or a magic-link email
    REAUTHENTICATION = "reauthentication"


_SUBJECTS = {
    Action.SIGNUP: "Confirm Your Signup",
    Action.INVITE: "You have been invited",
    Action.MAGICLINK: "Your Magic Link",
    Action.RECOVERY: "Reset Your Password",
    Action.EMAIL_CHANGE: "Confirm Email Change",
    Action.REAUTHENTICATION: "Confirm reauthentication",
}
_LEADS = {
    Action.SIGNUP: "Follow this link to confirm your user:",
    Action.INVITE: "You have been invited to create a user. Follow this link to accept the invite:",
    Action.MAGICLINK: "Follow this link to login:",
    Action.RECOVERY: "Follow this link to reset the password for your user:",
    Action.EMAIL_CHANGE: "Follow this link to confirm the update of your email:",
}


def new_otp(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def token_hash(email_or_phone: str, otp: str) -> str:
    return hashlib.sha224((email_or_phone + otp).encode()).hexdigest()


def valid_redirect(settings: AuthSettings, url: str) -> bool:
    """GoTrue's IsRedirectURLValid: the site itself (any port on loopback), a loopback IP, or the allow list."""
    if not url:
        return False
    try:
        base, ref = urlsplit(settings.site_url), urlsplit(url)
        ref_port, base_port = ref.port, base.port
    except ValueError:
        return False
    host = ref.hostname or ""
    loopback = host in ("localhost", "127.0.0.1", "::1")
    if host == base.hostname and ref.scheme == base.scheme and (ref_port == base_port or loopback):
        return True
    if host.isdigit():
        return False
    if host in ("127.0.0.1", "::1"):
        return True
    bare = url.split("#", 1)[0]
    return any(fnmatch.fnmatchcase(bare, pattern) for pattern in settings.uri_allow_list)


def referrer(settings: AuthSettings, redirect_to: str | None) -> str:
    return redirect_to if redirect_to and valid_redirect(settings, redirect_to) else settings.site_url


def action_link(api_url: str, token: str, action: Action, redirect_to: str) -> str:
    return (
        f"{api_url}/auth/v1/verify?token={quote(token, safe='')}&type={action.value}"
        f"&redirect_to={quote(redirect_to, safe=':/')}"
    )


def check_frequency(sent_at: datetime | None, settings: AuthSettings) -> None:
    if sent_at is None or settings.max_frequency <= 0:
        return
    wait = sent_at + timedelta(seconds=settings.max_frequency) - datetime.now(UTC)
    if wait.total_seconds() > 0:
        raise AuthError(
            429,
            "over_email_send_rate_limit",
            f"For security purposes, you can only request this after {int(wait.total_seconds()) + 1} seconds.",
        )


def is_expired(sent_at: datetime | None, settings: AuthSettings) -> bool:
    return sent_at is None or datetime.now(UTC) > sent_at + timedelta(seconds=settings.otp_expiry)


async def deliver(mailer: Mailer, limits: RateLimits, *, to: str, action: Action, otp: str, link: str | None) -> None:
    """Send GoTrue's default template for `action` (link and code), within the global email limit."""
    limits.check_email()
    subject = _SUBJECTS[action]
    if link is None:  # reauthentication: a code only
        text = f"Enter the code: {otp}"
        body = f"<h2>{html.escape(subject)}</h2><p>Enter the code: {html.escape(otp)}</p>"
    else:
        text = f"{subject}\n\n{_LEADS[action]}\n{link}\n\nAlternatively, enter the code: {otp}\n"
        body = (
            f"<h2>{html.escape(subject)}</h2><p>{html.escape(_LEADS[action])}</p>"
            f'<p><a href="{html.escape(link)}">{html.escape(subject)}</a></p>'
            f"<p>Alternatively, enter the code: {html.escape(otp)}</p>"
        )
    try:
        await mailer.send(to, subject, text, body)
    except MailError as exc:
        raise AuthError(500, "unexpected_failure", f"Error sending {action.value} email") from exc


def stored_token(email: str, otp: str, pkce: bool) -> str:
    hashed = token_hash(email, otp)
    return PKCE_PREFIX + hashed if pkce else hashed


def token_matches(presented_hash: str, stored: Any) -> bool:
    """GoTrue's isOtpValid comparison: the hash itself, or its PKCE-prefixed form."""
    if not stored or not presented_hash:
        return False
    return secrets.compare_digest(str(stored), presented_hash) or secrets.compare_digest(
        str(stored), PKCE_PREFIX + presented_hash
    )

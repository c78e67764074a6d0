"""SMTP for the worker: the `--smtp-url` grammar, and one mail sent in two steps around a database commit.

`smtp://[user:password@]host[:port]` speaks plain SMTP and upgrades with STARTTLS whenever the server
offers it (`?starttls=require` refuses a server that does not); `smtps://` is TLS from the first byte
(port 465). User and password are percent-decoded.

Why not `smtplib.SMTP.sendmail`: it sends the body and the final "." in one call. The worker needs to
stop just before the ".", record in the database that the mail is being handed over, and only then send
the "." (the moment an SMTP server takes responsibility for a mail; a connection that drops before it
delivers nothing). So `Transport.begin` runs MAIL, RCPT, DATA and the body, and `Transport.finish`
sends the "." and reads the reply; both use smtplib's public command methods.
"""

from __future__ import annotations

import functools
import re
import smtplib
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from notify.decisions import classify_reply

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # implicit TLS (smtps)
    starttls_required: bool
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(f"--smtp-url must start with smtp:// or smtps://, not {parts.scheme or url!r}")
        if not parts.hostname:
            raise ValueError("--smtp-url has no host")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["auto"])[-1]
        if starttls not in ("auto", "require"):
            raise ValueError("starttls= is auto or require")
        return cls(
            parts.hostname,
            parts.port or DEFAULT_PORTS[parts.scheme],
            parts.scheme == "smtps",
            starttls == "require",
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def redacted(self) -> str:
        auth = f"{self.user}:***@" if self.user else ""
        return f"{'smtps' if self.tls else 'smtp'}://{auth}{self.host}:{self.port}"


class SmtpRefused(Exception):
    """The server answered a command with a non-2xx/3xx code; `outcome` says whether to retry."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"SMTP {code} {message}")
        self.code = code
        self.outcome = classify_reply(code)


_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def wire_body(mail: bytes) -> bytes:
    """The mail as DATA carries it: CRLF lines, leading dots doubled (RFC 5321 4.5.2), ending in CRLF."""
    data = mail
    if data.count(b"\n") != data.count(b"\r\n") or b"\r" in data.replace(b"\r\n", b""):
        data = _LINE_ENDS.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every connection, made when the first needs it: making one loads the system's CA
    certificates, which cost more CPU than a wave of mails (it was made for every connection, TLS or not)."""
    return ssl.create_default_context()


class Transport:
    """One SMTP connection, reused across mails, reopened after any failure."""

    def __init__(self, target: SmtpTarget, timeout: float = 30.0, helo: str | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.helo = helo
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        smtp: smtplib.SMTP
        if t.tls:
            smtp = smtplib.SMTP_SSL(t.host, t.port, local_hostname=self.helo, timeout=self.timeout, context=_tls())
        else:
            smtp = smtplib.SMTP(t.host, t.port, local_hostname=self.helo, timeout=self.timeout)
        try:
            # the body and the final "." are two writes with no reply between them: without NODELAY, Nagle's
            # algorithm holds the "." until the server's delayed ACK (~40 ms a mail)
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo()
            if not t.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=_tls())
                smtp.ehlo()
            elif not t.tls and t.starttls_required:
                raise SmtpRefused(530, "the server does not offer STARTTLS and the URL requires it")
            if t.user is not None:
                smtp.login(t.user, t.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    @property
    def is_open(self) -> bool:
        return self._smtp is not None

    def connected(self) -> smtplib.SMTP:
        """The open connection, opened (EHLO, STARTTLS, AUTH) on first use."""
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def begin(self, sender: str, recipient: str, body: bytes) -> None:
        """MAIL, RCPT, DATA and the body: everything but the final "."; raises SmtpRefused or OSError."""
        error = begin_many([(self, recipient, body)], sender)[0]
        if error is not None:
            raise error

    def end_data(self) -> None:
        """Send the final "." of DATA: from here on the server may have the mail."""
        assert self._smtp is not None
        self._smtp.send(b".\r\n")

    def reply(self) -> tuple[int, str]:
        """The server's reply to the whole mail."""
        assert self._smtp is not None
        code, message = self._smtp.getreply()
        return code, message.decode(errors="replace")

    def reset(self) -> None:
        """Abandon the mail in progress (RSET); on a broken connection, drop it."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def abort(self) -> None:
        """Drop the connection in the middle of DATA: the server discards the unfinished mail.

        (An RSET or QUIT there would only be more body text.)"""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None


@functools.lru_cache(maxsize=4096)
def _quoted(address: str) -> str:
    """``smtplib.quoteaddr``, remembered: the sender is the same for every mail, recipients repeat."""
    return smtplib.quoteaddr(address)


_STEPS: tuple[tuple[str, str, range], ...] = (
    ("mail", "FROM:{sender}", range(200, 300)),
    ("rcpt", "TO:{recipient}", range(200, 300)),
    ("data", "", range(354, 355)),
)


def begin_many(mails: list[tuple[Transport, str, bytes]], sender: str) -> list[Exception | None]:
    """`Transport.begin` on several connections at once, one mail each, in lockstep.

    Each command (MAIL, RCPT, DATA) goes out on every connection before any reply is read, so their round
    trips overlap: a wave of n mails waits three round trips, not 3n. (One connection must wait for each
    reply without the PIPELINING extension; separate connections need not.) Returns, per mail, None when
    its body went out and only the "." is missing, else the error (SmtpRefused, OSError, SMTPException);
    a failed connection is dropped, a refused mail reset with RSET.
    """
    errors: list[Exception | None] = [None] * len(mails)

    def fail(i: int, exc: Exception) -> None:
        errors[i] = exc
        if isinstance(exc, SmtpRefused):
            mails[i][0].reset()
        else:
            mails[i][0].abort()

    def connect(transport: Transport) -> Exception | None:
        try:
            transport.connected()
        except (OSError, smtplib.SMTPException, SmtpRefused) as exc:
            return exc
        return None

    # connections not open yet (the first waves, or after a failure) open side by side: each costs a TCP
    # handshake, the banner, EHLO (and STARTTLS, AUTH), several round trips that need not wait for each other
    fresh = [i for i, (transport, _, _) in enumerate(mails) if not transport.is_open]
    if len(fresh) > 1:
        with ThreadPoolExecutor(len(fresh), thread_name_prefix="smtp-connect") as pool:
            opened = list(pool.map(connect, [mails[i][0] for i in fresh]))
    else:
        opened = [connect(mails[i][0]) for i in fresh]
    for i, error in zip(fresh, opened, strict=True):
        if error is not None:
            fail(i, error)
    # quoted once per mail, not per command: smtplib.quoteaddr parses the address with the email package,
    # which cost more CPU than the whole SMTP exchange of a mail when it ran for every command
    quoted = [(_quoted(sender), _quoted(recipient)) for _, recipient, _ in mails]
    for command, template, expected in _STEPS:
        live = [i for i in range(len(mails)) if errors[i] is None]
        for i in live:
            transport = mails[i][0]
            args = template.format(sender=quoted[i][0], recipient=quoted[i][1])
            try:
                transport.connected().putcmd(command, args)
            except (OSError, smtplib.SMTPException) as exc:
                fail(i, exc)
        for i in live:
            if errors[i] is not None:
                continue
            try:
                code, message = mails[i][0].connected().getreply()
            except (OSError, smtplib.SMTPException) as exc:
                fail(i, exc)
                continue
            if code not in expected:
                fail(i, SmtpRefused(code, message.decode(errors="replace")))
    for i in range(len(mails)):
        if errors[i] is None:
            try:
                mails[i][0].connected().send(mails[i][2])
            except (OSError, smtplib.SMTPException) as exc:
                fail(i, exc)
    return errors

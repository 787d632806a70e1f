"""The production e-mail adapter: SMTP with :mod:`smtplib`, configured by ``SMTP_URL``.

URL forms:

- ``smtp://user:pass@host:587``: STARTTLS when the server offers it. With credentials TLS is
  *required* (the password never crosses the network in clear) unless the host is the loopback
  (a local relay).
- ``smtps://user:pass@host:465``: implicit TLS from the first byte.
- ``smtp://host:25``: no authentication (a relay that trusts the network); STARTTLS if offered.
- Credentials are URL-decoded (``p%40ss`` is ``p@ss``). Query options: ``?starttls=false`` never
  upgrades (test servers without TLS; refused together with credentials for a non-loopback
  host), ``?starttls=true`` requires it even without credentials.

Error classification (see :class:`hotline.email.EmailErrorKind`) follows the SMTP conversation:
until the message content has been written, any failure means nothing was accepted (4xx and
connection trouble: RETRYABLE; 5xx: REJECTED, or PERMANENT for a refused recipient). Once the
content has gone out, a timeout or disconnect before the final reply is UNKNOWN_OUTCOME: the
server may have queued the message, and it must not be sent again blindly. The DATA command is
therefore sent by hand, so that a stall waiting for ``354`` (nothing sent yet) and a stall after
the final dot (maybe accepted) are told apart.

Logs name the Message-ID, the number of recipients, reply codes and refused addresses (those are
directory contacts, never reporters); never a body, never a subject's content beyond that.
"""

from __future__ import annotations

import contextlib
import email.message
import email.policy
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
from datetime import UTC
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from hotline.core.clock import Clock, SystemClock
from hotline.email import EmailError, EmailErrorKind, EmailMessage, SentEmail, check_address

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_STARTTLS_MODES = {"auto": "auto", "true": "require", "require": "require", "false": "never"}
_REPLY_TEXT_LIMIT = 200


def default_sender(public_base_url: str) -> str:
    """``hotline@<host of PUBLIC_BASE_URL>``; ``hotline@localhost`` for a loopback origin."""
    host = (urlsplit(public_base_url).hostname or "").rstrip(".").lower()
    if not host or _is_loopback(host):
        return "hotline@localhost"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"hotline@{host}"
    return f"hotline@[{host}]"


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = " ".join(text.split())
    return text[:_REPLY_TEXT_LIMIT]


def _kind_for_code(code: int, *, recipient: bool = False) -> EmailErrorKind:
    if 400 <= code < 500:
        return EmailErrorKind.RETRYABLE
    if recipient and 500 <= code < 600:
        return EmailErrorKind.PERMANENT
    return EmailErrorKind.REJECTED


def _dot_stuff(data: bytes) -> bytes:
    """The message as the DATA command sends it (RFC 5321 4.5.2), final dot included."""
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpEmailSender:
    """Sends each message on its own SMTP connection (alerts are rare; no pooling to go stale)."""

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = 15,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP_URL has no host")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("SMTP_URL is smtp[s]://[user:pass@]host[:port][?starttls=...]")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError("SMTP_URL has an invalid port") from exc
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ValueError(f"SMTP_URL has unknown options: {', '.join(sorted(unknown))}")
        raw_mode = (query.get("starttls") or ["auto"])[-1].lower()
        if raw_mode not in _STARTTLS_MODES:
            raise ValueError("SMTP_URL starttls must be true, false or auto")
        if timeout <= 0:
            raise ValueError("timeout must be positive")

        self.host = parts.hostname
        self.port = port or DEFAULT_PORTS[scheme]
        self.implicit_tls = scheme == "smtps"
        self.username = unquote(parts.username) if parts.username is not None else None
        self._password = unquote(parts.password) if parts.password is not None else None
        if self.username is not None and self._password is None:
            raise ValueError("SMTP_URL has a user name without a password")
        self.loopback = _is_loopback(self.host)
        self.starttls = _STARTTLS_MODES[raw_mode]
        if self.implicit_tls and self.starttls != "auto":
            raise ValueError("smtps:// is TLS from the start; starttls does not apply")
        if self.username is not None and self.starttls == "never" and not self.loopback:
            raise ValueError(
                "SMTP_URL has credentials and starttls=false for a remote host: the password "
                "would cross the network in clear"
            )

        self.sender = sender
        self.envelope_from = check_address(sender, "sender")
        self.timeout = float(timeout)
        self.ssl_context = ssl_context or ssl.create_default_context()
        sender_domain = self.envelope_from.rpartition("@")[2].strip("[]")
        # Explicit: smtplib would otherwise ask socket.getfqdn(), a reverse DNS lookup.
        self.local_hostname = local_hostname or sender_domain or "localhost"
        self._msgid_domain = sender_domain or "localhost"
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = "user:***@" if self.username is not None else ""
        return f"SmtpEmailSender({scheme}://{user}{self.host}:{self.port})"

    # Building the message -----------------------------------------------------------------------

    def build(self, message: EmailMessage) -> tuple[email.message.EmailMessage, str]:
        """The MIME message (text, and an HTML alternative when given) and its Message-ID."""
        mime = email.message.EmailMessage(policy=email.policy.SMTP)
        message_id = make_msgid(domain=self._msgid_domain)
        mime["From"] = self.sender
        mime["To"] = ", ".join(message.to)
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(self._clock.now().astimezone(UTC))
        mime["Message-ID"] = message_id
        if message.reply_to is not None:
            mime["Reply-To"] = message.reply_to
        for name, value in message.headers.items():
            mime[name] = value
        # Quoted-printable keeps the message 7-bit clean: no 8BITMIME needed from the server.
        mime.set_content(message.text, cte="quoted-printable")
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html", cte="quoted-printable")
        return mime, message_id

    # Sending -------------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> SentEmail:
        mime, message_id = self.build(message)
        recipients = [check_address(address) for address in message.to]
        utf8 = any(not a.isascii() for a in [self.envelope_from, *recipients])
        policy = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
        payload = _dot_stuff(mime.as_bytes(policy=policy))
        smtp: smtplib.SMTP | None = None
        content_sent = False
        try:
            smtp = self._connect()
            self._hello(smtp)
            refused = self._envelope(smtp, recipients, utf8=utf8)
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise EmailError(
                    _kind_for_code(code),
                    f"DATA refused: {code} {_reply_text(reply)}",
                    smtp_code=code,
                )
            content_sent = True
            smtp.send(payload)
            code, reply = smtp.getreply()
            if code != 250:
                # A definite answer after the content: the server did not take the message.
                raise EmailError(
                    _kind_for_code(code),
                    f"message refused after DATA: {code} {_reply_text(reply)}",
                    smtp_code=code,
                )
        except EmailError as exc:
            _close(smtp)
            self._log_failure(message_id, exc)
            raise
        except OSError as exc:
            # smtplib's own exceptions are OSErrors too, as are timeouts, refused connections,
            # unresolved names and TLS failures.
            _close(smtp)
            error = _classify(exc, content_sent=content_sent)
            self._log_failure(message_id, error)
            raise error from exc

        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            _close(smtp)  # accepted already: a failed QUIT changes nothing
        if refused:
            log.warning(
                "e-mail %s accepted for %d of %d recipients; refused: %s",
                message_id,
                len(recipients) - len(refused),
                len(recipients),
                ", ".join(f"{address} ({code})" for address, code in refused.items()),
            )
        else:
            log.info("e-mail %s accepted for %d recipient(s)", message_id, len(recipients))
        return SentEmail(message_id, refused)

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self.ssl_context,
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def _hello(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo_or_helo_if_needed()
        if not self.implicit_tls and self.starttls != "never":
            if smtp.has_extn("starttls"):
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            elif self.starttls == "require" or (self.username is not None and not self.loopback):
                raise EmailError(
                    EmailErrorKind.REJECTED,
                    "the SMTP server does not offer STARTTLS, which this configuration requires "
                    "(credentials are never sent in clear to a remote host)",
                )
        if self.username is not None and self._password is not None:
            smtp.login(self.username, self._password)

    def _envelope(self, smtp: smtplib.SMTP, recipients: list[str], *, utf8: bool) -> dict[str, int]:
        options: list[str] = []
        if utf8:
            if not smtp.has_extn("smtputf8"):
                raise EmailError(
                    EmailErrorKind.REJECTED,
                    "an address is not ASCII and the server does not offer SMTPUTF8",
                )
            options.append("SMTPUTF8")
        code, reply = smtp.mail(self.envelope_from, options)
        if code != 250:
            raise EmailError(
                _kind_for_code(code),
                f"sender refused: {code} {_reply_text(reply)}",
                smtp_code=code,
            )
        refused: dict[str, int] = {}
        replies: dict[str, str] = {}
        for address in recipients:
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                refused[address] = code
                replies[address] = _reply_text(reply)
        if len(refused) == len(recipients):
            codes = set(refused.values())
            # PERMANENT only when every refusal is final; any 4xx makes the whole retryable.
            kind = (
                EmailErrorKind.PERMANENT
                if all(500 <= c < 600 for c in codes)
                else EmailErrorKind.RETRYABLE
            )
            first = next(iter(refused))
            raise EmailError(
                kind,
                "every recipient refused: "
                + "; ".join(f"{a}: {refused[a]} {replies[a]}" for a in refused),
                smtp_code=refused[first],
                refused=refused,
            )
        return refused

    @staticmethod
    def _log_failure(message_id: str, error: EmailError) -> None:
        log.warning(
            "e-mail %s not sent (%s, code %s): %s",
            message_id,
            error.kind.value,
            error.smtp_code,
            error.args[0],
        )


def _classify(exc: OSError, *, content_sent: bool) -> EmailError:
    if content_sent:
        # The content went out and no clear answer came back (timeout, disconnect, a garbled
        # reply): the server may have queued the message.
        return EmailError(
            EmailErrorKind.UNKNOWN_OUTCOME,
            f"connection lost after the message content was sent ({type(exc).__name__}: "
            f"{exc}); the server may have accepted it: do not re-send blindly",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        # A reply code before the content was accepted: 421 at connect, 454 for AUTH or
        # STARTTLS, 535 for bad credentials, 554 greeting...
        return EmailError(
            _kind_for_code(exc.smtp_code),
            f"{type(exc).__name__}: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
            smtp_code=exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return EmailError(EmailErrorKind.RETRYABLE, f"SMTP server disconnected: {exc}")
    if isinstance(exc, smtplib.SMTPException):
        # No reply code: no AUTH offered, no common AUTH mechanism, no SMTPUTF8... a
        # configuration problem on one side or the other.
        return EmailError(EmailErrorKind.REJECTED, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return EmailError(
            EmailErrorKind.REJECTED, f"the SMTP server's TLS certificate was not accepted: {exc}"
        )
    if isinstance(exc, socket.gaierror):
        return EmailError(EmailErrorKind.RETRYABLE, f"SMTP host name not resolved: {exc}")
    return EmailError(
        EmailErrorKind.RETRYABLE, f"SMTP connection failed: {type(exc).__name__}: {exc}"
    )


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    with contextlib.suppress(OSError):
        smtp.close()

"""E-mail: the port's checks, the SMTP adapter against real local SMTP servers, the development
outbox, the recording fake, and what notification e-mails say.

The SMTP adapter talks to an aiosmtpd server on 127.0.0.1 (a real SMTP implementation with AUTH,
STARTTLS and implicit TLS), and, where a server must misbehave at one exact step (a 421
greeting, silence before 354, a disconnect after the final dot), to a small scripted server on a
raw socket. Certificates for TLS are made here with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import socket
from collections.abc import Callable
from urllib.parse import quote

import pytest

from hotline.core.clock import ManualClock
from hotline.email import (
    EmailErrorKind,
    SentEmail,
)
from hotline.email.smtp import SmtpEmailSender
from hotline.email.tip_email import (
    render_tip_email,
)
from tests.support.email_servers import (
    DASH,
    FAST,
    SENDER,
    STALL,
    Authenticator,
    Handler,
    ScriptedServer,
    ServerFactory,
    Tls,
    conversation,
    facts,
    fails,
    free_port,
    message,
)

# aiosmtpd warns about AUTH without TLS; these tests use exactly that on the loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

# Servers ----------------------------------------------------------------------------------------


# TLS material -----------------------------------------------------------------------------------


# The port -------------------------------------------------------------------------------------


# SMTP URL and sender --------------------------------------------------------------------------


# SMTP against a real server -------------------------------------------------------------------


def test_a_plain_send_delivers_headers_text_and_html(
    smtp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handler, port = smtp_server()
    clock = ManualClock(dt.datetime(2026, 3, 10, 6, 5, tzinfo=dt.UTC))
    sender = SmtpEmailSender(
        f"smtp://127.0.0.1:{port}?starttls=false", sender=SENDER, timeout=FAST, clock=clock
    )
    caplog.set_level(logging.DEBUG, logger="hotline.email")

    sent = sender.send(
        message(
            reply_to="desk@hotline.example.org",
            headers={"Auto-Submitted": "auto-generated"},
        )
    )

    assert isinstance(sent, SentEmail)
    assert sent.refused == ()
    [got] = handler.received
    assert got.mail_from == "hotline@hotline.example.org"
    assert got.rcpt_tos == ["principal@lakeview.example.org"]
    assert got.helo == "hotline.example.org"  # no reverse DNS lookup for the EHLO name
    parsed = got.parsed()
    assert parsed["From"] == SENDER
    assert parsed["To"] == "principal@lakeview.example.org"
    assert parsed["Subject"] == f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview High School"
    assert parsed["Message-ID"] == sent == sent.message_id
    assert sent.endswith("@hotline.example.org>")
    assert parsed["Date"].datetime == dt.datetime(2026, 3, 10, 6, 5, tzinfo=dt.UTC)
    assert parsed["Reply-To"] == "desk@hotline.example.org"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content() == "Report 4815162.\n.a line that starts with a dot\nCafé\n"
    assert html.get_content() == "<p>Report <b>4815162</b></p>\n"
    assert max(got.content) < 128  # 7-bit clean: no 8BITMIME needed
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hotline."))
    assert sent in ours
    assert "Café" not in ours
    assert "starts with a dot" not in ours
    assert "Lakeview" not in ours


def test_text_only_messages_are_single_part(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    sender.send(message(html=None))
    parsed = handler.received[0].parsed()
    assert parsed.get_content_type() == "text/plain"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_uses_the_url_decoded_credentials(smtp_server: ServerFactory, mechanism: str) -> None:
    auth = Authenticator("alerts@district.org", "p@ss:w/rd%")
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    handler, port = smtp_server(
        authenticator=auth,
        auth_required=True,
        auth_require_tls=False,  # loopback test server without TLS
        auth_exclude_mechanism=[other],
    )
    user, password = quote(auth.login, safe=""), quote(auth.password, safe="")
    sender = SmtpEmailSender(
        f"smtp://{user}:{password}@127.0.0.1:{port}", sender=SENDER, timeout=FAST
    )

    sender.send(message())

    assert auth.mechanisms == [mechanism]
    assert handler.received[0].login == b"alerts@district.org"


def test_wrong_credentials_are_rejected_not_blamed_on_the_recipient(
    smtp_server: ServerFactory,
) -> None:
    auth = Authenticator("alerts", "right")
    handler, port = smtp_server(authenticator=auth, auth_required=True, auth_require_tls=False)
    sender = SmtpEmailSender(f"smtp://alerts:wrong@127.0.0.1:{port}", sender=SENDER, timeout=FAST)

    error = fails(sender)

    assert error.kind is EmailErrorKind.REJECTED
    assert error.smtp_code == 535
    assert error.refused == ()
    assert handler.received == []


def test_a_server_that_wants_auth_and_gets_none_is_rejected(smtp_server: ServerFactory) -> None:
    _, port = smtp_server(
        authenticator=Authenticator("a", "b"), auth_required=True, auth_require_tls=False
    )
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert error.kind is EmailErrorKind.REJECTED
    assert error.smtp_code == 530


def test_credentials_are_never_sent_in_clear_to_a_remote_host(smtp_server: ServerFactory) -> None:
    auth = Authenticator("alerts", "secret")
    handler, port = smtp_server(authenticator=auth, auth_require_tls=False)
    sender = SmtpEmailSender(f"smtp://alerts:secret@127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    sender.loopback = False  # as if 127.0.0.1 were mail.example.org: the server offers no TLS

    error = fails(sender)

    assert error.kind is EmailErrorKind.REJECTED
    assert "STARTTLS" in str(error)
    assert auth.mechanisms == []
    assert handler.received == []


def test_starttls_true_requires_tls_even_without_credentials(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}?starttls=true", sender=SENDER)
    assert fails(sender).kind is EmailErrorKind.REJECTED
    assert handler.received == []


def test_starttls_then_auth(smtp_server: ServerFactory, tls: Tls) -> None:
    auth = Authenticator("alerts", "secret")
    handler, port = smtp_server(
        tls_context=tls.server, require_starttls=True, authenticator=auth, auth_required=True
    )
    sender = SmtpEmailSender(
        f"smtp://alerts:secret@127.0.0.1:{port}",
        sender=SENDER,
        timeout=FAST,
        ssl_context=tls.client,
    )

    sender.send(message())

    [got] = handler.received
    assert got.tls
    assert got.login == b"alerts"


def test_an_untrusted_certificate_is_rejected(smtp_server: ServerFactory, tls: Tls) -> None:
    handler, port = smtp_server(tls_context=tls.server, require_starttls=True)
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    error = fails(sender)  # the default context does not trust the self-signed certificate
    assert error.kind is EmailErrorKind.REJECTED
    assert "certificate" in str(error)
    assert handler.received == []


def test_implicit_tls(smtp_server: ServerFactory, tls: Tls) -> None:
    handler, port = smtp_server(ssl_context=tls.server)
    sender = SmtpEmailSender(
        f"smtps://127.0.0.1:{port}", sender=SENDER, timeout=FAST, ssl_context=tls.client
    )
    sender.send(message())
    assert handler.received[0].tls


def test_a_refused_recipient_is_permanent(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server(
        Handler(refuse={"gone@lakeview.example.org": "550 5.1.1 no such user"})
    )
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)

    error = fails(sender, message(to=("Gone <gone@lakeview.example.org>",)))

    assert error.kind is EmailErrorKind.PERMANENT
    assert error.smtp_code == 550
    assert error.refused == ("gone@lakeview.example.org",)
    assert handler.received == []


def test_a_recipient_refused_for_now_is_retryable(smtp_server: ServerFactory) -> None:
    _, port = smtp_server(Handler(refuse={"full@lakeview.example.org": "450 4.2.1 mailbox busy"}))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    error = fails(sender, message(to=("full@lakeview.example.org",)))
    assert error.kind is EmailErrorKind.RETRYABLE
    assert error.smtp_code == 450


def test_one_of_two_recipients_refused_is_a_partial_delivery(
    smtp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handler, port = smtp_server(
        Handler(refuse={"gone@lakeview.example.org": "550 5.1.1 no such user"})
    )
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    caplog.set_level(logging.INFO)

    sent = sender.send(message(to=("principal@lakeview.example.org", "gone@lakeview.example.org")))

    assert sent.refused == ("gone@lakeview.example.org",)
    assert sent.refused_codes == {"gone@lakeview.example.org": 550}
    assert handler.received[0].rcpt_tos == ["principal@lakeview.example.org"]
    assert "gone@lakeview.example.org (550)" in caplog.text


def test_nothing_listening_is_retryable() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{free_port()}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert error.kind is EmailErrorKind.RETRYABLE
    assert isinstance(error.__cause__, ConnectionRefusedError)


def test_an_unresolved_host_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real resolution of a made-up name would go past the live-network guard; the resolver
    # answers as it does for a name that does not exist.
    def no_such_name(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    sender = SmtpEmailSender("smtp://mail.example.invalid:587", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert error.kind is EmailErrorKind.RETRYABLE
    assert "not resolved" in str(error)


@pytest.mark.parametrize(
    ("greeting", "kind"),
    [
        (b"421 4.3.2 Service not available, closing channel\r\n", EmailErrorKind.RETRYABLE),
        (b"554 5.7.1 No SMTP service for you\r\n", EmailErrorKind.REJECTED),
    ],
)
def test_a_refusing_greeting(
    scripted: Callable[..., ScriptedServer], greeting: bytes, kind: EmailErrorKind
) -> None:
    server = scripted(greeting)
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert error.kind is kind
    assert error.smtp_code == int(greeting[:3])


def test_a_stall_in_data_after_the_content_is_an_unknown_outcome(
    smtp_server: ServerFactory,
) -> None:
    _, port = smtp_server(Handler(stall_data=3))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=STALL)
    error = fails(sender)
    assert error.kind is EmailErrorKind.UNKNOWN_OUTCOME
    assert "do not re-send" in str(error)


def test_a_disconnect_after_the_final_dot_is_an_unknown_outcome(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(b"220 scripted.test ESMTP\r\n", conversation(END=b""))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=FAST)
    assert fails(sender).kind is EmailErrorKind.UNKNOWN_OUTCOME
    assert server.lines[-1] == b"<end of data>"


def test_silence_before_354_is_retryable_nothing_was_sent(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(b"220 scripted.test ESMTP\r\n", conversation(DATA=None))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=STALL)
    assert fails(sender).kind is EmailErrorKind.RETRYABLE
    assert server.lines[-1] == b"DATA"


def test_a_silent_server_after_the_greeting_is_retryable(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(b"220 scripted.test ESMTP\r\n", conversation(EHLO=None))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=STALL)
    assert fails(sender).kind is EmailErrorKind.RETRYABLE


def test_a_failed_quit_after_acceptance_is_still_a_success(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(b"220 scripted.test ESMTP\r\n", conversation(QUIT=b""))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=FAST)
    assert sender.send(message()).startswith("<")


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("451 4.3.0 try again later", EmailErrorKind.RETRYABLE),
        ("554 5.7.1 message refused as spam", EmailErrorKind.REJECTED),
    ],
)
def test_a_definite_answer_after_the_content(
    smtp_server: ServerFactory, reply: str, kind: EmailErrorKind
) -> None:
    _, port = smtp_server(Handler(data_reply=reply))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert error.kind is kind
    assert error.smtp_code == int(reply[:3])


def test_a_refused_sender_is_rejected(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(
        b"220 scripted.test ESMTP\r\n", conversation(MAIL=b"553 5.7.1 sender not allowed\r\n")
    )
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert (error.kind, error.smtp_code) == (EmailErrorKind.REJECTED, 553)


def test_smtplib_errors_are_never_raised_raw(scripted: Callable[..., ScriptedServer]) -> None:
    """Every failure is an EmailError (smtplib's exceptions are OSErrors; callers catch one)."""
    server = scripted(b"220 scripted.test ESMTP\r\n", conversation(EHLO=b"500 what\r\n"))
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{server.port}", sender=SENDER, timeout=FAST)
    error = fails(sender)
    assert not isinstance(error, smtplib.SMTPException)
    assert error.kind is EmailErrorKind.REJECTED


# Development outbox ---------------------------------------------------------------------------


# Recording fake -------------------------------------------------------------------------------


# Notification content -------------------------------------------------------------------------


def test_a_rendered_alert_goes_through_smtp(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    rendered = render_tip_email(facts(school_name="St. Mary's <Academy>"), "p@x.org")

    sender.send(rendered)

    parsed = handler.received[0].parsed()
    assert parsed["Subject"] == rendered.subject
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().rstrip("\n") == rendered.text.rstrip("\n")
    assert "St. Mary&#x27;s &lt;Academy&gt;" in html.get_content()

"""E-mail: the port's checks, the SMTP adapter against real local SMTP servers, the development
outbox, the recording fake, and what notification e-mails say.

The SMTP adapter talks to an aiosmtpd server on 127.0.0.1 (a real SMTP implementation with AUTH,
STARTTLS and implicit TLS), and, where a server must misbehave at one exact step (a 421
greeting, silence before 354, a disconnect after the final dot), to a small scripted server on a
raw socket. Certificates for TLS are made here with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hotline.core.clock import ManualClock
from hotline.email import (
    EmailError,
    EmailErrorKind,
    EmailMessage,
    SentEmail,
)
from hotline.email.dev import DevOutbox
from hotline.email.fake import FakeEmail
from hotline.email.smtp import SmtpEmailSender, default_sender
from hotline.email.tip_email import (
    SUMMARY_LIMIT,
    TipEmailFacts,
    format_local_time,
    render_tip_email,
    shorten_summary,
)

# The loopback test servers require AUTH without TLS on purpose; aiosmtpd warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SENDER = "Safe-tip hotline <hotline@hotline.example.org>"
DASH = "\N{EN DASH}"
FAST = 30.0  # seconds: the adapter's timeout where nothing is meant to stall (a loaded CI
# machine can hold a thread for seconds); STALL is the timeout where one step stalls on purpose.
STALL = 1.0


# Servers ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: bytes | None
    helo: str | None

    def parsed(self) -> email.message.EmailMessage:
        # Stored as a mailbox would: local line endings.
        content = self.content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        return message


@dataclass
class Handler:
    """Stores what it receives; refuses chosen recipients; can stall or answer DATA badly."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    data_reply: str = "250 2.0.0 OK queued"
    stall_data: float = 0.0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stall_data:
            await asyncio.sleep(self.stall_data)
        if not self.data_reply.startswith("250"):
            return self.data_reply
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.original_content or b""),
                # STARTTLS (session.ssl) or implicit TLS (the transport itself).
                tls=session.ssl is not None
                or (
                    server.transport is not None
                    and server.transport.get_extra_info("ssl_object") is not None
                ),
                login=login,
                helo=session.host_name,
            )
        )
        return self.data_reply


@dataclass
class Authenticator:
    login: str
    password: str
    mechanisms: list[str] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        ok = isinstance(data, LoginPassword) and data == LoginPassword(
            self.login.encode(), self.password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data)


ServerFactory = Callable[..., tuple[Handler, int]]


@pytest.fixture
def smtp_server() -> Iterator[ServerFactory]:
    """Start an aiosmtpd server on 127.0.0.1; keyword arguments go to aiosmtpd's SMTP."""
    controllers: list[Controller] = []

    def start(handler: Handler | None = None, **kwargs: Any) -> tuple[Handler, int]:
        handler = handler or Handler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()


Script = Callable[[bytes], bytes | None]


class ScriptedServer:
    """A raw-socket SMTP peer that greets with ``greeting`` and answers each line with
    ``script(line)``: bytes to send, ``b""`` to hang up, None to say nothing (a stall)."""

    def __init__(self, greeting: bytes, script: Script | None = None) -> None:
        self.greeting = greeting
        self.script = script or (lambda line: b"250 OK\r\n")
        self.lines: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(5)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._listener.accept()
            with conn:
                conn.settimeout(0.05)
                conn.sendall(self.greeting)
                if self.greeting.startswith(b"4") or self.greeting.startswith(b"5"):
                    return
                buffer = b""
                in_data = False
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\r\n" in buffer:
                        line, buffer = buffer.split(b"\r\n", 1)
                        if in_data:
                            if line != b".":
                                continue
                            in_data = False
                            line = b"<end of data>"
                        self.lines.append(line)
                        reply = self.script(line)
                        if reply == b"":
                            return
                        if reply is not None:
                            conn.sendall(reply)
                            if reply.startswith(b"354"):
                                in_data = True

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(greeting: bytes, script: Script | None = None) -> ScriptedServer:
        server = ScriptedServer(greeting, script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def conversation(**overrides: bytes | None) -> Script:
    """A well-behaved server, except for the verbs given (EHLO=..., DATA=..., END=... for the
    reply after the final dot)."""
    replies: dict[str, bytes | None] = {
        "EHLO": b"250 scripted.test\r\n",
        "MAIL": b"250 2.1.0 OK\r\n",
        "RCPT": b"250 2.1.5 OK\r\n",
        "DATA": b"354 go ahead\r\n",
        "END": b"250 2.0.0 queued\r\n",
        "QUIT": b"221 bye\r\n",
        "RSET": b"250 OK\r\n",
    }
    replies.update(overrides)

    def script(line: bytes) -> bytes | None:
        verb = "END" if line == b"<end of data>" else line.split(b" ", 1)[0].decode().upper()
        return replies.get(verb, b"502 not implemented\r\n")

    return script


# TLS material -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 and localhost, and contexts on both sides."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotline test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return Tls(server=server, client=client)


def message(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "to": ("principal@lakeview.example.org",),
        "subject": f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview High School",
        "text": "Report 4815162.\n.a line that starts with a dot\nCafé",
        "html": "<p>Report <b>4815162</b></p>",
    }
    values.update(overrides)
    return EmailMessage(**values)


def fails(sender: SmtpEmailSender, msg: EmailMessage | None = None) -> EmailError:
    with pytest.raises(EmailError) as caught:
        sender.send(msg or message())
    return caught.value


# The port -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": ()},
        {"to": "principal@lakeview.example.org"},
        {"to": ("principal@lakeview.example.org\r\nBcc: everyone@example.org",)},
        {"to": ("a@example.org, b@example.org",)},
        {"to": ("not an address",)},
        {"subject": "Tip\r\nBcc: everyone@example.org"},
        {"subject": "Tip\nX-Injected: yes"},
        {"subject": "Tip\u2028X-Injected: yes"},
        {"reply_to": "agent@example.org\nBcc: x@example.org"},
        {"headers": {"X-Note": "a\r\nBcc: x@example.org"}},
        {"headers": {"Bcc": "x@example.org"}},
        {"headers": {"Message-ID": "<mine@example.org>"}},
        {"headers": {"Bad Name": "x"}},
    ],
)
def test_a_message_refuses_missing_recipients_and_header_injection(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValueError):
        message(**overrides)


def test_a_message_keeps_display_names_and_freezes_its_headers() -> None:
    msg = message(
        to=["Dr. Ana Ruiz <ana@lakeview.example.org>"],
        headers={"Auto-Submitted": "auto-generated"},
    )
    assert msg.to == ("Dr. Ana Ruiz <ana@lakeview.example.org>",)
    with pytest.raises(TypeError):
        msg.headers["X-Later"] = "no"  # type: ignore[index]


# SMTP URL and sender --------------------------------------------------------------------------


def test_smtp_url_parsing_decodes_credentials_and_picks_ports() -> None:
    sender = SmtpEmailSender(
        "smtp://alerts%40district.org:p%40ss%3Aw%2Frd%25@mail.example.org:587", sender=SENDER
    )
    assert (sender.host, sender.port, sender.implicit_tls) == ("mail.example.org", 587, False)
    assert (sender.username, sender._password) == ("alerts@district.org", "p@ss:w/rd%")
    assert "p@ss" not in repr(sender) and "w%2Frd" not in repr(sender)
    assert SmtpEmailSender("smtps://u:p@mail.example.org", sender=SENDER).port == 465
    assert SmtpEmailSender("smtps://u:p@mail.example.org", sender=SENDER).implicit_tls
    assert SmtpEmailSender("smtp://relay.example.org", sender=SENDER).port == 25
    assert SmtpEmailSender("smtp://relay.example.org", sender=SENDER).username is None


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtp://u:p@mail.example.org:587?starttls=false",  # password in clear to a remote host
        "smtp://mail.example.org?starttls=maybe",
        "smtp://mail.example.org?tls=1",
        "smtps://mail.example.org?starttls=false",
        "smtp://user@mail.example.org",
        "smtp://mail.example.org:99999",
    ],
)
def test_bad_smtp_urls_are_refused_at_start(url: str) -> None:
    with pytest.raises(ValueError):
        SmtpEmailSender(url, sender=SENDER)


def test_a_sender_with_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        SmtpEmailSender("smtp://127.0.0.1:25", sender="hotline@example.org\r\nBcc: x@y.org")


def test_default_sender_comes_from_the_public_origin() -> None:
    assert default_sender("https://Hotline.Example.org") == "hotline@hotline.example.org"
    assert default_sender("https://hotline.example.org:8443/") == "hotline@hotline.example.org"
    assert default_sender("http://127.0.0.1:5000") == "hotline@localhost"
    assert default_sender("http://localhost:5000") == "hotline@localhost"
    assert default_sender("https://203.0.113.7") == "hotline@[203.0.113.7]"


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

    assert isinstance(sent, SentEmail) and sent.refused == ()
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
    assert text is not None and html is not None
    assert text.get_content() == "Report 4815162.\n.a line that starts with a dot\nCafé\n"
    assert html.get_content() == "<p>Report <b>4815162</b></p>\n"
    assert max(got.content) < 128  # 7-bit clean: no 8BITMIME needed
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hotline."))
    assert sent in ours
    assert "Café" not in ours and "starts with a dot" not in ours and "Lakeview" not in ours


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
    assert got.tls and got.login == b"alerts"


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


def test_the_dev_outbox_keeps_messages_for_the_dev_ui() -> None:
    clock = ManualClock()
    outbox = DevOutbox(sender="hotline@localhost", clock=clock)
    assert outbox.messages_since(0) == ([], 0)

    first = outbox.send(message(subject="one"))
    clock.advance(60)
    outbox.send(message(subject="two"))
    stored, cursor = outbox.messages_since(0)

    assert [s.message.subject for s in stored] == ["one", "two"]
    assert stored[0].message_id == first and first.endswith("@localhost>")
    assert stored[1].sent_at == clock.now()
    assert outbox.get(first) is stored[0]
    assert outbox.messages_since(cursor) == ([], cursor)
    outbox.send(message(subject="three"))
    newer, cursor = outbox.messages_since(cursor)
    assert [s.message.subject for s in newer] == ["three"]
    assert cursor == 3


def test_the_dev_outbox_is_bounded_and_survives_a_restart_cursor() -> None:
    outbox = DevOutbox(capacity=3)
    for n in range(5):
        outbox.send(message(subject=f"m{n}"))
    stored, cursor = outbox.messages_since(0)
    assert [s.message.subject for s in stored] == ["m2", "m3", "m4"]
    assert cursor == 5 and len(outbox) == 3
    # A page that polled a previous process keeps a larger cursor: it sees everything again.
    assert len(DevOutbox().messages_since(1000)[0]) == 0
    fresh = DevOutbox()
    fresh.send(message())
    assert len(fresh.messages_since(1000)[0]) == 1
    outbox.clear()
    outbox.send(message(subject="after clear"))
    assert [s.message.subject for s in outbox.messages_since(cursor)[0]] == ["after clear"]


def test_the_dev_outbox_is_thread_safe() -> None:
    outbox = DevOutbox(capacity=1000)

    def work() -> None:
        for _ in range(100):
            outbox.send(message())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored, cursor = outbox.messages_since(0)
    assert cursor == 800
    assert sorted(s.seq for s in stored) == list(range(1, 801))
    assert len({s.message_id for s in stored}) == 800


# Recording fake -------------------------------------------------------------------------------


def test_the_fake_records_and_fails_on_demand() -> None:
    fake = FakeEmail()
    outage = EmailError(EmailErrorKind.RETRYABLE, "down")
    fake.fail_next(outage, times=2)

    for _ in range(2):
        with pytest.raises(EmailError) as caught:
            fake.send(message())
        assert caught.value is outage
    sent = fake.send(message())

    assert fake.messages == [message()]
    assert fake.message_ids == [sent]
    assert len(fake.attempts) == 3


def test_the_fake_fails_for_an_address_and_refuses_some() -> None:
    fake = FakeEmail()
    bounce = EmailError(
        EmailErrorKind.PERMANENT, "no such user", smtp_code=550, refused={"gone@x.org": 550}
    )
    fake.fail_for("Gone <GONE@x.org>", bounce)
    with pytest.raises(EmailError) as caught:
        fake.send(message(to=("gone@x.org",)))
    assert caught.value is bounce

    fake.refuse("full@x.org", code=450)
    sent = fake.send(message(to=("ok@x.org", "full@x.org")))
    assert sent.refused == ("full@x.org",) and sent.refused_codes == {"full@x.org": 450}
    with pytest.raises(EmailError) as refused:
        fake.send(message(to=("full@x.org",)))
    assert refused.value.kind is EmailErrorKind.RETRYABLE
    assert refused.value.refused == ("full@x.org",)

    assert [m.to for m in fake.sent_to("OK@x.org")] == [("ok@x.org", "full@x.org")]
    fake.clear_failures()
    fake.send(message(to=("gone@x.org",)))
    assert len(fake.sent_to("gone@x.org")) == 1


# Notification content -------------------------------------------------------------------------

REPORTER_WORDS = (
    "Jake in 10th grade said he will bring his dad's gun to school on Friday and hurt the kids "
    "who laughed at him. He showed a picture of it in the locker room after gym class. "
    "Please do something, call me back at (312) 555-0199 if you need more, I'm scared. He also "
    "said his older brother would drive him and that nobody would stop them this time."
)


def facts(**overrides: Any) -> TipEmailFacts:
    values: dict[str, Any] = {
        "report_number": "4815162",
        "level": "critical",
        "tip_type": "weapon",
        "category": "threat",
        "school_name": "Lakeview High School",
        "district_name": "Lakeview CUSD 5",
        "received_at": dt.datetime(2026, 3, 10, 6, 5, tzinfo=dt.UTC),
        "district_timezone": "America/Chicago",
        "portal_url": "https://hotline.example.org/portal/tips/4815162",
        "hotline_number": "+13125550100",
    }
    values.update(overrides)
    return TipEmailFacts(**values)


def both(msg: EmailMessage) -> str:
    assert msg.html is not None
    return msg.text + msg.html


def test_an_alert_says_what_it_is_and_how_to_confirm() -> None:
    msg = render_tip_email(facts(), "principal@lakeview.example.org")

    assert msg.to == ("principal@lakeview.example.org",)
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview High School"
    assert msg.headers["Auto-Submitted"] == "auto-generated"
    text = msg.text
    assert "anonymous safety tip about Lakeview High School" in text
    assert "Report number: 4815162" in text
    assert "School: Lakeview High School" in text
    assert "Level: Critical" in text and "20 minutes" in text
    assert "About: weapon" in text
    assert "Received: Tuesday, March 10, 2026 at 1:05 AM CDT" in text
    assert "https://hotline.example.org/portal/tips/4815162" in text
    assert "login required" in text
    assert 'press 1 when the hotline calls you, text "1 4815162" to +1 312-555-0100' in text
    assert (
        "or call +1 312-555-0100, choose your language, press 3 and key in the report number"
        in " ".join(text.split())
    )
    assert "the portal" in text
    assert msg.html is not None
    assert '<a href="https://hotline.example.org/portal/tips/4815162">' in msg.html
    assert "<strong>1 4815162</strong>" in msg.html


@pytest.mark.parametrize(
    ("level", "subject_tag", "line"),
    [
        ("standard", "[STANDARD]", "within 1 hour of business time"),
        ("other", "[OTHER]", "within 4 hours of business time"),
    ],
)
def test_each_level_says_its_deadline(level: str, subject_tag: str, line: str) -> None:
    msg = render_tip_email(facts(level=level, tip_type="bullying"), "p@x.org")
    assert msg.subject.startswith(f"{subject_tag} Safety tip 4815162")
    assert line in msg.text


def test_an_update_says_what_is_new() -> None:
    msg = render_tip_email(
        facts(purpose="update", level="standard", update_note="a new recording was added"),
        ("p@x.org",),
    )
    assert msg.subject == f"[UPDATE] [STANDARD] Safety tip 4815162 {DASH} Lakeview High School"
    assert "new information" in msg.text and "a new recording was added" in msg.text


def test_an_escalation_says_nobody_confirmed() -> None:
    msg = render_tip_email(
        facts(
            purpose="escalation",
            escalation_note="Nobody at Lakeview High School answered within 20 minutes.",
        ),
        ["superintendent@lakeview.example.org"],
    )
    assert (
        msg.subject == f"[NOT CONFIRMED] [CRITICAL] Safety tip 4815162 {DASH} Lakeview High School"
    )
    assert "Nobody has confirmed receipt" in msg.text
    assert "answered within 20 minutes" in msg.text


def test_an_unknown_school() -> None:
    msg = render_tip_email(
        facts(school_name=None, district_name=None, tip_type=None, category="other"), "p@x.org"
    )
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} school unknown"
    assert "School: unknown" in msg.text
    assert "About: something else (as the reporter chose it; not classified yet)" in msg.text


def test_the_type_is_shown_in_plain_words() -> None:
    described = facts(tip_type="self_harm", type_description="threat of suicide or self-harm")
    assert "About: threat of suicide or self-harm" in render_tip_email(described, "p@x.org").text
    bare = facts(tip_type="staff_misconduct")
    assert "About: staff misconduct" in render_tip_email(bare, "p@x.org").text
    # The ZoneInfo the caller may already hold works as well as its name.
    zoned = facts(district_timezone=ZoneInfo("America/Chicago"))
    assert "1:05 AM CDT" in render_tip_email(zoned, "p@x.org").text


def test_no_summary_unless_the_district_opted_in() -> None:
    msg = render_tip_email(facts(), "p@x.org")
    for words in ("Jake", "gun", "locker room", "555-0199", "reporter said"):
        assert words not in both(msg)


def test_an_opted_in_summary_is_short_and_masks_numbers() -> None:
    msg = render_tip_email(facts(summary=REPORTER_WORDS), "p@x.org")
    assert 'What the reporter said (shortened): "Jake in 10th grade said' in msg.text
    assert msg.html is not None and "<blockquote>Jake in 10th grade" in msg.html
    short = shorten_summary(REPORTER_WORDS)
    assert len(REPORTER_WORDS) > SUMMARY_LIMIT
    assert short.endswith("…") and len(short) <= SUMMARY_LIMIT + 1
    assert short in msg.text
    assert "555-0199" not in both(msg)
    # Cut at a word boundary, and numbers are masked before the cut.
    assert shorten_summary("a " * 200).endswith("a…")
    assert shorten_summary("call 312 555 0199 now") == "call [phone] now"
    assert shorten_summary("  line one\n\nline two ") == "line one line two"


def test_school_names_are_escaped_in_html() -> None:
    msg = render_tip_email(
        facts(school_name="St. Mary's <Academy>", summary="<script>alert(1)</script> & more"),
        "p@x.org",
    )
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} St. Mary's <Academy>"
    assert "School: St. Mary's <Academy>" in msg.text
    assert msg.html is not None
    assert "St. Mary&#x27;s &lt;Academy&gt;" in msg.html
    assert "<Academy>" not in msg.html and "<script>" not in msg.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in msg.html


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        # Spring forward in Chicago: 2 AM CST becomes 3 AM CDT on Sunday, March 8, 2026.
        (dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC), "Sunday, March 8, 2026 at 1:30 AM CST"),
        (dt.datetime(2026, 3, 8, 8, 30, tzinfo=dt.UTC), "Sunday, March 8, 2026 at 3:30 AM CDT"),
        # Fall back: 1:30 AM happens twice on Sunday, November 1, 2026.
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), "Sunday, November 1, 2026 at 1:30 AM CDT"),
        (dt.datetime(2026, 11, 1, 7, 30, tzinfo=dt.UTC), "Sunday, November 1, 2026 at 1:30 AM CST"),
        (dt.datetime(2026, 7, 4, 17, 0, tzinfo=dt.UTC), "Saturday, July 4, 2026 at 12:00 PM CDT"),
    ],
)
def test_received_time_is_shown_in_the_district_time_across_dst(
    utc: dt.datetime, local: str
) -> None:
    assert format_local_time(utc, "America/Chicago") == local
    assert f"Received: {local}" in render_tip_email(facts(received_at=utc), "p@x.org").text


def test_facts_are_checked() -> None:
    with pytest.raises(ValueError):
        facts(received_at=dt.datetime(2026, 3, 10, 6, 5))  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(ValueError):
        facts(level="urgent")
    with pytest.raises(ValueError):
        facts(purpose="reminder")
    with pytest.raises(ValueError):
        facts(district_timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError):
        facts(portal_url="javascript:alert(1)")
    with pytest.raises(ValueError):
        facts(report_number="4815162; DROP")


def test_a_line_break_in_a_school_name_cannot_inject_headers() -> None:
    msg = render_tip_email(facts(school_name="Lakeview\r\nBcc: x@y.org"), "p@x.org")
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview Bcc: x@y.org"


def test_a_rendered_alert_goes_through_smtp(smtp_server: ServerFactory) -> None:
    handler, port = smtp_server()
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=FAST)
    rendered = render_tip_email(facts(school_name="St. Mary's <Academy>"), "p@x.org")

    sender.send(rendered)

    parsed = handler.received[0].parsed()
    assert parsed["Subject"] == rendered.subject
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().rstrip("\n") == rendered.text.rstrip("\n")
    assert "St. Mary&#x27;s &lt;Academy&gt;" in html.get_content()

"""E-mail for the tests: messages, a real local SMTP server (aiosmtpd) and a scripted one."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hotline.email import (
    EmailError,
    EmailMessage,
)
from hotline.email.smtp import SmtpEmailSender
from hotline.email.tip_email import (
    TipEmailFacts,
)

# The loopback test servers require AUTH without TLS on purpose; aiosmtpd warns about that.


SENDER = "Safe-tip hotline <hotline@hotline.example.org>"


DASH = "\N{EN DASH}"


FAST = 30.0  # seconds: the adapter's timeout where nothing is meant to stall (a loaded CI


# machine can hold a thread for seconds); STALL is the timeout where one step stalls on purpose.
STALL = 1.0


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
        self,
        _server: SMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        _options: list[str],
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
        self, _server: SMTP, _session: Session, _envelope: Envelope, mechanism: str, data: Any
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
        self.script = script or (lambda _line: b"250 OK\r\n")
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

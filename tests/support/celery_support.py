"""A bench for the Celery path as it runs in production: real ``celery worker`` and ``celery beat``
processes, real Redis, a throwaway PostgreSQL database, the local Twilio fake behind the
production Twilio adapter, and a clock file shared with the processes (HOTLINE_CLOCK_FILE).

Every process is started in its own session (process group), so a test can SIGKILL a worker
together with its pool children, and the bench kills whatever is left when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from hotline import create_app, migrate
from hotline.core.clock import FileClock
from hotline.core.tips import create_tip
from hotline.directory import import_directory, sample_directory
from hotline.models import (
    Alert,
    Channel,
    Contact,
    Heartbeat,
    Notification,
    NotificationChannel,
    NotificationState,
    School,
    TipLevel,
)
from hotline.services import Hotline, hotline
from tests.support.twilio_fake import RecordedRequest, TwilioFake

T = TypeVar("T")

IDENTITY_KEY = "5fS3y1jGm8oqsp2zC2d0qgE9Bq9tRJrj6f2mX0m8n1Y="
#: One of Twilio's magic "From" numbers: the fake accepts it as the caller id.
HOTLINE_NUMBER = "+15005550006"
#: States after which a row is never sent again.
FINAL_STATES = (
    NotificationState.SENT,
    NotificationState.UNKNOWN,
    NotificationState.FAILED,
    NotificationState.CANCELLED,
)
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class RedisServer:
    """A private ``redis-server`` the test can stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.starts += 1
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / f"redis-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the private redis-server did not start:\n"
                        + (self.workdir / f"redis-{self.starts}.log").read_text(errors="replace")
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGKILL: an outage, not a clean shutdown (nothing is saved anyway)."""
        if self.proc is None:
            return
        _kill_group(self.proc, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


class MailSink:
    """An aiosmtpd handler that keeps what it receives (recipients, raw message)."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:
        self.envelopes.append((list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


class Bench:
    """The database, the fake, the clock file and the processes of one test."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str,
        redis_url: str,
        fake: TwilioFake,
        start: datetime,
    ) -> None:
        self.tmp_path = tmp_path
        self.fake = fake
        self.clock_file = str(tmp_path / "clock.txt")
        self.clock = FileClock(self.clock_file)
        self.clock.set(start)
        # Production needs a real mail server: the workers send through SMTP to this sink.
        self.mail = MailSink()
        self.smtp = Controller(self.mail, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_API_BASE_URL": fake.base_url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "HOTLINE_NUMBER": HOTLINE_NUMBER,
            "SMTP_URL": f"smtp://127.0.0.1:{self.smtp.port}?starttls=false",
            "SECRET_KEY": "celery-dispatch-test-secret",
            "HOTLINE_IDENTITY_KEY": IDENTITY_KEY,
            "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance"),
            "HOTLINE_CLOCK_FILE": self.clock_file,
            # The calls-per-second budget counts windows of the (frozen) file clock: a test not
            # about the budget must not have its calls postponed to a second that never comes.
            "HOTLINE_CALLS_PER_SECOND": "50",
        }
        self.app: Flask = create_app(environ=self.env)
        self.services: Hotline = hotline(self.app)
        migrate.upgrade(self.services.db.engine)
        result = import_directory(self.services.db, self.clock, sample_directory())
        assert result.ok, result
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- processes ---------------------------------------------------------------------------

    def start(
        self,
        name: str,
        kind: str,
        *,
        pool: str = "solo",
        concurrency: int = 1,
        extra_args: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        args = [
            sys.executable, "-m", "celery", "-A", "hotline.make_celery", kind,
            "--loglevel", "INFO",
        ]  # fmt: skip
        if kind == "worker":
            args += [
                "--pool", pool, "--concurrency", str(concurrency),
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--hostname", f"{name}@%h",
            ]  # fmt: skip
        args += extra_args or []
        env = {**os.environ, **self.env, "PYTHONFAULTHANDLER": "1", **(extra_env or {})}
        # The worker imports the project from the repository, as the Procfile runs it.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with (self.tmp_path / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process and every child of its group (the prefork pool)."""
        proc = self.procs.pop(name)
        _kill_group(proc, sig)
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs.values():
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _kill_group(proc, signal.SIGKILL)  # pool children left behind, if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self.procs.clear()
        self.services.db.dispose()
        self.smtp.stop()

    def logs(self) -> str:
        parts = []
        for path in sorted(self.tmp_path.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name} (last 4000 characters)\n{text[-4000:]}")
        return "\n".join(parts)

    # -- waiting -----------------------------------------------------------------------------

    def wait_for(self, what: str, probe: Callable[[], T | None], *, limit: float = 45.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail with the process logs."""
        deadline = time.monotonic() + limit
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                state = (
                    f"broker: {self.broker_state()}\n"
                    f"database sessions: {self.database_activity()}\n"
                    f"calls so far: {self.call_counts()}\n"
                    f"rows: {self.row_summary()}"
                )
                self.dump_stacks()
                pytest.fail(
                    f"timed out ({limit:.0f}s) waiting for: {what}\n{state}\n{self.logs()}",
                    pytrace=False,
                )
            time.sleep(0.1)

    def dump_stacks(self) -> None:
        """Have every process still running print its threads' stacks into its log (the
        processes run with PYTHONFAULTHANDLER, which dumps on SIGABRT); for a failure only."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGABRT)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def database_activity(self) -> str:
        try:
            with self.services.db.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT pid, state, wait_event_type, wait_event, left(query, 120) "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).all()
            return "; ".join(" | ".join(str(c) for c in row) for row in rows) or "none"
        except SQLAlchemyError as exc:  # for a failure message only
            return repr(exc)

    def broker_state(self) -> str:
        try:
            client = redis.Redis.from_url(self.env["REDIS_URL"], socket_connect_timeout=0.5)
            return f"{client.llen('celery')} queued, {client.hlen('unacked')} unacked"
        except redis.RedisError as exc:
            return f"unreachable ({type(exc).__name__})"

    def task_failures(self) -> list[str]:
        """Lines of the worker logs where a task raised."""
        return [
            line[:300]
            for path in sorted(self.tmp_path.glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if "raised unexpected" in line
        ]

    def wait_for_worker(self, limit: float = 45.0) -> None:
        """A round trip through Redis: the worker consumes a ping and writes its heartbeat."""
        with self.services.db.session() as s:
            s.execute(delete(Heartbeat).where(Heartbeat.name == "worker"))
        celery_app = self.app.extensions["celery"]
        last_sent = [-1.0]

        def pinged() -> bool:
            with self.services.db.sessionmaker() as s:
                row = s.get(Heartbeat, "worker")
                if row is not None and row.detail == "ping":
                    return True
            if time.monotonic() - last_sent[0] >= 1.0:  # one ping a second is enough
                last_sent[0] = time.monotonic()
                with contextlib.suppress(Exception):
                    celery_app.send_task("hotline.ping", retry=False)
            return False

        self.wait_for("a ping round trip through Redis to a worker", pinged, limit=limit)

    # -- the hotline -------------------------------------------------------------------------

    def heartbeat(self, name: str) -> Heartbeat | None:
        with self.services.db.sessionmaker() as s:
            return s.get(Heartbeat, name)

    def advance(self, seconds: float) -> datetime:
        when = self.clock.now() + timedelta(seconds=seconds)
        self.clock.set(when)
        return when

    def tip(self, school_code: str = "1101", tip_type: str = "weapon") -> int:
        """A Critical tip created as the IVR creates one: its plan job goes through Redis."""
        with self.app.app_context(), self.services.db.session() as s:
            school = s.scalars(select(School).where(School.code == school_code)).one()
            return create_tip(
                s,
                self.services.keyring,
                channel=Channel.VOICE,
                level=TipLevel.CRITICAL,
                tip_type=tip_type,
                received_at=self.clock.now(),
                school=school,
            ).tip.id

    def rows(self, tip_id: int | None = None, **where: object) -> list[Notification]:
        with self.services.db.sessionmaker() as s:
            q = select(Notification)
            if tip_id is not None:
                q = q.where(Notification.tip_id == tip_id)
            for name, value in where.items():
                q = q.where(getattr(Notification, name) == value)
            return list(s.scalars(q.order_by(Notification.id)))

    def row(self, notification_id: int) -> Notification:
        with self.services.db.sessionmaker() as s:
            return s.get_one(Notification, notification_id)

    def due_rows(self) -> list[Notification]:
        now = self.clock.now()
        return [r for r in self.rows() if r.due_at <= now]

    def all_due_final(self) -> bool:
        due = self.due_rows()
        return bool(due) and all(r.state in FINAL_STATES for r in due)

    def row_summary(self) -> str:
        try:
            return ", ".join(
                f"{r.id}:{r.channel.value}/{r.state.value}@{r.claimed_by}" for r in self.rows()
            )
        except SQLAlchemyError as exc:  # the summary is for a failure message only
            return repr(exc)

    def voice_row_for(self, tip_id: int, number: str) -> Notification:
        rows = [
            r
            for r in self.rows(tip_id, channel=NotificationChannel.VOICE)
            if self.number_of(r.contact_id) == number
        ]
        assert len(rows) == 1, rows
        return rows[0]

    def number_of(self, contact_id: int | None) -> str:
        with self.services.db.sessionmaker() as s:
            contact = s.get_one(Contact, contact_id)
            return contact.phone_number.e164

    def contact_by_number(self, number: str) -> int:
        with self.services.db.sessionmaker() as s:
            for contact in s.scalars(select(Contact)):
                if contact.phone_number.e164 == number:
                    return contact.id
        raise AssertionError(f"no contact has {number}")

    def alerts(self) -> list[tuple[str, str]]:
        with self.services.db.sessionmaker() as s:
            return [(a.kind, a.dedupe_key) for a in s.scalars(select(Alert).order_by(Alert.id))]

    # -- what the fake saw -------------------------------------------------------------------

    def call_requests(self) -> list[RecordedRequest]:
        return self.fake.requests_to("CreateCall")

    def sms_requests(self) -> list[RecordedRequest]:
        return self.fake.requests_to("CreateMessage")

    def calls_to(self, number: str) -> int:
        return sum(1 for r in self.call_requests() if r.field("To") == number)

    def call_counts(self) -> dict[str, int]:
        return dict(Counter(r.field("To") or "?" for r in self.call_requests()))

    def requests_per_row(self) -> Counter[int]:
        """How many requests the fake received for each outbox row (calls and texts; a call
        for several tips carries all their rows)."""
        return Counter(
            n for r in [*self.call_requests(), *self.sms_requests()] for n in self.rows_of(r)
        )

    def assert_each_row_went_out_once(self) -> None:
        """Every call or text row that left (SENT, or UNKNOWN after a request) reached the fake
        exactly once; nothing else reached it."""
        per_row = self.requests_per_row()
        doubled = {n: c for n, c in per_row.items() if c > 1}
        assert doubled == {}, f"requests made more than once for rows {doubled}"
        phone = [r for r in self.rows() if r.channel is not NotificationChannel.EMAIL]
        sent = {r.id for r in phone if r.state is NotificationState.SENT}
        assert sent <= set(per_row), f"rows SENT without a request: {sent - set(per_row)}"
        known = {r.id for r in phone}
        assert set(per_row) <= known, f"requests for no row: {set(per_row) - known}"
        never = {
            r.id
            for r in phone
            if r.state in (NotificationState.PLANNED, NotificationState.CANCELLED)
        }
        assert not never & set(per_row), f"requests for rows never sent: {never & set(per_row)}"

    @staticmethod
    def rows_of(request: RecordedRequest) -> list[int]:
        """The outbox rows a request was made for (its callback URLs carry ``?n=<id>&n=…``)."""
        name = "Url" if request.operation == "CreateCall" else "StatusCallback"
        url = request.field(name) or ""
        return [int(n) for n in parse_qs(urlsplit(url).query).get("n", [])]


@contextlib.contextmanager
def bench(
    tmp_path: Path, *, database_url: str, redis_url: str, fake: TwilioFake, start: datetime
) -> Iterator[Bench]:
    b = Bench(tmp_path, database_url=database_url, redis_url=redis_url, fake=fake, start=start)
    try:
        yield b
    finally:
        b.close()

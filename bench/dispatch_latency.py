"""Dispatch latency: from a Critical tip being committed to its first outbound call request, and
to all of its first-round requests, arriving at a local fake of Twilio's REST API.

Everything runs on this machine, started here and torn down at the end (also on Ctrl-C or an
error): a throwaway PostgreSQL database on the local server, a private ``redis-server``, the
fake Twilio API (``tests.support.twilio_fake``, in this process, stamping each request's arrival
with ``time.monotonic()``), a local SMTP sink (aiosmtpd, for the e-mails), the migrations and the
sample directory, gunicorn, a Celery worker and Celery beat, as the Procfile runs them.

Tips are created the way Twilio creates them: callers drive the real voice webhooks through
gunicorn over HTTP, signed with the auth token exactly as Twilio signs, up to the school's
confirmation (the moment the tip is committed). A burst of N releases N confirmations at once.
The commit time of a tip is the moment the answer to its confirmation arrived back: an upper
bound on the true commit (the answer is sent right after the commit).

    .venv/bin/python bench/dispatch_latency.py [--bursts 1 10 50] [--out FILE]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email
import email.policy
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

import psycopg
import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hotline.models import NotificationOutcome  # noqa: E402
from tests.support.twilio_fake import RecordedRequest, TwilioFake, load_contract  # noqa: E402

BIN = Path(sys.executable).parent
HOTLINE_NUMBER = "+15005550006"
SCHOOL_CODE = "1101"
SCHOOL_NAME = "Lakeview High School"
DEFAULT_RUNS = {1: 5, 10: 5, 50: 3}
DEFAULT_WORKER_APP = "hotline.make_celery"
CALLS_PER_SECOND = 1000
#: Celery beat's sweep interval (hotline.background.celery_app.SWEEP_INTERVAL_SECONDS): the
#: release of each burst is put at a random phase of it.
SWEEP_PERIOD = 2.0
#: States a first-round row is still on its way in.
PENDING = ("planned", "claimed", "sending")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat ((0, 0) elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def cpu_by_component(sessions: Mapping[int, str], database: str) -> dict[str, float]:
    """CPU seconds used so far by the processes of each part of the stack (Linux /proc): the
    processes started here lead their own sessions (their children share it); PostgreSQL's
    backends serving the benchmark's database are found by their title; this process is the
    benchmark itself (callers, fake Twilio, SMTP sink). Exited processes are not counted."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used: dict[str, float] = defaultdict(float)
    me = os.getpid()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            session, seconds = int(fields[3]), (int(fields[11]) + int(fields[12])) / ticks
            part = "benchmark" if pid == me else sessions.get(session)
            if part is None:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
                if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                    part = "postgres"
        except (OSError, ValueError, IndexError):
            continue
        if part is not None:
            used[part] += seconds
    return used


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------
# The fakes: Twilio's REST API and an SMTP server, both stamping arrivals with time.monotonic()
# ------------------------------------------------------------------------------------------


class TimedTwilioFake(TwilioFake):
    """The tests' fake (which stamps each request's arrival), also timing its own answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Seconds the fake took to answer each request (its own share of a send's time).
        self.handling: list[float] = []

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        arrived = time.monotonic()
        try:
            return super()._wsgi(environ, start_response)
        finally:
            self.handling.append(time.monotonic() - arrived)


@dataclass
class SmtpSink:
    """Accepts every message; keeps (arrival, report number from the subject)."""

    received: list[tuple[float, str | None]] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        arrived = time.monotonic()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        found = re.search(r"Safety tip (\d+)", str(message.get("Subject", "")))
        self.received.append((arrived, found[1] if found else None))
        return "250 OK"


# ------------------------------------------------------------------------------------------
# The services: a throwaway database, Redis, and the Procfile's processes
# ------------------------------------------------------------------------------------------


@dataclass
class Stack:
    base_url: str
    database_url: str
    auth_token: str
    account_sid: str
    fake: TimedTwilioFake
    smtp: SmtpSink | None
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]]
    #: The processes' environment (for a script that wants the app in-process too).
    env: dict[str, str]
    #: The callers' From: "random" (a new number each) or as given ("anonymous").
    caller_id: str = "random"
    database_name: str = ""

    def cpu(self) -> dict[str, float]:
        sessions = {proc.pid: name for name, proc in self.processes.items()}
        return cpu_by_component(sessions, self.database_name)


def _stop_process(name: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    # Each process leads its own session: its children (gunicorn's and Celery's workers) go too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {timeout:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _run_once(args: Sequence[str], env: Mapping[str, str], logfile: Path) -> None:
    with logfile.open("ab") as out:
        result = subprocess.run(
            list(args), env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=120
        )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}); see {logfile}")


def _wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@contextlib.contextmanager
def running_stack(
    admin_url: str,
    *,
    smtp: bool,
    keep_logs: bool,
    web_workers: int,
    worker_concurrency: int,
    worker_app: str = DEFAULT_WORKER_APP,
) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        failed = True

        def cleanup_workdir() -> None:
            if keep_logs or failed:
                log(f"logs kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

        stack.callback(cleanup_workdir)

        # PostgreSQL: a database of our own on the local server, dropped at the end.
        db_name = f"bench_dispatch_{secrets.token_hex(4)}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{db_name}"')

        def drop_database() -> None:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

        stack.callback(drop_database)
        database_url = _database_url(admin_url, db_name)

        processes: dict[str, subprocess.Popen[bytes]] = {}

        def start(name: str, args: Sequence[str], env: Mapping[str, str]) -> None:
            out = (workdir / f"{name}.log").open("wb")
            stack.callback(out.close)
            proc = subprocess.Popen(
                list(args),
                env=dict(env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            processes[name] = proc
            stack.callback(_stop_process, name, proc)

        # Redis: private, nothing written to disk.
        redis_port = free_port()
        start(
            "redis",
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            os.environ,
        )
        _wait_for("redis-server", lambda: _redis_pings(redis_port), 10)

        # The fake Twilio API (checked against Twilio's OpenAPI document, as in the tests).
        account_sid = "AC" + secrets.token_hex(16)
        auth_token = secrets.token_hex(16)
        fake = TimedTwilioFake(
            contract=load_contract(), account_sid=account_sid, auth_token=auth_token
        )
        fake.start()
        stack.callback(fake.stop)

        # A real mail server is required with Twilio credentials; with --no-smtp its e-mails
        # are accepted but not measured.
        from aiosmtpd.controller import Controller

        received = SmtpSink()
        smtp_port = free_port()
        controller = Controller(received, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        stack.callback(controller.stop)
        smtp_url = f"smtp://127.0.0.1:{smtp_port}?starttls=false"
        sink: SmtpSink | None = received if smtp else None

        web_port = free_port()
        base_url = f"http://127.0.0.1:{web_port}"
        instance = workdir / "instance"
        instance.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HOTLINE_", "TWILIO_", "CELERY_"))
            and k not in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "PUBLIC_BASE_URL", "PORT")
        }
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            TWILIO_ACCOUNT_SID=account_sid,
            TWILIO_AUTH_TOKEN=auth_token,
            TWILIO_API_BASE_URL=fake.base_url,
            PUBLIC_BASE_URL=base_url,
            HOTLINE_NUMBER=HOTLINE_NUMBER,
            SECRET_KEY=secrets.token_hex(32),
            HOTLINE_IDENTITY_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            HOTLINE_INSTANCE_PATH=str(instance),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            # As high as it goes, so that the budget (where the code has one) never throttles.
            HOTLINE_CALLS_PER_SECOND=str(CALLS_PER_SECOND),
        )
        env["SMTP_URL"] = smtp_url

        log(f"database {db_name}, redis :{redis_port}, fake Twilio {fake.base_url}")
        _run_once(
            [str(BIN / "flask"), "--app", "hotline", "db", "upgrade"], env, workdir / "release.log"
        )
        _run_once(
            [
                str(BIN / "flask"),
                "--app",
                "hotline",
                "directory",
                "import",
                "hotline/sample/directory.csv",
            ],
            env,
            workdir / "release.log",
        )

        start(
            "web",
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                str(web_workers),
                "hotline:create_app()",
            ],
            env,
        )
        start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                worker_app,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(worker_concurrency),
            ],
            env,
        )
        start(
            "beat",
            [str(BIN / "celery"), "-A", "hotline.make_celery", "beat", "--loglevel", "INFO"],
            env,
        )

        def healthy() -> bool:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}); see {workdir}")
            try:
                return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        # /healthz answers 200 once the database is current and the worker's and beat's
        # heartbeats are fresh: then everything is up.
        _wait_for("/healthz to answer 200 (web, worker and beat up)", healthy, 90, 0.5)
        log(f"gunicorn {base_url}, celery worker and beat are up")
        yield Stack(
            base_url,
            database_url,
            auth_token,
            account_sid,
            fake,
            sink,
            workdir,
            processes,
            env,
            database_name=db_name,
        )
        failed = False
        if fake.problems:
            log("the fake Twilio API saw problems:\n  " + "\n  ".join(fake.problems[:20]))


# ------------------------------------------------------------------------------------------
# A caller: Twilio's side of the voice webhooks, over real HTTP
# ------------------------------------------------------------------------------------------


class CallerError(RuntimeError):
    pass


class Caller:
    """One inbound call, played against the app as Twilio plays it: form-encoded POSTs signed
    over PUBLIC_BASE_URL + path + query (``X-Twilio-Signature``), a fresh
    ``I-Twilio-Idempotency-Token`` each, ``<Gather>`` actions resolved against the document's
    URL, ``<Redirect>`` followed, keys collected up to ``finishOnKey`` or ``numDigits``."""

    def __init__(
        self, base_url: str, auth_token: str, account_sid: str, caller_id: str = "random"
    ) -> None:
        self.base_url = base_url
        self.validator = RequestValidator(auth_token)
        self.sid = "CA" + secrets.token_hex(16)
        self.http = requests.Session()
        caller = caller_id
        if caller_id == "random":
            caller = "+1415555" + f"{random.randrange(10_000):04d}"
        self.base = {
            "AccountSid": account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "Direction": "inbound",
            "From": caller,
            "Caller": caller,
            "To": HOTLINE_NUMBER,
            "Called": HOTLINE_NUMBER,
        }
        self.gather: ET.Element | None = None
        self.document_url = ""
        self.heard: list[str] = []
        self.waiting_record = False

    def post(self, url: str, extra: Mapping[str, str]) -> ET.Element:
        params = {**self.base, **extra}
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "I-Twilio-Idempotency-Token": f"{self.sid}-{uuid.uuid4().hex}",
            "User-Agent": "TwilioProxy/1.1",
        }
        response = self.http.post(url, data=params, headers=headers, timeout=60)
        if response.status_code != 200:
            raise CallerError(f"{url}: HTTP {response.status_code} {response.text[:200]}")
        return ET.fromstring(response.content)

    def _play(self, root: ET.Element, url: str) -> None:
        """Run a document until it waits for the caller."""
        self.gather, self.document_url, self.waiting_record = None, url, False
        for _ in range(20):
            for verb in root:
                if verb.tag in ("Say", "Gather"):
                    self.heard.extend(" ".join(s.itertext()) for s in verb.iter("Say"))
                if verb.tag == "Gather":
                    self.gather = verb
                    return
                if verb.tag == "Record":
                    self.waiting_record = True
                    return
                if verb.tag == "Redirect":
                    url = urljoin(url, (verb.text or "").strip())
                    root = self.post(url, {"CallStatus": "in-progress"})
                    self.document_url = url
                    break
                if verb.tag in ("Hangup", "Reject"):
                    raise CallerError(f"the call ended early; heard: {self.heard[-3:]}")
            else:
                raise CallerError(f"the document ended without waiting; heard: {self.heard[-3:]}")
        raise CallerError("too many redirects")

    def start(self) -> None:
        url = f"{self.base_url}/twilio/voice"
        self._play(self.post(url, {"CallStatus": "ringing"}), url)

    def press(self, keys: str) -> None:
        root, url = self.press_request(keys)
        self._play(root, url)

    def press_request(self, keys: str) -> tuple[ET.Element, str]:
        """Post the keys to the waiting <Gather>'s action; the answer is not played yet."""
        gather = self.gather
        if gather is None or "dtmf" not in gather.get("input", "dtmf").split():
            raise CallerError(f"no <Gather> listening for keys; heard: {self.heard[-3:]}")
        finish = gather.get("finishOnKey", "#")
        limit = int(gather.get("numDigits", "0")) or None
        digits, finished_on = "", ""
        for key in keys:
            if finish and key == finish:
                finished_on = key
                break
            digits += key
            if limit and len(digits) >= limit:
                break
        url = urljoin(self.document_url, gather.get("action") or self.document_url)
        params = {
            "CallStatus": "in-progress",
            "Digits": digits,
            "FinishedOnKey": finished_on,
            "msg": "Gather End",
        }
        return self.post(url, params), url

    def heard_since(self, mark: int) -> str:
        return " ".join(self.heard[mark:])


@dataclass
class PlacedTip:
    call_sid: str
    sent: float  # monotonic time the confirmation left
    committed: float  # monotonic time its answer arrived: an upper bound on the commit


def _reach_confirmation(stack: Stack) -> Caller:
    """A new call, keyed through the menu up to the school's confirmation prompt."""
    caller = Caller(stack.base_url, stack.auth_token, stack.account_sid, stack.caller_id)
    caller.start()
    caller.press("1")  # English
    caller.press("1")  # a new report
    caller.press("1")  # threat of violence, weapon or planned attack: Critical
    mark = len(caller.heard)
    caller.press(SCHOOL_CODE + "#")
    if SCHOOL_NAME not in caller.heard_since(mark):
        raise CallerError(f"the school was not read back: {caller.heard_since(mark)!r}")
    return caller


def _confirm(caller: Caller) -> PlacedTip:
    """Confirm the school, which commits the tip, timing the round trip."""
    sent = time.monotonic()
    root, url = caller.press_request("1")  # confirm the school: the tip is committed
    committed = time.monotonic()
    caller._play(root, url)
    if not caller.waiting_record:
        raise CallerError(f"no <Record> after the confirmation: {caller.heard[-3:]}")
    return PlacedTip(caller.sid, sent, committed)


def caller_thread(
    stack: Stack,
    barrier: threading.Barrier,
    out: list[PlacedTip],
    errors: list[BaseException],
) -> None:
    """One caller of a burst: to the confirmation, wait for the release, confirm."""
    released = False
    try:
        caller = _reach_confirmation(stack)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return  # another caller failed: the burst reports that one
        released = True
        out.append(_confirm(caller))
    except BaseException as exc:  # noqa: BLE001
        # Whatever went wrong, the burst must hear of it: a thread's exception would only be
        # printed. Before the release, the barrier is broken too, so nobody waits for this
        # caller.
        errors.append(exc)
        if not released:
            barrier.abort()


# ------------------------------------------------------------------------------------------
# One burst
# ------------------------------------------------------------------------------------------


@dataclass
class TipResult:
    burst: int
    run: int
    tip_id: int
    confirm_rtt: float
    first_call: float | None  # commit → first call request at the fake
    all_first_round: float | None  # commit → last first-round call/SMS request at the fake
    planned: float  # commit → the plan's timestamp (negative: planned before the answer came)
    last_email: float | None
    expected: int  # first-round calls + texts
    calls: int
    texts: int
    received: int  # requests at the fake for those rows
    doubled: int  # rows with more than one request
    emails_expected: int
    emails_received: int
    sweep_planned: bool  # beat's sweep planned it (the plan task came later)
    sweep_reenqueued: int  # rows the sweep handed to the queue again


def _notifications_of(request: RecordedRequest) -> list[int]:
    """The outbox rows a request carries: ``n`` in a call's Url (several for a bundled call) or
    in a message's StatusCallback."""
    url = None
    if request.operation == "CreateCall":
        url = request.field("Url")
    elif request.operation == "CreateMessage":
        url = request.field("StatusCallback")
    if not url:
        return []
    return [int(v) for v in parse_qs(urlsplit(url).query).get("n", []) if v.isdigit()]


@dataclass
class _Release:
    """A burst's callers, let go together at the confirmation."""

    placed: list[PlacedTip]
    #: time.monotonic() of the release.
    at: float
    #: cpu_times() and Stack.cpu() just before it.
    cpu: tuple[int, int]
    parts: dict[str, float]


def _release_callers(stack: Stack, size: int) -> _Release:
    """Bring ``size`` callers to the confirmation, release them at once and wait until each has
    confirmed; raises if any caller failed."""
    barrier = threading.Barrier(size + 1)
    placed: list[PlacedTip] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=caller_thread, args=(stack, barrier, placed, errors), daemon=True)
        for _ in range(size)
    ]
    for thread in threads:
        thread.start()
    cpu_start, parts_start, released = cpu_times(), stack.cpu(), time.monotonic()
    try:
        # Every caller waits at the confirmation prompt (or one failed: the barrier breaks).
        _wait_for(
            f"{size} callers to reach the confirmation",
            lambda: barrier.n_waiting >= size or barrier.broken,
            120,
            0.01,
        )
        # Then a random phase against beat's sweep, so that the sweep's timing is sampled.
        time.sleep(random.uniform(0, SWEEP_PERIOD))
        cpu_start, parts_start, released = cpu_times(), stack.cpu(), time.monotonic()
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join(120)
    if errors:
        raise RuntimeError(
            f"a caller failed: {errors[0]!r} (see web.log in {stack.workdir})"
        ) from errors[0]
    if len(placed) != size:
        raise RuntimeError(f"{len(placed)} of {size} callers confirmed")
    return _Release(placed, released, cpu_start, parts_start)


def _critical_tips(
    db: psycopg.Connection[Any], call_sids: Sequence[str], size: int
) -> dict[str, tuple[int, str]]:
    """call sid → (tip id, report number) of the tips the calls made; raises unless there is one
    Critical tip per call."""
    rows = db.execute(
        "SELECT c.sid, t.id, t.report_number, t.level FROM calls c JOIN tips t ON t.id = c.tip_id "
        "WHERE c.sid = ANY(%s)",
        (list(call_sids),),
    ).fetchall()
    if len(rows) != size or any(level != "critical" for *_, level in rows):
        raise RuntimeError(f"expected {size} Critical tips, found {rows!r}")
    return {sid: (tip_id, number) for sid, tip_id, number, _ in rows}


#: The first-round rows of a set of tips: everything due at once when a tip is planned.
FIRST_ROUND_SQL = (
    "SELECT id, tip_id, channel, state, created_at, enqueued_at FROM notifications "
    "WHERE tip_id = ANY(%s) AND purpose = 'alert' AND plan_version = 1 "
    "AND round = 1 AND position = 0"
)
#: (notification id, channel, created_at, enqueued_at) of a first-round row.
FirstRoundRow = tuple[int, str, datetime, datetime | None]


def _first_round_settled(db: psycopg.Connection[Any], tip_ids: Sequence[int]) -> bool:
    """Every tip planned, and none of their first-round rows still on its way."""
    unplanned = db.execute(
        "SELECT count(*) FROM tips WHERE id = ANY(%s) AND plan_version = 0", (tip_ids,)
    ).fetchone()
    if unplanned is None or unplanned[0] > 0:
        return False
    pending = [r for r in db.execute(FIRST_ROUND_SQL, (tip_ids,)) if r[3] in PENDING]
    return not pending


def _cpu_since(stack: Stack, release: _Release) -> tuple[float, dict[str, float]]:
    """The machine's busy share since the release, and the CPU seconds of each part of the stack
    (plus the whole machine's)."""
    cpu_end = cpu_times()
    parts_end = stack.cpu()
    busy = (cpu_end[0] - release.cpu[0]) / max(1, cpu_end[1] - release.cpu[1])
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parts = {k: v - release.parts.get(k, 0.0) for k, v in parts_end.items()}
    parts["whole machine"] = (cpu_end[0] - release.cpu[0]) / ticks
    return busy, parts


def _first_round_rows(
    db: psycopg.Connection[Any], tip_ids: Sequence[int], workdir: Path
) -> dict[int, list[FirstRoundRow]]:
    """Each tip's first-round rows; raises unless every one of them was sent."""
    first_round = db.execute(FIRST_ROUND_SQL, (tip_ids,)).fetchall()
    if any(state != "sent" for _, _, _, state, _, _ in first_round):
        states = sorted({state for *_, state, _, _ in first_round} - {"sent"})
        raise RuntimeError(f"first-round rows ended {states}, not sent; see {workdir}")
    rows_of_tip: dict[int, list[FirstRoundRow]] = defaultdict(list)
    for nid, tip_id, channel, _, created, enqueued in first_round:
        rows_of_tip[tip_id].append((nid, channel, created, enqueued))
    return rows_of_tip


@dataclass
class _Arrivals:
    """What reached the fake Twilio API."""

    #: notification id → (arrival, operation) of each request that carried the row.
    of_row: dict[int, list[tuple[float, str]]]
    #: Requests since the release for rows outside the first rounds measured.
    strays: int
    #: Call requests that carried at least one measured row (a bundled call carries several).
    call_requests: int


def _arrivals_at_fake(fake: TimedTwilioFake, wanted: set[int], released: float) -> _Arrivals:
    arrivals: dict[int, list[tuple[float, str]]] = defaultdict(list)
    with fake._lock:
        recorded = [(r.arrived, r) for r in fake.requests]
    strays = 0
    call_requests = 0
    for arrived, request in recorded:
        carried = _notifications_of(request)
        if request.operation == "CreateCall" and wanted.intersection(carried):
            call_requests += 1
        for nid in carried:
            if nid in wanted:
                arrivals[nid].append((arrived, request.operation or "?"))
        if carried and not wanted.intersection(carried) and arrived >= released:
            strays += 1
    return _Arrivals(arrivals, strays, call_requests)


def _email_arrivals(smtp: SmtpSink | None) -> dict[str, list[float]]:
    """Report number → arrival of each e-mail about it (none measured without the sink)."""
    emails: dict[str, list[float]] = defaultdict(list)
    if smtp is not None:
        for arrived, number in list(smtp.received):
            if number is not None:
                emails[number].append(arrived)
    return emails


def _tip_result(
    size: int,
    run: int,
    tip_id: int,
    placed_tip: PlacedTip,
    mine: Sequence[FirstRoundRow],
    arrivals: Mapping[int, list[tuple[float, str]]],
    mail: Sequence[float],
    epoch_offset: float,
) -> TipResult:
    """One tip's times, from its commit (the arrival of the answer to its confirmation)."""
    phone_rows = [r for r in mine if r[1] in ("voice", "sms")]
    call_rows = [r for r in mine if r[1] == "voice"]
    times = [t for nid, *_ in phone_rows for t, _ in arrivals[nid]]
    call_times = [t for nid, *_ in call_rows for t, op in arrivals[nid] if op == "CreateCall"]
    email_rows = [r for r in mine if r[1] == "email"]
    planned_at = min(created for _, _, created, _ in mine)
    commit = placed_tip.committed
    return TipResult(
        burst=size,
        run=run,
        tip_id=tip_id,
        confirm_rtt=placed_tip.committed - placed_tip.sent,
        first_call=min(call_times) - commit if call_times else None,
        all_first_round=max(times) - commit if times else None,
        # Database times to the benchmark's clock.
        planned=planned_at.timestamp() - epoch_offset - commit,
        last_email=max(mail) - commit if mail else None,
        expected=len(phone_rows),
        calls=len(call_rows),
        texts=len(phone_rows) - len(call_rows),
        received=len(times),
        doubled=sum(1 for nid, *_ in phone_rows if len(arrivals[nid]) > 1),
        emails_expected=len(email_rows),
        emails_received=len(mail),
        sweep_planned=any(enq is not None and enq == created for *_, created, enq in mine),
        sweep_reenqueued=sum(1 for *_, created, enq in mine if enq is not None and enq > created),
    )


def _cancel_what_is_left(db: psycopg.Connection[Any], tip_ids: Sequence[int]) -> None:
    """Later tiers and the watchdog's next rounds would land in the next bursts: stop them."""
    db.execute(
        "UPDATE notifications SET state = 'cancelled', outcome = %s "
        "WHERE tip_id = ANY(%s) AND state = 'planned'",
        (NotificationOutcome.BENCH_CLEANUP.value, tip_ids),
    )
    db.execute(
        "UPDATE notification_legs SET state = 'cancelled' WHERE tip_id = ANY(%s) "
        "AND state = 'open'",
        (tip_ids,),
    )


def run_burst(
    stack: Stack,
    db: psycopg.Connection[Any],
    size: int,
    run: int,
    epoch_offset: float,
    settle_timeout: float = 300,
) -> tuple[list[TipResult], dict[str, Any]]:
    # Every burst is a separate incident: no number was called or texted moments ago (a spacing
    # between calls to one number would otherwise carry over from the previous burst).
    db.execute("UPDATE phone_numbers SET last_called_at = NULL, last_texted_at = NULL")
    release = _release_callers(stack, size)
    by_sid = {p.call_sid: p for p in release.placed}
    tip_of_sid = _critical_tips(db, list(by_sid), size)
    tip_ids = [tip_id for tip_id, _ in tip_of_sid.values()]

    _wait_for(
        f"the first round of {size} tips to go out",
        lambda: _first_round_settled(db, tip_ids),
        settle_timeout,
        0.05,
    )
    busy, parts = _cpu_since(stack, release)
    time.sleep(0.5)  # anything sent twice would arrive now

    rows_of_tip = _first_round_rows(db, tip_ids, stack.workdir)
    wanted = {nid for rows in rows_of_tip.values() for nid, *_ in rows}
    arrivals = _arrivals_at_fake(stack.fake, wanted, release.at)
    emails = _email_arrivals(stack.smtp)
    results = []
    for sid, placed_tip in by_sid.items():
        tip_id, number = tip_of_sid[sid]
        results.append(
            _tip_result(
                size,
                run,
                tip_id,
                placed_tip,
                rows_of_tip[tip_id],
                arrivals.of_row,
                emails.get(number, []),
                epoch_offset,
            )
        )

    _cancel_what_is_left(db, tip_ids)
    return results, {
        "strays": arrivals.strays,
        "busy": busy,
        "call_requests": arrivals.call_requests,
        "cpu": parts,
    }


# ------------------------------------------------------------------------------------------
# Statistics and the report
# ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); with few samples p99 is
    close to the maximum."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def budget_sentence() -> str:
    config = (ROOT / "hotline" / "config.py").read_text()
    if "HOTLINE_CALLS_PER_SECOND" in config:
        return (
            f"The calls-per-second budget was set to {CALLS_PER_SECOND} "
            "(`HOTLINE_CALLS_PER_SECOND`), far above what a burst places: nothing throttled."
        )
    return (
        "There is no calls-per-second budget in this code yet (a later issue adds it; the "
        f"benchmark sets `HOTLINE_CALLS_PER_SECOND={CALLS_PER_SECOND}` for when it exists): "
        "nothing was throttled."
    )


WORKER_TASK_RE = re.compile(r"Task (dispatcher\.\w+)\[[^\]]+\] succeeded in ([0-9.]+)s: (\S+)")


def worker_task_summary(log_path: Path) -> list[tuple[str, int, float]]:
    """(task and result, count, mean seconds) from the Celery worker's log."""
    seen: dict[str, list[float]] = defaultdict(list)
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    for name, seconds, result in WORKER_TASK_RE.findall(text):
        seen[f"{name} → {result}"].append(float(seconds))
    return [(key, len(values), sum(values) / len(values)) for key, values in sorted(seen.items())]


@dataclass
class Extra:
    strays: int = 0
    problems: int = 0
    busy: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    call_requests: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    cpu: dict[int, dict[str, float]] = field(default_factory=dict)
    fake_handling: list[float] = field(default_factory=list)
    tasks: list[tuple[str, int, float]] = field(default_factory=list)


def report(
    results: Sequence[TipResult],
    runs: Mapping[int, int],
    extra: Extra,
    args: argparse.Namespace,
) -> str:
    sizes = sorted({r.burst for r in results})
    worker = "" if args.worker_app == DEFAULT_WORKER_APP else f" --worker-app {args.worker_app}"
    lines = [
        "# Dispatch latency: Critical tip committed → requests at the fake Twilio API",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_cpu()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; commit {_git_commit()}.",
        f"Command: `.venv/bin/python bench/dispatch_latency.py --bursts "
        f"{' '.join(map(str, args.bursts))}{worker}"
        + ("" if args.caller_id == "random" else f" --caller-id {args.caller_id}")
        + "`.",
        f"gunicorn {args.web_workers} sync workers, Celery worker `{args.worker_app}` prefork "
        f"concurrency {args.worker_concurrency}, Celery beat (sweep every {SWEEP_PERIOD:.0f} s), "
        "PostgreSQL and Redis, all on this machine with the benchmark itself; e-mails to a "
        "local SMTP sink" + ("" if args.smtp else " (e-mails not measured)") + ".",
        args.budget,
        "",
        "Times in ms from the tip's commit (the arrival of the answer to the caller's "
        "confirmation: an upper bound on the true commit) to the arrival of the request at the "
        "fake. *First call*: the first outbound call request of the tip. *All first round*: "
        "the last of the tip's requests due at once (first-tier school call, PSAP call, "
        "law-enforcement call when the school is out of session, texts). A call request may "
        "carry the calls of several tips to one number (bundled): *call requests / call rows* "
        "shows how many requests carried them.",
        "",
        "| burst | runs | tips | first-round rows/tip (calls + texts) | first call p50 | p99 "
        "| max | all first round p50 | p99 | max | rows that reached the fake / expected "
        "| doubled | call requests / call rows |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        mine = [r for r in results if r.burst == size]
        first = [r.first_call for r in mine if r.first_call is not None]
        last = [r.all_first_round for r in mine if r.all_first_round is not None]
        shapes = sorted({(r.calls, r.texts) for r in mine})
        shape = ", ".join(f"{c + t} ({c} + {t})" for c, t in shapes)
        lines.append(
            f"| {size} | {runs[size]} | {len(mine)} | {shape} "
            f"| {ms(percentile(first, 50))} | {ms(percentile(first, 99))} | {ms(max(first))} "
            f"| {ms(percentile(last, 50))} | {ms(percentile(last, 99))} | {ms(max(last))} "
            f"| {sum(r.received for r in mine)} / {sum(r.expected for r in mine)} "
            f"| {sum(r.doubled for r in mine)} "
            f"| {extra.call_requests.get(size, 0)} / {sum(r.calls for r in mine)} |"
        )
    lines += [
        "",
        "Where the time goes (ms from the commit). *Confirm round trip*: the caller's "
        "confirmation request to its answer (the uncertainty of the commit time). *Planned*: "
        "the plan's own timestamp (taken as planning starts, by the plan task or beat's sweep, "
        "whichever got there first). *Sweep*: tips beat's sweep planned before the plan task "
        "did; first-round rows the sweep handed to the queue, either a second time while the "
        "plan task's copy still waited (one of the two is then *not claimed*) or after a "
        "postponement. *CPU*: the whole machine's CPU busy, release to last request.",
        "",
        "| burst | confirm round trip p50 | p99 | planned p50 | p99 | planned → first call p50 "
        "| p99 | tips planned by the sweep | rows the sweep enqueued | CPU busy "
        + ("| last e-mail p50 | p99 |" if args.smtp else "|"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
        + ("|---:|---:|" if args.smtp else "|"),
    ]
    for size in sizes:
        mine = [r for r in results if r.burst == size]
        rtt = [r.confirm_rtt for r in mine]
        planned = [r.planned for r in mine]
        gap = [r.first_call - r.planned for r in mine if r.first_call is not None]
        busy = extra.busy.get(size, [])
        row = (
            f"| {size} | {ms(percentile(rtt, 50))} | {ms(percentile(rtt, 99))} "
            f"| {ms(percentile(planned, 50))} | {ms(percentile(planned, 99))} "
            f"| {ms(percentile(gap, 50))} | {ms(percentile(gap, 99))} "
            f"| {sum(r.sweep_planned for r in mine)} / {len(mine)} "
            f"| {sum(r.sweep_reenqueued for r in mine)} "
            f"| {100 * sum(busy) / len(busy) if busy else float('nan'):.0f} % |"
        )
        if args.smtp:
            mails = [r.last_email for r in mine if r.last_email is not None]
            got = sum(r.emails_received for r in mine)
            want = sum(r.emails_expected for r in mine)
            row += f" {ms(percentile(mails, 50))} | {ms(percentile(mails, 99))} |"
            if got != want:
                row += f" ({got} of {want} e-mails)"
        lines.append(row)
    parts = ["web", "worker", "beat", "postgres", "redis", "benchmark"]
    lines += [
        "",
        "CPU time per tip (ms), from the release of a burst until its first round was out, by "
        "part: *web* gunicorn, *worker* the Celery worker and its children, *postgres* the "
        "backends serving the benchmark's database, *benchmark* the callers, the fake Twilio "
        "API and the SMTP sink; *other* is the rest of the machine's busy time (other "
        "processes, exited ones). The window of a burst spans its whole first round.",
        "",
        "| burst | " + " | ".join(parts) + " | other | whole machine |",
        "|---:|" + "---:|" * (len(parts) + 2),
    ]
    for size in sizes:
        used = extra.cpu.get(size, {})
        tips = max(1, sum(1 for r in results if r.burst == size))
        known = sum(used.get(p, 0.0) for p in parts)
        whole = used.get("whole machine", 0.0)
        cells = [f"{1000 * used.get(p, 0.0) / tips:.0f}" for p in parts]
        cells += [f"{1000 * max(0.0, whole - known) / tips:.0f}", f"{1000 * whole / tips:.0f}"]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    handling = extra.fake_handling
    lines += [
        "",
        "Worker tasks over the whole benchmark, warm-up included (from the worker's log): "
        + "; ".join(f"{name}: {count} x {mean * 1000:.0f} ms" for name, count, mean in extra.tasks)
        + ".",
        f"The fake's own time to answer a request: p50 {ms(percentile(handling, 50))} ms, "
        f"p99 {ms(percentile(handling, 99))} ms. Requests at the fake for notifications outside "
        f"the bursts' first rounds: {extra.strays}. Problems reported by the fake: "
        f"{extra.problems}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bursts", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per burst size (default 5, 5, 3 for 1, 10, 50)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "dispatch_latency.md"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database on the server to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument(
        "--worker-app",
        default=DEFAULT_WORKER_APP,
        help="the Celery app the worker runs (an experiment in bench/experiments/, say)",
    )
    parser.add_argument(
        "--no-smtp", dest="smtp", action="store_false", help="do not measure the e-mails"
    )
    parser.add_argument(
        "--caller-id",
        default="random",
        help="the callers' From: 'random' (a new +1415555xxxx each) or a value such as "
        "'anonymous' (a withheld caller id)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300,
        help="seconds a burst's first round may take to go out before the run fails",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    args.budget = budget_sentence()
    random.seed(args.seed)

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    # Ctrl-C stops everything cleanly, even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    runs = {size: args.runs or DEFAULT_RUNS.get(size, 3) for size in args.bursts}
    started = time.monotonic()
    results: list[TipResult] = []
    extra = Extra()
    with running_stack(
        args.postgres,
        smtp=args.smtp,
        keep_logs=args.keep_logs,
        web_workers=args.web_workers,
        worker_concurrency=args.worker_concurrency,
        worker_app=args.worker_app,
    ) as stack:
        stack.caller_id = args.caller_id
        epoch_offset = time.time() - time.monotonic()
        with psycopg.connect(stack.database_url, autocommit=True) as db:
            # Warm-up (not counted): every gunicorn and Celery process opens its connections.
            run_burst(stack, db, 4, 0, epoch_offset)
            warm = len(stack.fake.handling)
            log("warm-up done")
            for size in args.bursts:
                for run in range(1, runs[size] + 1):
                    tips, found = run_burst(stack, db, size, run, epoch_offset, args.settle_timeout)
                    extra.strays += found["strays"]
                    extra.busy[size].append(found["busy"])
                    extra.call_requests[size] += found["call_requests"]
                    totals = extra.cpu.setdefault(size, defaultdict(float))
                    for part, seconds in found["cpu"].items():
                        totals[part] += seconds
                    results.extend(tips)
                    first = max(t.first_call or 0 for t in tips)
                    last = max(t.all_first_round or 0 for t in tips)
                    log(
                        f"burst {size} run {run}: slowest first call {first * 1000:.0f} ms, "
                        f"slowest first round {last * 1000:.0f} ms"
                    )
                    time.sleep(1.0)
        extra.problems = len(stack.fake.problems)
        extra.fake_handling = stack.fake.handling[warm:]
        extra.tasks = worker_task_summary(stack.workdir / "worker.log")
    text = report(results, runs, extra, args)
    text += f"Whole benchmark: {time.monotonic() - started:.0f} s.\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(text)
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything was stopped")
        sys.exit(130)

"""The dev phone's test helpers: a served dev app, its API, stub voice menus, and Chromium."""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from dispatcher import tasks
from hotline import create_app, migrate
from hotline.background.embedded import EmbeddedWorker
from hotline.background.jobs import LocalJobQueue
from hotline.core.clock import Clock, ManualClock
from hotline.core.tips import create_tip
from hotline.directory.cli import load_sample_if_empty
from hotline.models import (
    Channel,
    School,
    TipLevel,
)
from hotline.services import hotline
from hotline.telephony.ports import CallRequest
from hotline.telephony.simulated import (
    HttpWebhookTransport,
    SimulatedPhoneNetwork,
    WebhookTransport,
)
from tests.support.sim_support import FlaskClientTransport

CALLER = "+15555550123"


PRINCIPAL = "+13125550111"  # Angela Brooks (Principal), Lakeview High School (1101)


ASSISTANT = "+13125550112"


SRO = "+13125550113"


PSAP = "+13125550190"


DUTY = "+13125550150"  # Jordan Avery (Hotline Duty Supervisor), no district


#: What a call the tests place plays: a sentence, then a minute of silence.
HOLD_TWIML = "<Response><Say>Please hold.</Say><Pause length='60'/></Response>"


API = "/dev/phone/api"


HEADERS = {"X-Dev-Phone": "1"}


CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


SCREENSHOT_DIR = Path(os.environ.get("DEVPHONE_SCREENSHOT_DIR", "/tmp"))


stub_ivr = Blueprint("devphone_stub_ivr", __name__, url_prefix="/test-ivr")


def _twiml(body: str) -> Response:
    return Response(f"<?xml version='1.0'?><Response>{body}</Response>", content_type="text/xml")


def _verified() -> dict[str, str]:
    """The webhook's parameters, after checking it is signed as Twilio signs."""
    validator = RequestValidator(hotline().webhook_auth_token)
    if not validator.validate(
        request.url, request.form, request.headers.get("X-Twilio-Signature", "")
    ):
        abort(403)
    params = request.form.to_dict()
    current_app.extensions["stub_ivr"].append((request.path, params))
    return params


@stub_ivr.post("/voice")
def stub_voice() -> Response:
    _verified()
    return _twiml(
        '<Say language="en-US" voice="Polly.Joanna">Welcome to the test line.</Say>'
        '<Gather input="dtmf speech" numDigits="1" action="/test-ivr/menu" language="es-US" '
        'timeout="60"><Say language="es-US" voice="Polly.Lupe">Marque uno o diga algo.</Say>'
        "</Gather><Say>Goodbye.</Say>"
    )


@stub_ivr.post("/menu")
def stub_menu() -> Response:
    params = _verified()
    if params.get("Digits") == "1":
        return _twiml(
            '<Say language="en-US">You pressed one. Leave a message after the beep.</Say>'
            '<Record action="/test-ivr/recorded" finishOnKey="#" maxLength="120" timeout="60"/>'
        )
    if params.get("SpeechResult"):
        return _twiml(
            f'<Say language="en-US">You said {escape(params["SpeechResult"])}.</Say>'
            '<Gather input="dtmf" numDigits="1" action="/test-ivr/menu" timeout="60">'
            '<Say language="en-US">Press 9 to end.</Say></Gather>'
        )
    return _twiml('<Say language="en-US">Goodbye.</Say><Hangup/>')


@stub_ivr.post("/recorded")
def stub_recorded() -> Response:
    params = _verified()
    return _twiml(
        f'<Say language="en-US">Got your recording of {params.get("RecordingDuration")} '
        "seconds.</Say><Hangup/>"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build_app(tmp_path: Path, port: int, clock: Clock | None) -> Flask:
    """The development default (no Twilio credentials), as ``make run`` builds it."""
    app = create_app(
        environ={
            "DATABASE_URL": f"sqlite:///{(tmp_path / 'dev.sqlite3').as_posix()}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        },
        instance_path=tmp_path / "instance",
        clock=clock,
    )
    migrate.upgrade(hotline(app).db.engine)
    return app


def use_stub_ivr(app: Flask, clock: Clock, transport: WebhookTransport) -> SimulatedPhoneNetwork:
    """Point the app's simulated network at the stub menu (same signing token as the app's)."""
    app.register_blueprint(stub_ivr)
    app.extensions["stub_ivr"] = []
    services = hotline(app)
    base = services.settings.public_base_url
    original = services.simulator
    assert original is not None
    sim = SimulatedPhoneNetwork(
        account_sid=original.account_sid,
        auth_token=services.webhook_auth_token,
        hotline_number=services.settings.hotline_number,
        voice_url=f"{base}/test-ivr/voice",
        voice_status_url=f"{base}/twilio/voice/status",
        sms_url=f"{base}/twilio/sms",
        clock=clock,
        transport=transport,
    )
    services.simulator = sim
    services.telephony = sim
    return sim


def stub_calls(app: Flask) -> list[tuple[str, dict[str, str]]]:
    received: list[tuple[str, dict[str, str]]] = app.extensions["stub_ivr"]
    return received


@pytest.fixture
def dev_app(tmp_path: Path, clock: ManualClock) -> Iterator[Flask]:
    app = build_app(tmp_path, free_port(), clock)
    app.config["TESTING"] = True
    use_stub_ivr(app, clock, FlaskClientTransport(app))
    yield app
    hotline(app).db.dispose()


def post(app: Flask, path: str, body: dict[str, Any], **headers: str) -> Any:
    return app.test_client().post(f"{API}{path}", json=body, headers={**HEADERS, **headers})


def events(app: Flask, cursor: int = 0) -> dict[str, Any]:
    response = app.test_client().get(f"{API}/events?cursor={cursor}")
    assert response.status_code == 200
    data: dict[str, Any] = response.get_json()
    return data


def wav_bytes(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buffer.getvalue()


def load_sample(app: Flask) -> None:
    load_sample_if_empty(hotline(app))


def run_dispatcher(app: Flask) -> None:
    """What the worker does: planned tips' jobs, then the sweep."""
    services = hotline(app)
    jobs = services.jobs
    assert isinstance(jobs, LocalJobQueue)
    with app.app_context():
        jobs.drain(lambda name, args: tasks.run_job(services, name, args))
        tasks.sweep(services)
        jobs.drain(lambda name, args: tasks.run_job(services, name, args))


def critical_tip(app: Flask) -> str:
    """A Critical tip for Lakeview High School, sent out by the dispatcher; its report number."""
    services = hotline(app)
    with app.app_context(), services.db.session() as session:
        school = session.scalars(select(School).where(School.code == "1101")).one()
        tip = create_tip(
            session,
            services.keyring,
            channel=Channel.VOICE,
            level=TipLevel.CRITICAL,
            tip_type="weapon",
            received_at=services.clock.now(),
            school=school,
        ).tip
        number = tip.report_number
    run_dispatcher(app)
    return number


def place(app: Flask, to: str, twiml: str, ring_timeout: int | None = None) -> str:
    """A call the app places through its telephony port (the simulator), as the dispatcher does."""
    services = hotline(app)
    request = CallRequest(
        to=to, from_=services.settings.hotline_number, twiml=twiml, ring_timeout=ring_timeout
    )
    return services.telephony.place_call(request).sid


def incoming(app: Flask) -> dict[str, dict[str, Any]]:
    """The live calls the app placed, by the number they ring, as the page sees them."""
    feed = events(app)
    return {c["to"]: c for c in feed["calls"] if c["direction"] == "outbound-api" and c["live"]}


def call_log(app: Flask, sid: str) -> list[dict[str, Any]]:
    answer = app.test_client().get(f"{API}/calls/{sid}")
    assert answer.status_code == 200
    log: list[dict[str, Any]] = answer.get_json()["events"]
    return log


def said(log: list[dict[str, Any]]) -> str:
    return " ".join(e["text"] for e in log if e["kind"] == "say")


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Served:
    app: Flask
    url: str


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """The app over real HTTP with its embedded worker, as ``make run`` runs it."""
    stops: list[Callable[[], None]] = []

    def start(*, stub: bool = False, sample: bool = False) -> Served:
        port = free_port()
        app = build_app(tmp_path, port, None)  # the system clock: timers run in real time
        services = hotline(app)
        if stub:
            use_stub_ivr(app, services.clock, HttpWebhookTransport(timeout=10))
        if sample:
            load_sample_if_empty(services)
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        worker = EmbeddedWorker(app, tick_seconds=0.1)
        worker.start()

        def stop() -> None:
            worker.stop()
            server.shutdown()
            thread.join(5)
            services.db.dispose()

        stops.append(stop)
        return Served(app, f"http://127.0.0.1:{port}")

    yield start
    for stop in reversed(stops):
        stop()


@pytest.fixture
def page(browser: Any, serve: Callable[..., Served]) -> Iterator[Any]:  # noqa: ARG001
    # Depends on ``serve`` so the tab closes before the server stops (no failed poll at the end).
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # The page shows the API's 400/409 answers itself; anything else is a fault.
    expected = re.compile(r"Failed to load resource: .* status of (400|409) ")

    def console(msg: Any) -> None:
        if msg.type == "error" and not expected.match(msg.text):
            errors.append(msg.text)

    tab.on("console", console)
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
    assert errors == [], f"errors in the page: {errors}"


def open_phone(page: Any, served: Served) -> None:
    page.goto(served.url + "/")  # the root sends a newcomer to the dev phone
    assert page.url == served.url + "/dev/phone"
    page.wait_for_selector("#devphone[data-ready='true']")


def say_lines(page: Any) -> list[str]:
    texts: list[str] = page.locator("#transcript li[data-kind='say'] .text").all_inner_texts()
    return texts


def max_seq(page: Any) -> int:
    seqs: list[str] = page.locator("#transcript li").evaluate_all(
        "(lines) => lines.map((l) => l.dataset.seq)"
    )
    return max((int(s) for s in seqs), default=0)


def wait_listening(page: Any, after_seq: int, timeout: float = 20.0) -> None:
    """Until the hotline listens again (a new gather or record after ``after_seq``) or the
    call ends, and the page's status line knows it."""
    page.wait_for_function(
        """(after) => {
            const lines = [...document.querySelectorAll('#transcript li')];
            const state = document.getElementById('status').dataset.state;
            const fresh = lines.some((l) => Number(l.dataset.seq) > after
                && ['gather', 'record'].includes(l.dataset.kind));
            return (fresh && ['gather', 'record'].includes(state)) || state === 'ended';
        }""",
        arg=after_seq,
        timeout=timeout * 1000,
    )


def press_keys(page: Any, keys: str) -> None:
    """Press keys on the page's keypad and wait until the hotline listens again."""
    before = max_seq(page)
    for key in keys:
        page.locator(f"#keypad button[data-key='{key}']").click()
    expected = len(keys)
    page.wait_for_function(
        """([after, expected]) => [...document.querySelectorAll("#transcript li[data-kind='dtmf']")]
            .filter((l) => Number(l.dataset.seq) > after).length >= expected""",
        arg=[before, expected],
    )
    wait_listening(page, before)


def _spelled(text: str, word: str, minimum: int) -> str | None:
    """Digits read one by one after ``word`` in a sentence ("... is 4, 8, 1, 5.")."""
    for match in re.finditer(re.escape(word), text, re.IGNORECASE):
        sentence = re.split(r"\.(?:\s|$)", text[match.end() :], maxsplit=1)[0]
        found = re.search(r"(\d(?:[\s,]+\d)*)\s*$", sentence)
        if found:
            digits = re.sub(r"\D", "", found.group(1))
            if len(digits) >= minimum:
                return digits
    return None


def read_back(page: Any, timeout: float = 20.0) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = " ".join(say_lines(page))
        number, pin = _spelled(text, "report number", 6), _spelled(text, "PIN", 4)
        if number and pin:
            return number, pin
        time.sleep(0.1)
    raise AssertionError(f"no report number and PIN in {say_lines(page)}")

"""The dev phone: its JSON API (Flask test client) and the page in a real headless Chromium.

The API tests drive a simulator whose webhooks go into the same app, to a small voice menu
defined here (``/test-ivr/...``, signature checked), so they do not depend on the real voice
menu. The incoming-call tests use the real thing instead: a Critical tip for the sample
directory's Lakeview High School, the dispatcher placing its alert calls through the app's
telephony port (the simulator), and the real alert call's webhooks. The browser tests serve the
app over real HTTP, as ``make run`` does.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
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
from hotline.dev import phone as dev_phone
from hotline.directory.cli import load_sample_if_empty
from hotline.email.dev import DevOutbox
from hotline.email.fake import FakeEmail
from hotline.models import (
    Channel,
    Contact,
    ContactRole,
    PhoneNumber,
    School,
    Tip,
    TipLevel,
)
from hotline.services import hotline
from hotline.telephony.ports import CallRequest
from hotline.telephony.simulated import (
    HttpWebhookTransport,
    SimulatedPhoneNetwork,
    WebhookTransport,
)
from tests.sim_support import FlaskClientTransport

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


# --- a small voice menu the API tests call through the simulator --------------------------------

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


# --- the API ------------------------------------------------------------------------------------


def test_root_redirects_to_the_page_and_the_page_loads(dev_app: Flask) -> None:
    client = dev_app.test_client()
    root = client.get("/")
    assert root.status_code == 302
    assert root.headers["Location"] == "/dev/phone"
    page = client.get("/dev/phone")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Call the hotline" in html and 'aria-live="polite"' in html
    assert 'id="incoming"' in html and 'id="emails"' in html and 'sandbox=""' in html
    assert 'data-api="/dev/phone/api"' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("devphone.js", "devphone.css"):
        assert client.get(f"/dev/phone/static/{asset}").status_code == 200
    state = client.get(f"{API}/state").get_json()
    assert state["hotline_number"] == "+15555550100"
    assert state["default_caller"] == CALLER
    assert state["calls"] == []


def test_a_call_goes_through_the_signed_webhooks(dev_app: Flask) -> None:
    dialed = post(dev_app, "/dial", {"from": CALLER})
    assert dialed.status_code == 201, dialed.get_json()
    sid = dialed.get_json()["call_sid"]
    assert dialed.get_json()["call"]["waiting_for"] == "gather"
    assert dialed.get_json()["call"]["gather_inputs"] == ["dtmf", "speech"]

    feed = events(dev_app)
    says = [e for e in feed["events"] if e["kind"] == "say"]
    assert [(e["text"], e["language"], e["voice"]) for e in says] == [
        ("Welcome to the test line.", "en-US", "Polly.Joanna"),
        ("Marque uno o diga algo.", "es-US", "Polly.Lupe"),
    ]
    assert all(e["call_sid"] == sid and e["channel"] == "call" for e in feed["events"])
    assert says[0]["status"] == "in-progress" and says[0]["direction"] == "inbound"
    assert {"seq", "at", "kind", "text", "language", "voice", "status"} <= set(says[0])
    assert [c["sid"] for c in feed["calls"]] == [sid]

    assert post(dev_app, "/digits", {"call_sid": sid, "digits": "1"}).status_code == 200
    answer = post(dev_app, "/recording", {"call_sid": sid, "text": "Someone has a knife"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["call"]["status"] == "completed"

    received = stub_calls(dev_app)
    assert [path for path, _ in received] == [
        "/test-ivr/voice",
        "/test-ivr/menu",
        "/test-ivr/recorded",
    ]
    assert received[0][1]["From"] == CALLER
    assert received[1][1]["Digits"] == "1"
    assert received[2][1]["Digits"] == "#"
    later = events(dev_app, feed["cursor"])
    kinds = [e["kind"] for e in later["events"]]
    assert "dtmf" in kinds and "recording" in kinds
    recording = next(e for e in later["events"] if e["kind"] == "recording")
    assert recording["text"] == "Someone has a knife"
    assert later["events"][-1]["status"] == "completed"
    assert events(dev_app, later["cursor"])["events"] == []


def test_speech_audio_recording_and_hang_up(dev_app: Flask) -> None:
    sid = post(dev_app, "/dial", {"from": "+15555550177"}).get_json()["call_sid"]
    spoken = post(dev_app, "/speech", {"call_sid": sid, "text": "Lakeview High", "confidence": 0.8})
    assert spoken.status_code == 200
    assert stub_calls(dev_app)[-1][1]["SpeechResult"] == "Lakeview High"
    assert stub_calls(dev_app)[-1][1]["Confidence"] == "0.8"
    assert post(dev_app, "/hangup", {"call_sid": sid}).get_json()["call"]["status"] == "completed"

    sid = post(dev_app, "/dial", {"from": "anonymous"}).get_json()["call_sid"]
    post(dev_app, "/digits", {"call_sid": sid, "digits": "1"})
    audio = base64.b64encode(wav_bytes(3.0)).decode("ascii")
    answer = post(dev_app, "/recording", {"call_sid": sid, "audio_wav_base64": audio})
    assert answer.status_code == 200, answer.get_json()
    assert stub_calls(dev_app)[-1][1]["RecordingDuration"] == "3"
    assert stub_calls(dev_app)[0][1]["From"] == "+15555550177"
    assert stub_calls(dev_app)[-1][1]["From"] == "anonymous"

    call = dev_app.test_client().get(f"{API}/calls/{sid}").get_json()
    assert call["call"]["status"] == "completed"
    assert any(e["kind"] == "recording" for e in call["events"])


def test_events_page_through_a_long_backlog(
    dev_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        post(dev_app, "/dial", {"from": CALLER})
    monkeypatch.setattr(dev_phone, "MAX_EVENTS", 4)
    cursor, seen = 0, []
    while True:
        page = events(dev_app, cursor)
        assert len(page["events"]) <= 4
        seen += [e["seq"] for e in page["events"]]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert seen == sorted(set(seen)) and len(seen) > 12
    client = dev_app.test_client()
    bad = client.get(f"{API}/events?cursor=minus-one")
    assert bad.status_code == 400 and bad.get_json()["ok"] is False


def test_cross_site_requests_are_refused(dev_app: Flask) -> None:
    client = dev_app.test_client()
    sim = hotline(dev_app).simulator
    assert sim is not None
    url = f"{API}/dial"
    body = {"from": CALLER}
    # What a form on another site can send: no custom header, a form content type.
    form = client.post(url, data=body)
    assert form.status_code == 403 and form.get_json()["code"] == "cross-site"
    no_header = client.post(url, json=body)
    assert no_header.status_code == 403
    not_json = client.post(
        url, data="from=%2B15555550123", headers=HEADERS, content_type="text/plain"
    )
    assert not_json.status_code == 415 and not_json.get_json()["ok"] is False
    foreign = client.post(url, json=body, headers={**HEADERS, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    fetch_site = client.post(url, json=body, headers={**HEADERS, "Sec-Fetch-Site": "cross-site"})
    assert fetch_site.status_code == 403
    rebound = client.post(url, json=body, headers={**HEADERS, "Host": "evil.example"})
    assert rebound.status_code == 403
    assert client.get(f"{API}/events", headers={"Host": "evil.example"}).status_code == 403
    # The preflight a cross-site fetch with the header would need is never granted.
    preflight = client.options(
        url,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-dev-phone",
        },
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert sim.calls() == []
    # The page's own requests pass.
    same_origin = client.post(
        url,
        json=body,
        headers={**HEADERS, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status_code == 201
    assert len(sim.calls()) == 1


def test_handset_errors_are_json_answers_not_500(dev_app: Flask) -> None:
    sid = post(dev_app, "/dial", {"from": CALLER}).get_json()["call_sid"]
    not_recording = post(dev_app, "/recording", {"call_sid": sid, "text": "hello"})
    assert not_recording.status_code == 409
    assert "no <Record> is listening" in not_recording.get_json()["error"]
    assert post(dev_app, "/hangup", {"call_sid": sid}).status_code == 200

    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/digits", {"call_sid": sid, "digits": "5"}, 409),  # the call has ended
        ("/speech", {"call_sid": sid, "text": "hello"}, 409),
        ("/recording", {"call_sid": sid, "text": "hello"}, 409),
        ("/digits", {"call_sid": "CA" + "0" * 32, "digits": "5"}, 409),  # no such call
        ("/digits", {"call_sid": "nonsense", "digits": "5"}, 400),
        ("/digits", {"call_sid": sid, "digits": "12a"}, 400),
        ("/digits", {"call_sid": sid}, 400),
        ("/speech", {"call_sid": sid, "text": "  "}, 400),
        ("/speech", {"call_sid": sid, "text": "hi", "confidence": 7}, 400),
        ("/recording", {"call_sid": sid, "audio_wav_base64": "bm90IGEgd2F2"}, 400),
        ("/recording", {"call_sid": sid, "audio_wav_base64": "***"}, 400),
        ("/dial", {"from": "555-0123"}, 400),
        ("/dial", {"from": "+15555550100"}, 400),  # the hotline itself
        ("/dial", {}, 400),
    ]
    for path, body, status in cases:
        answer = post(dev_app, path, body)
        data = answer.get_json()
        assert (path, answer.status_code) == (path, status), data
        assert data["ok"] is False and data["error"], (path, body)
    assert (
        "has ended"
        in post(dev_app, "/digits", {"call_sid": sid, "digits": "5"}).get_json()["error"]
    )
    array = dev_app.test_client().post(
        f"{API}/dial", data="[1]", headers=HEADERS, content_type="application/json"
    )
    assert array.status_code == 400 and array.get_json()["ok"] is False
    unknown = dev_app.test_client().get(f"{API}/calls/CA{'0' * 32}")
    assert unknown.status_code == 404 and unknown.get_json()["ok"] is False
    assert dev_app.test_client().get(f"{API}/dial").status_code == 405


def test_not_exposed_when_the_app_uses_twilio(make_app: Callable[..., Flask]) -> None:
    app = make_app()  # Twilio credentials: no simulator
    assert hotline(app).simulator is None
    client = app.test_client()
    assert client.get("/dev/phone").status_code == 404
    assert client.get(f"{API}/state").status_code == 404
    assert client.post(f"{API}/dial", json={"from": CALLER}, headers=HEADERS).status_code == 404
    assert client.get("/").status_code == 404
    assert "devphone" not in app.blueprints

    # Even registered by mistake, every route answers 404 without a simulator.
    other = make_app()
    other.register_blueprint(dev_phone.bp)
    client = other.test_client()
    for path in (
        "/",
        "/dev/phone",
        "/dev/phone/static/devphone.js",
        f"{API}/state",
        f"{API}/events?cursor=0",
        f"{API}/emails?cursor=0",
        f"{API}/emails/1",
        f"{API}/calls/CA{'0' * 32}/contacts",
    ):
        assert client.get(path).status_code == 404, path
    for action in ("dial", "answer", "ring", "decline"):
        body = {"from": CALLER, "call_sid": "CA" + "0" * 32}
        assert client.post(f"{API}/{action}", json=body, headers=HEADERS).status_code == 404


# --- incoming calls: the alert calls the app places ----------------------------------------------


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


def test_alert_calls_ring_as_incoming_and_a_person_confirms_with_1(dev_app: Flask) -> None:
    load_sample(dev_app)
    report = critical_tip(dev_app)
    # Whatever else the dispatcher does, the principal's alert call rings first. Two more calls
    # the app places at the same moment stand for a parallel escalation (how many calls the
    # dispatcher places at once is its business, tested with it).
    for number in (ASSISTANT, PSAP):
        place(dev_app, number, HOLD_TWIML)
    ringing = incoming(dev_app)
    assert {PRINCIPAL, ASSISTANT, PSAP} <= set(ringing)
    principal = ringing[PRINCIPAL]
    assert principal["status"] == "ringing" and principal["waiting_for"] == "ringing"
    assert principal["from"] == "+15555550100" and principal["answered_at"] is None
    feed = events(dev_app)
    placed = [e for e in feed["events"] if e["call_sid"] == principal["sid"]]
    assert [e["kind"] for e in placed][:3] == ["call", "status", "status"]
    assert placed[0]["direction"] == "outbound-api" and placed[-1]["status"] == "ringing"

    who = dev_app.test_client().get(f"{API}/calls/{principal['sid']}/contacts").get_json()
    assert who["ok"] and who["number"] == PRINCIPAL
    assert who["contacts"] == [
        {
            "name": "Angela Brooks (Principal)",
            "role": "school_contact",
            "role_words": "school contact",
            "priority": 1,
            "school": "Lakeview High School",
            "district": "Lakeview Unified School District",
            "active": True,
        }
    ]
    psap = dev_app.test_client().get(f"{API}/calls/{ringing[PSAP]['sid']}/contacts").get_json()
    assert [(c["name"], c["role_words"]) for c in psap["contacts"]] == [
        ("Lakeview County Emergency Communications (admin line)", "911 centre (PSAP)")
    ]
    # The sample's duty supervisor: no district, no school.
    duty = dev_app.test_client().get(f"{API}/calls/{place(dev_app, DUTY, HOLD_TWIML)}/contacts")
    assert duty.get_json()["contacts"] == [
        {
            "name": "Jordan Avery (Hotline Duty Supervisor)",
            "role": "duty",
            "role_words": "hotline duty supervisor",
            "priority": 1,
            "school": None,
            "district": None,
            "active": True,
        }
    ]

    answered = post(dev_app, "/answer", {"call_sid": principal["sid"], "by": "human"})
    assert answered.status_code == 200, answered.get_json()
    call = answered.get_json()["call"]
    assert call["status"] == "in-progress" and call["waiting_for"] == "gather"
    log = call_log(dev_app, principal["sid"])
    assert [e["text"] for e in log if e["kind"] == "answer"] == ["answered by human"]
    heard = said(log)
    assert "critical safety report for Lakeview High School" in heard
    assert ", ".join(report) in heard and "Press 1 to confirm" in heard

    # Each call is answered on its own: the others still ring.
    still = incoming(dev_app)
    assert still[ASSISTANT]["waiting_for"] == "ringing" and still[PSAP]["waiting_for"] == "ringing"
    colleague = post(dev_app, "/answer", {"call_sid": still[ASSISTANT]["sid"]})  # by: human
    assert colleague.get_json()["call"]["status"] == "in-progress"
    assert said(call_log(dev_app, still[ASSISTANT]["sid"])) == "Please hold."
    assert incoming(dev_app)[PSAP]["waiting_for"] == "ringing"
    assert incoming(dev_app)[PRINCIPAL]["waiting_for"] == "gather"

    pressed = post(dev_app, "/digits", {"call_sid": principal["sid"], "digits": "1"})
    assert pressed.status_code == 200
    assert pressed.get_json()["call"]["status"] == "completed"
    log = call_log(dev_app, principal["sid"])
    assert f"Your confirmation of report {', '.join(report)} is recorded" in said(log)
    assert [e["text"] for e in log if e["kind"] == "status"][-1] == "completed"
    with hotline(dev_app).db.sessionmaker() as session:
        tip = session.scalars(select(Tip).where(Tip.report_number == report)).one()
        assert tip.level is TipLevel.CRITICAL
    # The other calls are calls of their own.
    after = incoming(dev_app)
    assert after[ASSISTANT]["status"] == "in-progress" and after[PSAP]["status"] == "ringing"


def test_the_voicemail_answers_and_the_machine_verdict_shows(
    dev_app: Flask, clock: ManualClock
) -> None:
    load_sample(dev_app)
    critical_tip(dev_app)
    sid = incoming(dev_app)[PRINCIPAL]["sid"]
    cursor = events(dev_app)["cursor"]
    answered = post(dev_app, "/answer", {"call_sid": sid, "by": "machine"})
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["call"]["status"] == "in-progress"
    assert answered.get_json()["call"]["answered_by"] is None  # the verdict is not in yet

    # Asynchronous detection: the alert plays at once, the verdict comes when detection ends.
    clock.advance(10)
    sim = hotline(dev_app).simulator
    assert sim is not None
    sim.tick()
    later = [e for e in events(dev_app, cursor)["events"] if e["call_sid"] == sid]
    kinds = [e["kind"] for e in later]
    assert "answer" in kinds and "amd" in kinds
    assert next(e for e in later if e["kind"] == "answer")["text"] == "answered by machine_end_beep"
    assert next(e for e in later if e["kind"] == "amd")["text"] == "machine_end_beep"
    assert any(e["kind"] == "say" and "critical safety report" in e["text"] for e in later)
    call = dev_app.test_client().get(f"{API}/calls/{sid}").get_json()["call"]
    assert call["answered_by"] == "machine_end_beep"


def test_declined_and_unanswered_calls_end_busy_and_no_answer(
    dev_app: Flask, clock: ManualClock
) -> None:
    load_sample(dev_app)
    critical_tip(dev_app)
    principal = incoming(dev_app)[PRINCIPAL]["sid"]
    declined = post(dev_app, "/decline", {"call_sid": principal})
    assert declined.status_code == 200, declined.get_json()
    assert declined.get_json()["call"]["status"] == "busy"
    log = call_log(dev_app, principal)
    assert [(e["kind"], e["text"]) for e in log if e["kind"] != "webhook"][-2:] == [
        ("hangup", "declined"),
        ("status", "busy"),
    ]

    sid = place(dev_app, PSAP, HOLD_TWIML, ring_timeout=25)
    left = post(dev_app, "/ring", {"call_sid": sid})
    assert left.status_code == 200, left.get_json()
    data = left.get_json()
    assert data["call"]["status"] == "ringing"
    assert data["rings_until"] == (clock.now() + timedelta(seconds=25)).isoformat()
    sim = hotline(dev_app).simulator
    assert sim is not None
    clock.advance(24)
    sim.tick()
    assert dev_app.test_client().get(f"{API}/calls/{sid}").get_json()["call"]["live"]
    clock.advance(2)
    sim.tick()
    call = dev_app.test_client().get(f"{API}/calls/{sid}").get_json()["call"]
    assert call["status"] == "no-answer" and not call["live"]
    texts = [(e["kind"], e["text"]) for e in call_log(dev_app, sid)]
    assert ("call", "left ringing") in texts and ("call", "nobody answered") in texts

    # What cannot happen is a JSON answer, never a 500.
    inbound = post(dev_app, "/dial", {"from": CALLER}).get_json()["call_sid"]
    ringing = place(dev_app, SRO, HOLD_TWIML)
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/answer", {"call_sid": principal}, 409),  # declined: it has ended
        ("/ring", {"call_sid": sid}, 409),  # it has ended
        ("/decline", {"call_sid": sid}, 409),
        ("/answer", {"call_sid": inbound}, 409),  # the hotline does not ring the caller
        ("/ring", {"call_sid": inbound}, 409),
        ("/decline", {"call_sid": inbound}, 409),
        ("/answer", {"call_sid": "CA" + "0" * 32}, 409),  # no such call
        ("/answer", {"call_sid": ringing, "by": "robot"}, 400),
        ("/answer", {"call_sid": ringing, "by": ["human"]}, 400),
        ("/answer", {"by": "human"}, 400),
        ("/ring", {"call_sid": "nonsense"}, 400),
        ("/decline", {}, 400),
    ]
    for path, body, status in cases:
        answer = post(dev_app, path, body)
        got = answer.get_json()
        assert (path, body, answer.status_code) == (path, body, status), got
        assert got["ok"] is False and got["error"], (path, body)
    # Answered once, it cannot be answered, declined or left ringing again.
    assert post(dev_app, "/answer", {"call_sid": ringing}).status_code == 200
    for path in ("/answer", "/ring", "/decline"):
        again = post(dev_app, path, {"call_sid": ringing})
        assert again.status_code == 409 and "ringing outbound call" in again.get_json()["error"]


def test_contacts_sharing_a_number_and_numbers_outside_the_directory(dev_app: Flask) -> None:
    load_sample(dev_app)
    services = hotline(dev_app)
    now = services.clock.now()
    with services.db.session() as session:
        principal = session.scalars(
            select(Contact).join(PhoneNumber).where(PhoneNumber.e164 == PRINCIPAL)
        ).one()
        for name, active in (("Lakeview High front desk", True), ("Former principal", False)):
            session.add(
                Contact(
                    district_id=principal.district_id,
                    school_id=principal.school_id,
                    role=ContactRole.SCHOOL_CONTACT,
                    priority=4,
                    name=name,
                    phone_number_id=principal.phone_number_id,
                    active=active,
                    created_at=now,
                    updated_at=now,
                )
            )
    for number in (PRINCIPAL, "+13125559999"):
        place(dev_app, number, "<Response><Say>Test.</Say></Response>")
    ringing = incoming(dev_app)
    shared = dev_app.test_client().get(f"{API}/calls/{ringing[PRINCIPAL]['sid']}/contacts")
    assert [(c["name"], c["active"]) for c in shared.get_json()["contacts"]] == [
        ("Angela Brooks (Principal)", True),
        ("Lakeview High front desk", True),
        ("Former principal", False),
    ]
    unknown = dev_app.test_client().get(f"{API}/calls/{ringing['+13125559999']['sid']}/contacts")
    assert unknown.status_code == 200 and unknown.get_json()["contacts"] == []
    missing = dev_app.test_client().get(f"{API}/calls/CA{'0' * 32}/contacts")
    assert missing.status_code == 404 and missing.get_json()["ok"] is False
    # The inline TwiML plays to whoever answers.
    sid = ringing["+13125559999"]["sid"]
    assert post(dev_app, "/answer", {"call_sid": sid}).get_json()["call"]["status"] == "completed"
    assert said(call_log(dev_app, sid)) == "Test."


def test_development_emails_are_listed_and_read(dev_app: Flask) -> None:
    client = dev_app.test_client()
    empty = client.get(f"{API}/emails?cursor=0").get_json()
    assert empty == {"ok": True, "available": True, "emails": [], "cursor": 0, "reset": False}
    load_sample(dev_app)
    report = critical_tip(dev_app)

    listed = client.get(f"{API}/emails?cursor=0").get_json()
    mails = listed["emails"]
    assert listed["ok"] and listed["cursor"] == mails[-1]["seq"] and not listed["reset"]
    # A Critical tip: an e-mail to every point of contact of the school at once.
    recipients = {address for m in mails for address in m["to"]}
    assert {"a.brooks@lakeview.example.org", "d.kim@lakeview.example.org"} <= recipients
    first = mails[0]
    assert first["subject"].startswith("[CRITICAL]") and report in first["subject"]
    assert first["from"] == "hotline@localhost" and first["has_html"] is True
    assert {"seq", "message_id", "sent_at", "from", "to", "subject", "has_html"} == set(first)

    read = client.get(f"{API}/emails/{first['seq']}").get_json()["email"]
    assert read["subject"] == first["subject"] and report in read["text"]
    assert read["html"].lstrip().startswith("<!DOCTYPE html>")
    assert client.get(f"{API}/emails?cursor={listed['cursor']}").get_json()["emails"] == []
    # A cursor from before a restart of the app: everything again, and the page starts over.
    restarted = client.get(f"{API}/emails?cursor={listed['cursor'] + 50}").get_json()
    assert restarted["reset"] is True and len(restarted["emails"]) == len(mails)

    gone = client.get(f"{API}/emails/{listed['cursor'] + 1}")
    assert gone.status_code == 404 and gone.get_json()["ok"] is False
    assert client.get(f"{API}/emails/0").status_code == 404
    bad = client.get(f"{API}/emails?cursor=-1")
    assert bad.status_code == 400 and bad.get_json()["ok"] is False

    # E-mail through SMTP (a training install with SMTP_URL set): nothing is kept to show.
    assert isinstance(hotline(dev_app).email, DevOutbox)
    hotline(dev_app).email = FakeEmail()
    smtp = client.get(f"{API}/emails?cursor=0").get_json()
    assert smtp["ok"] and smtp["available"] is False and smtp["emails"] == []
    assert client.get(f"{API}/emails/1").status_code == 404


def test_incoming_call_actions_are_refused_cross_site(dev_app: Flask) -> None:
    load_sample(dev_app)
    critical_tip(dev_app)
    sid = incoming(dev_app)[PRINCIPAL]["sid"]
    client = dev_app.test_client()
    for action in ("answer", "ring", "decline"):
        url = f"{API}/{action}"
        assert client.post(url, data={"call_sid": sid}).status_code == 403
        assert client.post(url, json={"call_sid": sid}).status_code == 403
        foreign = client.post(
            url, json={"call_sid": sid}, headers={**HEADERS, "Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
    assert incoming(dev_app)[PRINCIPAL]["waiting_for"] == "ringing"
    rebound = client.get(f"{API}/emails?cursor=0", headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    contacts = client.get(f"{API}/calls/{sid}/contacts", headers={"Host": "evil.example"})
    assert contacts.status_code == 403


# --- in a real browser --------------------------------------------------------------------------


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
def page(browser: Any, serve: Callable[..., Served]) -> Iterator[Any]:
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


def test_browser_dials_the_hotline_and_shows_what_it_says(
    browser: Any, page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve()
    open_phone(page, served)
    caller = page.get_by_label("Your number (caller ID)")
    expect(caller).to_have_value(CALLER)
    expect(page.get_by_role("button", name="Hang up")).to_be_disabled()
    page.get_by_role("button", name="Call the hotline").click()

    # Whatever the voice menu does (or an application error while it is missing), the caller
    # sees it: a spoken line with its language, or an error line.
    first = page.locator("#transcript li[data-kind='say'], #transcript li[data-kind='error']").first
    expect(first).to_be_visible()
    if page.locator("#transcript li[data-kind='error']").count():
        expect(page.locator("#transcript li.error").first).to_contain_text("Application error")
        expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    else:
        tag = page.locator("#transcript li[data-kind='say'] .lang").first.inner_text()
        assert re.fullmatch(r"[a-z]{2}-[A-Z]{2}", tag), tag
        hang_up = page.get_by_role("button", name="Hang up")
        expect(hang_up).to_be_enabled()
        hang_up.click()
        expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.locator("#calls tbody tr")).to_have_count(1)
    expect(page.locator("#calls tbody tr").first).to_contain_text(f"{CALLER} called the hotline")
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone.png"), full_page=True)


def test_browser_keypad_speech_recording_and_errors(
    browser: Any, page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True)
    open_phone(page, served)
    caller = page.get_by_label("Your number (caller ID)")
    caller.fill("+15555550188")  # play another caller
    caller.press("Enter")  # Enter in the field dials

    spanish = page.locator("#transcript li[data-kind='say']", has_text="Marque uno")
    expect(spanish).to_be_visible()
    expect(spanish.locator(".lang")).to_have_text("es-US")
    assert spanish.locator(".text").get_attribute("lang") == "es-US"
    expect(page.locator("#status")).to_have_text(re.compile("listening for keypad or speech"))
    assert stub_calls(served.app)[0][1]["From"] == "+15555550188"

    # A recording while nothing records: the simulator's refusal is shown, the call goes on.
    page.get_by_label("What you say after the beep").fill("too early")
    page.get_by_role("button", name="Send recording, then #").click()
    expect(page.get_by_role("alert")).to_contain_text("no <Record> is listening")

    # A reloaded page picks the live call up where it was.
    page.reload()
    page.wait_for_selector("#devphone[data-ready='true']")
    expect(page.locator("#transcript li[data-kind='say']", has_text="Marque uno")).to_be_visible()
    expect(page.locator("#status")).to_have_text(re.compile("listening for keypad or speech"))
    expect(page.locator("#calls tbody tr")).to_have_count(1)

    # Keys typed on the keyboard outside the text fields reach the keypad.
    before = max_seq(page)
    page.locator("#transcript-heading").focus()
    page.keyboard.press("1")
    expect(page.locator("#transcript li[data-kind='dtmf']")).to_contain_text("pressed 1")
    wait_listening(page, before)
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    expect(page.get_by_role("alert")).to_be_hidden()
    page.get_by_label("What you say after the beep").fill("A fight is planned at lunch.")
    page.get_by_role("button", name="Send recording, then #").click()
    expect(page.locator("#transcript li[data-kind='recording']")).to_contain_text(
        "A fight is planned at lunch."
    )
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
        "Got your recording"
    )
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.get_by_role("button", name="Call the hotline")).to_be_enabled()

    # Second call: speech, then the hang-up button.
    page.get_by_role("button", name="Call the hotline").click()
    expect(page.locator("#transcript li[data-kind='say']", has_text="Marque uno")).to_be_visible()
    expect(page.locator("#transcript li")).not_to_contain_text(["Got your recording"])
    page.get_by_label("What you say when the hotline listens for speech").fill("Lakeview High")
    page.get_by_role("button", name="Say it").click()
    expect(page.locator("#transcript li[data-kind='speech']")).to_contain_text("Lakeview High")
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text("Press 9 to end")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.get_by_role("button", name="5")).to_be_disabled()
    expect(page.locator("#calls tbody tr")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-keypad.png"), full_page=True)


def test_browser_records_with_the_microphone(browser: Any, serve: Callable[..., Served]) -> None:
    """MediaRecorder on Chromium's fake microphone (a beep), converted to a WAV in the page."""
    from playwright.sync_api import expect

    served = serve(stub=True)
    mic_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    try:
        context = mic_browser.new_context()
        context.grant_permissions(["microphone"], origin=served.url)
        page = context.new_page()
        page.set_default_timeout(20_000)
        open_phone(page, served)
        page.get_by_role("button", name="Call the hotline").click()
        expect(page.locator("#status")).to_have_text(re.compile("listening"))
        page.get_by_role("button", name="1").click()
        expect(page.locator("#status")).to_have_text(re.compile("recording"))
        mic = page.get_by_role("button", name="Record with microphone")
        mic.click()
        stop = page.get_by_role("button", name="Stop and send recording")
        expect(stop).to_have_attribute("aria-pressed", "true")
        page.wait_for_timeout(1500)
        stop.click()
        expect(page.locator("#transcript li[data-kind='recording']")).to_contain_text(
            "bytes of audio"
        )
        expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
            "Got your recording"
        )
        path, params = stub_calls(served.app)[-1]
        assert path == "/test-ivr/recorded" and int(params["RecordingDuration"]) >= 1
        sim = hotline(served.app).simulator
        assert sim is not None
        (recording,) = sim.recordings()
        audio = sim.fetch_media(recording.url).content
        with wave.open(io.BytesIO(audio)) as wav:
            assert wav.getframerate() == 8000 and wav.getnchannels() == 1
            assert wav.getnframes() >= 8000
        context.close()
    finally:
        mic_browser.close()


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


def test_spelled_digits_are_read_off_a_sentence() -> None:
    said = (
        "Your report number is 4, 8, 1, 5, 1, 6, 2. Your PIN is 9 0 1 2. "
        "To hear your report number and PIN again, press 1."
    )
    assert _spelled(said, "report number", 6) == "4815162"
    assert _spelled(said, "PIN", 4) == "9012"
    assert _spelled("To hear your report number and PIN again, press 1.", "PIN", 4) is None


def test_browser_makes_a_report_and_follows_it_up(
    browser: Any, page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(sample=True)
    assert any(r.rule == "/twilio/voice" for r in served.app.url_map.iter_rules())
    open_phone(page, served)
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    greeting = " ".join(say_lines(page))
    assert re.search(r"9[\s,]*1[\s,]*1", greeting) and re.search(r"9[\s,]*8[\s,]*8", greeting)
    expect(page.locator("#transcript li[data-kind='say'] .lang").first).to_have_text("en-US")

    press_keys(page, "1")  # English
    press_keys(page, "1")  # a new report
    press_keys(page, "3")  # bullying
    press_keys(page, "1101#")  # Lakeview High School
    assert "Lakeview High School" in " ".join(say_lines(page)[-3:])
    press_keys(page, "1")  # that is right
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    page.get_by_label("What you say after the beep").fill(
        "Kids keep pushing a boy into the lockers before first period."
    )
    page.get_by_role("button", name="Send recording, then #").click()
    number, pin = read_back(page)
    assert "application error" not in " ".join(say_lines(page)).lower()
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    with hotline(served.app).db.session() as session:
        tip = session.scalar(select(Tip).where(Tip.report_number == number))
        assert tip is not None

    # Follow up with the report number and PIN read off the page.
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    press_keys(page, "1")  # English
    press_keys(page, "2")  # follow up
    press_keys(page, number + "#")
    before = max_seq(page)
    press_keys(page, pin + "#")
    after_pin = page.locator("#transcript li[data-kind='say']").evaluate_all(
        "(lines, after) => lines.filter((l) => Number(l.dataset.seq) > after)"
        ".map((l) => l.querySelector('.text').textContent)",
        before,
    )
    assert after_pin, "the hotline said nothing after the PIN"
    joined = " ".join(after_pin).lower()
    assert "do not match" not in joined and "application error" not in joined, after_pin
    assert re.search(r"message|more information", joined), after_pin
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-report.png"), full_page=True)


def test_browser_answers_the_alert_call_of_its_own_report_and_reads_the_email(
    browser: Any, page: Any, serve: Callable[..., Served]
) -> None:
    """A Critical report made on the page's keypad: the dispatcher in the embedded worker calls
    the school's principal, whose call rings on the same page; answered, it reads the alert and
    takes the confirmation. The report's e-mails land in the E-mails panel."""
    from playwright.sync_api import expect

    served = serve(sample=True)
    open_phone(page, served)
    expect(page.locator("#no-incoming")).to_be_visible()
    expect(page.locator("#no-emails")).to_be_visible()
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    press_keys(page, "1")  # English
    press_keys(page, "1")  # a new report
    press_keys(page, "1")  # a threat of violence, a weapon or a planned attack: Critical
    press_keys(page, "1101#")  # Lakeview High School
    press_keys(page, "1")  # that is right: the tip exists, the dispatcher sends it out
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    page.get_by_label("What you say after the beep").fill("A student showed a gun in the gym.")
    page.get_by_role("button", name="Send recording, then #").click()
    number, _ = read_back(page)

    card = page.locator("#incoming li.ring-card", has_text="Angela Brooks")
    expect(card.locator("h3")).to_have_text(
        f"Incoming call to Angela Brooks (Principal) ({PRINCIPAL}) from the hotline"
    )
    expect(card).to_contain_text("school contact, Lakeview High School")
    expect(card.locator(".ring-state")).to_contain_text("Ringing")
    assert card.get_attribute("data-state") == "ringing"
    for name in ("Answer", "Let voicemail answer", "Let it ring", "Decline"):
        expect(card.get_by_role("button", name=name, exact=True)).to_be_visible()
    # A second call at the same moment (as a parallel escalation places): it rings on its own.
    place(served.app, ASSISTANT, HOLD_TWIML)
    second = page.locator("#incoming li.ring-card", has_text="Daniel Kim")
    expect(second.locator(".ring-state")).to_contain_text("Ringing")

    card.get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("#transcript-call")).to_contain_text("Angela Brooks")
    alert = page.locator("#transcript li[data-kind='say']", has_text="critical safety report")
    expect(alert).to_contain_text("Lakeview High School")
    expect(alert).to_contain_text(", ".join(number))
    expect(card.locator(".ring-state")).to_contain_text("Connected: you answered")
    expect(second.locator(".ring-state")).to_contain_text("Ringing")
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-incoming.png"), full_page=True)

    # The second call answered moves the keypad to it; the switch brings it back.
    second.get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("#transcript li[data-kind='say']").first).to_have_text(
        re.compile("Please hold")
    )
    switch = page.get_by_label("The keypad and transcript follow")
    expect(switch).to_be_visible()
    expect(card.get_by_role("button", name="Use the keypad on this call")).to_be_visible()
    switch.select_option(card.get_attribute("data-sid"))
    expect(alert).to_be_visible()
    page.locator("#keypad button[data-key='1']").click()
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
        f"Your confirmation of report {', '.join(number)} is recorded"
    )
    expect(card.locator(".ring-state")).to_contain_text("Call ended: completed")
    expect(card.get_by_role("button", name="Dismiss")).to_be_visible()
    second.get_by_role("button", name="Hang up").click()
    expect(second.locator(".ring-state")).to_contain_text("Call ended: completed")

    # The report's e-mails: the CRITICAL one to each point of contact (then, as the recording
    # came in, an update).
    critical = page.locator(".mail-subject", has_text=re.compile(rf"^\[CRITICAL\] .*{number}"))
    mail = page.locator("#emails button", has=critical, has_text="a.brooks@lakeview.example.org")
    expect(mail).to_be_visible()
    mail.click()
    view = page.locator("#mail-view")
    expect(view).to_be_visible()
    expect(page.locator("#mail-subject")).to_contain_text(f"[CRITICAL] Safety tip {number}")
    expect(page.locator("#mail-text")).to_contain_text(number)
    page.get_by_text("HTML version").click()
    html = page.frame_locator("#mail-html")
    expect(html.locator("body")).to_contain_text(number)
    assert page.locator("#mail-html").get_attribute("sandbox") == ""
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-emails.png"), full_page=True)
    page.get_by_role("button", name="Close").click()
    expect(view).to_be_hidden()

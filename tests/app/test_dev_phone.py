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
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from hotline.core.clock import ManualClock
from hotline.dev import phone as dev_phone
from hotline.email.dev import DevOutbox
from hotline.email.fake import FakeEmail
from hotline.models import (
    Contact,
    ContactRole,
    PhoneNumber,
    Tip,
    TipLevel,
)
from hotline.services import hotline
from hotline.telephony.ports import SmsRequest, TelephonyError
from tests.support.dev_phone import (
    API,
    ASSISTANT,
    CALLER,
    DUTY,
    HEADERS,
    HOLD_TWIML,
    PRINCIPAL,
    PSAP,
    SRO,
    _spelled,
    call_log,
    critical_tip,
    events,
    incoming,
    load_sample,
    place,
    post,
    said,
    stub_calls,
    wav_bytes,
)

# --- a small voice menu the API tests call through the simulator --------------------------------


# --- the API ------------------------------------------------------------------------------------


def test_root_redirects_to_the_page_and_the_page_loads(dev_app: Flask) -> None:
    client = dev_app.test_client()
    root = client.get("/")
    assert root.status_code == 302
    assert root.headers["Location"] == "/dev/phone"
    page = client.get("/dev/phone")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Call the hotline" in html
    assert 'aria-live="polite"' in html
    assert 'id="incoming"' in html
    assert 'id="emails"' in html
    assert 'sandbox=""' in html
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
    assert says[0]["status"] == "in-progress"
    assert says[0]["direction"] == "inbound"
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
    assert "dtmf" in kinds
    assert "recording" in kinds
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
    assert seen == sorted(set(seen))
    assert len(seen) > 12
    client = dev_app.test_client()
    bad = client.get(f"{API}/events?cursor=minus-one")
    assert bad.status_code == 400
    assert bad.get_json()["ok"] is False


def test_cross_site_requests_are_refused(dev_app: Flask) -> None:
    client = dev_app.test_client()
    sim = hotline(dev_app).simulator
    assert sim is not None
    url = f"{API}/dial"
    body = {"from": CALLER}
    # What a form on another site can send: no custom header, a form content type.
    form = client.post(url, data=body)
    assert form.status_code == 403
    assert form.get_json()["code"] == "cross-site"
    no_header = client.post(url, json=body)
    assert no_header.status_code == 403
    not_json = client.post(
        url, data="from=%2B15555550123", headers=HEADERS, content_type="text/plain"
    )
    assert not_json.status_code == 415
    assert not_json.get_json()["ok"] is False
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
        assert data["ok"] is False, (path, body)
        assert data["error"], (path, body)
    assert (
        "has ended"
        in post(dev_app, "/digits", {"call_sid": sid, "digits": "5"}).get_json()["error"]
    )
    array = dev_app.test_client().post(
        f"{API}/dial", data="[1]", headers=HEADERS, content_type="application/json"
    )
    assert array.status_code == 400
    assert array.get_json()["ok"] is False
    unknown = dev_app.test_client().get(f"{API}/calls/CA{'0' * 32}")
    assert unknown.status_code == 404
    assert unknown.get_json()["ok"] is False
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
        f"{API}/texts",
        f"{API}/texts/SM{'0' * 32}/media/0",
    ):
        assert client.get(path).status_code == 404, path
    for action in ("dial", "answer", "ring", "decline", "texts", "texts/reachable", "patience"):
        body = {"from": CALLER, "call_sid": "CA" + "0" * 32}
        assert client.post(f"{API}/{action}", json=body, headers=HEADERS).status_code == 404


# --- incoming calls: the alert calls the app places ----------------------------------------------


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
    assert principal["status"] == "ringing"
    assert principal["waiting_for"] == "ringing"
    assert principal["from"] == "+15555550100"
    assert principal["answered_at"] is None
    feed = events(dev_app)
    placed = [e for e in feed["events"] if e["call_sid"] == principal["sid"]]
    assert [e["kind"] for e in placed][:3] == ["call", "status", "status"]
    assert placed[0]["direction"] == "outbound-api"
    assert placed[-1]["status"] == "ringing"

    who = dev_app.test_client().get(f"{API}/calls/{principal['sid']}/contacts").get_json()
    assert who["ok"]
    assert who["number"] == PRINCIPAL
    assert who["contacts"] == [
        {
            "name": "Angela Brooks (Principal)",
            "role": "school_contact",
            "role_words": "school contact",
            "priority": 1,
            "school": "Lakeview High School",
            "district": "Lakeview Unified School District",
            "time_zone": "America/Chicago",
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
            "time_zone": None,
            "active": True,
        }
    ]

    answered = post(dev_app, "/answer", {"call_sid": principal["sid"], "by": "human"})
    assert answered.status_code == 200, answered.get_json()
    call = answered.get_json()["call"]
    assert call["status"] == "in-progress"
    assert call["waiting_for"] == "gather"
    log = call_log(dev_app, principal["sid"])
    assert [e["text"] for e in log if e["kind"] == "answer"] == ["answered by human"]
    heard = said(log)
    assert "critical safety report for Lakeview High School" in heard
    assert ", ".join(report) in heard
    assert "Press 1 to confirm" in heard

    # Each call is answered on its own: the others still ring.
    still = incoming(dev_app)
    assert still[ASSISTANT]["waiting_for"] == "ringing"
    assert still[PSAP]["waiting_for"] == "ringing"
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
    assert after[ASSISTANT]["status"] == "in-progress"
    assert after[PSAP]["status"] == "ringing"


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
    assert "answer" in kinds
    assert "amd" in kinds
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
    assert call["status"] == "no-answer"
    assert not call["live"]
    texts = [(e["kind"], e["text"]) for e in call_log(dev_app, sid)]
    assert ("call", "left ringing") in texts
    assert ("call", "nobody answered") in texts

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
        assert got["ok"] is False, (path, body)
        assert got["error"], (path, body)
    # Answered once, it cannot be answered, declined or left ringing again.
    assert post(dev_app, "/answer", {"call_sid": ringing}).status_code == 200
    for path in ("/answer", "/ring", "/decline"):
        again = post(dev_app, path, {"call_sid": ringing})
        assert again.status_code == 409
        assert "ringing outbound call" in again.get_json()["error"]


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
    assert unknown.status_code == 200
    assert unknown.get_json()["contacts"] == []
    missing = dev_app.test_client().get(f"{API}/calls/CA{'0' * 32}/contacts")
    assert missing.status_code == 404
    assert missing.get_json()["ok"] is False
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
    assert listed["ok"]
    assert listed["cursor"] == mails[-1]["seq"]
    assert not listed["reset"]
    # A Critical tip: an e-mail to every point of contact of the school at once.
    recipients = {address for m in mails for address in m["to"]}
    assert {"a.brooks@lakeview.example.org", "d.kim@lakeview.example.org"} <= recipients
    first = mails[0]
    assert first["subject"].startswith("[CRITICAL]")
    assert report in first["subject"]
    assert first["from"] == "hotline@localhost"
    assert first["has_html"] is True
    assert {"seq", "message_id", "sent_at", "from", "to", "subject", "has_html"} == set(first)

    read = client.get(f"{API}/emails/{first['seq']}").get_json()["email"]
    assert read["subject"] == first["subject"]
    assert report in read["text"]
    assert read["html"].lstrip().startswith("<!DOCTYPE html>")
    assert client.get(f"{API}/emails?cursor={listed['cursor']}").get_json()["emails"] == []
    # A cursor from before a restart of the app: everything again, and the page starts over.
    restarted = client.get(f"{API}/emails?cursor={listed['cursor'] + 50}").get_json()
    assert restarted["reset"] is True
    assert len(restarted["emails"]) == len(mails)

    gone = client.get(f"{API}/emails/{listed['cursor'] + 1}")
    assert gone.status_code == 404
    assert gone.get_json()["ok"] is False
    assert client.get(f"{API}/emails/0").status_code == 404
    bad = client.get(f"{API}/emails?cursor=-1")
    assert bad.status_code == 400
    assert bad.get_json()["ok"] is False

    # E-mail through SMTP (a training install with SMTP_URL set): nothing is kept to show.
    assert isinstance(hotline(dev_app).email, DevOutbox)
    hotline(dev_app).email = FakeEmail()
    smtp = client.get(f"{API}/emails?cursor=0").get_json()
    assert smtp["ok"]
    assert smtp["available"] is False
    assert smtp["emails"] == []
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


# --- texts ---------------------------------------------------------------------------------------

#: The smallest PNG there is (1x1, transparent).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def texts(app: Flask) -> dict[str, dict[str, Any]]:
    """Every handset's conversation as the page reads it, by number."""
    answer = app.test_client().get(f"{API}/texts")
    assert answer.status_code == 200
    return {c["handset"]: c for c in answer.get_json()["conversations"]}


def test_a_text_reaches_the_hotline_and_its_answers_come_back_with_their_state(
    dev_app: Flask,
) -> None:
    load_sample(dev_app)
    sent = post(dev_app, "/texts", {"from": CALLER, "body": "A boy has a knife at Lakeview High"})
    assert sent.status_code == 201, sent.get_json()
    sid = sent.get_json()["message_sid"]
    mine, answer = sent.get_json()["conversation"]["texts"]
    assert (mine["sid"], mine["sender"], mine["status"]) == (sid, "handset", "received")
    assert mine["body"] == "A boy has a knife at Lakeview High"
    # The hotline's TwiML answer: the report number and PIN, delivered.
    assert (answer["sender"], answer["via"], answer["reply_to"]) == ("hotline", "reply", sid)
    assert answer["status"] == "delivered"
    with hotline(dev_app).db.session() as session:
        number = session.scalars(select(Tip.report_number)).one()
    assert f"Report {number}, PIN " in answer["body"]

    # A later text from the hotline (an agent's reply goes through the REST API): queued, then
    # the network carries it; the feed says so on the sms channel.
    services = hotline(dev_app)
    sim = services.simulator
    assert sim is not None
    cursor = events(dev_app)["cursor"]
    later = services.telephony.send_sms(
        SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="Are you safe now?")
    )
    queued = texts(dev_app)[CALLER]["texts"][-1]
    assert (queued["sid"], queued["status"], queued["via"]) == (later.sid, "queued", "api")
    sim.tick()
    assert texts(dev_app)[CALLER]["texts"][-1]["status"] == "delivered"
    feed = events(dev_app, cursor)["events"]
    assert {(e["channel"], e["message_sid"]) for e in feed} == {("sms", later.sid)}
    assert [e["detail"].get("status") for e in feed] == ["queued", "sent", "delivered"]

    # A phone switched off: the hotline's text ends undelivered.
    off = post(dev_app, "/texts/reachable", {"number": CALLER, "reachable": False})
    assert off.get_json()["conversation"]["reachable"] is False
    services.telephony.send_sms(
        SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="Hello?")
    )
    sim.tick()
    lost = texts(dev_app)[CALLER]["texts"][-1]
    assert (lost["status"], lost["error_code"]) == ("undelivered", "30003")
    assert (
        post(dev_app, "/texts/reachable", {"number": CALLER, "reachable": True}).status_code == 200
    )
    assert texts(dev_app)[CALLER]["reachable"] is True


def test_a_picture_goes_to_the_networks_media_and_reaches_the_app_as_twilios(
    dev_app: Flask,
) -> None:
    picture = {"content_type": "image/png", "data_base64": base64.b64encode(PNG).decode()}
    sent = post(dev_app, "/texts", {"from": CALLER, "body": "", "media": [picture]})
    assert sent.status_code == 201, sent.get_json()
    sid = sent.get_json()["message_sid"]
    assert sid.startswith("MM")
    sim = hotline(dev_app).simulator
    assert sim is not None
    (webhook,) = sim.deliveries(message_sid=sid)
    assert (webhook.param("NumMedia"), webhook.param("MediaContentType0")) == ("1", "image/png")
    url = webhook.param("MediaUrl0")
    assert url is not None
    assert url.startswith(sim.media_base_url)
    assert hotline(dev_app).telephony.fetch_media(url).content == PNG

    (shown,) = sent.get_json()["conversation"]["texts"][0]["media"]
    assert shown["content_type"] == "image/png"
    served = dev_app.test_client().get(shown["url"])
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.data == PNG
    assert "sandbox" in served.headers["Content-Security-Policy"]
    sim.delete_media(url)  # what the app does once it kept the picture...
    assert dev_app.test_client().get(shown["url"]).status_code == 200  # ...the phone keeps its own
    assert dev_app.test_client().get(f"{API}/texts/nonsense/media/0").status_code == 404


def test_stop_blocks_the_hotlines_texts_until_start(dev_app: Flask) -> None:
    stop = post(dev_app, "/texts", {"from": CALLER, "body": "STOP"})
    conversation = stop.get_json()["conversation"]
    assert conversation["opted_out"] is True
    assert conversation["texts"][0]["keyword"] == "STOP"
    network = [t for t in conversation["texts"] if t["sender"] == "network"]
    assert [t["body"][:36] for t in network] == ["You have successfully been unsubscri"]

    after = post(dev_app, "/texts", {"from": CALLER, "body": "Is anyone reading this?"})
    answers = after.get_json()["conversation"]["texts"]
    assert answers[-1]["body"] == "Is anyone reading this?"  # and no answer after it
    # An agent's reply through the REST API: refused by the network (21610), shown as failed.
    services = hotline(dev_app)
    with pytest.raises(TelephonyError):
        services.telephony.send_sms(
            SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="We are here.")
        )
    blocked = texts(dev_app)[CALLER]["texts"][-1]
    assert (blocked["sender"], blocked["body"]) == ("hotline", "We are here.")
    assert (blocked["status"], blocked["error_code"]) == ("failed", "21610")
    assert "STOP" in blocked["error"]
    assert [m.body for m in _sim(dev_app).handset_inbox(CALLER)] == [network[0]["body"]]

    start = post(dev_app, "/texts", {"from": CALLER, "body": "START"})
    conversation = start.get_json()["conversation"]
    assert conversation["opted_out"] is False
    assert conversation["texts"][-1]["status"] != "failed"
    assert any(
        t["sender"] == "network" and t["body"].startswith("You have successfully been re-sub")
        for t in conversation["texts"]
    )


def _sim(app: Flask) -> Any:
    sim = hotline(app).simulator
    assert sim is not None
    return sim


def test_text_requests_are_checked(dev_app: Flask) -> None:
    png = base64.b64encode(PNG).decode()
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/texts", {"body": "hi"}, 400),
        ("/texts", {"from": "555-0123", "body": "hi"}, 400),
        ("/texts", {"from": "+15555550100", "body": "hi"}, 400),  # the hotline itself
        ("/texts", {"from": CALLER, "body": "   "}, 400),
        ("/texts", {"from": CALLER, "body": "x" * 1601}, 400),
        ("/texts", {"from": CALLER, "media": "picture"}, 400),
        ("/texts", {"from": CALLER, "media": [{"content_type": "image/png"}]}, 400),
        (
            "/texts",
            {"from": CALLER, "media": [{"content_type": "image/svg+xml", "data_base64": svg}]},
            415,
        ),
        (
            "/texts",
            {"from": CALLER, "media": [{"content_type": "image/png", "data_base64": "***"}]},
            400,
        ),
        (
            "/texts",
            {"from": CALLER, "media": [{"content_type": "image/png", "data_base64": ""}]},
            400,
        ),
        (
            "/texts",
            {"from": CALLER, "media": [{"content_type": "image/png", "data_base64": png}] * 11},
            400,
        ),
        ("/texts/reachable", {"number": CALLER, "reachable": "no"}, 400),
        ("/texts/reachable", {"number": "nobody", "reachable": False}, 400),
    ]
    for path, body, status in cases:
        answer = post(dev_app, path, body)
        data = answer.get_json()
        assert (path, body, answer.status_code) == (path, body, status), data
        assert data["ok"] is False
        assert data["error"]
    big = base64.b64encode(b"\0" * (dev_phone.MAX_PICTURE_BYTES // 2 + 1)).decode()
    two = [{"content_type": "image/jpeg", "data_base64": big}] * 2
    assert post(dev_app, "/texts", {"from": CALLER, "media": two}).status_code == 413
    assert texts(dev_app) == {}  # nothing refused reached the network
    client = dev_app.test_client()
    assert client.post(f"{API}/texts", json={"from": CALLER, "body": "hi"}).status_code == 403
    foreign = client.post(
        f"{API}/texts",
        json={"from": CALLER, "body": "hi"},
        headers={**HEADERS, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert client.post(f"{API}/patience", json={"patient": True}).status_code == 403


# --- the patient caller, the time zone -----------------------------------------------------------


def test_the_patient_switch_stretches_the_networks_timeouts(dev_app: Flask) -> None:
    client = dev_app.test_client()
    assert client.get(f"{API}/state").get_json()["patience"] == {
        "patient": False,
        "multiplier": 1,
        "default_multiplier": dev_phone.PATIENT_MULTIPLIER,
    }
    plain = post(dev_app, "/dial", {"from": CALLER}).get_json()["call"]
    assert plain["listen_seconds"] == 60  # the stub menu's <Gather timeout="60">
    post(dev_app, "/hangup", {"call_sid": plain["sid"]})

    on = post(dev_app, "/patience", {"patient": True})
    assert on.status_code == 200
    assert on.get_json()["patience"]["patient"] is True
    assert on.get_json()["patience"]["multiplier"] == dev_phone.PATIENT_MULTIPLIER
    assert client.get(f"{API}/state").get_json()["patience"]["patient"] is True
    call = post(dev_app, "/dial", {"from": CALLER}).get_json()["call"]
    assert call["listen_seconds"] == 60 * dev_phone.PATIENT_MULTIPLIER
    now = hotline(dev_app).clock.now()
    assert call["listen_until"] == (now + timedelta(seconds=300)).isoformat()
    assert events(dev_app)["patience"]["multiplier"] == dev_phone.PATIENT_MULTIPLIER
    gather = [e for e in call_log(dev_app, call["sid"]) if e["kind"] == "gather"]
    assert gather[-1]["detail"]["patience"] == "5"

    assert (
        post(dev_app, "/patience", {"patient": True, "multiplier": 2}).get_json()["patience"][
            "multiplier"
        ]
        == 2
    )
    off = post(dev_app, "/patience", {"patient": False})
    assert off.get_json()["patience"] == {
        "patient": False,
        "multiplier": 1,
        "default_multiplier": dev_phone.PATIENT_MULTIPLIER,
    }
    for wrong in (
        {},
        {"patient": "yes"},
        {"patient": True, "multiplier": 50},
        {"patient": True, "multiplier": 1},
        {"patient": True, "multiplier": True},
        {"patient": True, "multiplier": "5"},
    ):
        answer = post(dev_app, "/patience", wrong)
        assert answer.status_code == 400, wrong
        assert answer.get_json()["ok"] is False
    assert _sim(dev_app).patience == 1


def test_the_page_says_which_time_zone_its_clock_times_are_in(dev_app: Flask) -> None:
    client = dev_app.test_client()
    assert client.get(f"{API}/state").get_json()["time_zone"] == {
        "name": "UTC",
        "district": None,
        "source": "UTC (no district in the directory)",
    }
    load_sample(dev_app)
    zone = client.get(f"{API}/state").get_json()["time_zone"]
    assert zone["name"] == "America/Chicago"
    assert zone["district"] == "Lakeview Unified School District"
    assert "first district" in zone["source"]
    place(dev_app, DUTY, HOLD_TWIML)
    place(dev_app, PRINCIPAL, HOLD_TWIML)
    ringing = incoming(dev_app)
    principal = client.get(f"{API}/calls/{ringing[PRINCIPAL]['sid']}/contacts").get_json()
    assert principal["contacts"][0]["time_zone"] == "America/Chicago"
    duty = client.get(f"{API}/calls/{ringing[DUTY]['sid']}/contacts").get_json()
    assert duty["contacts"][0]["time_zone"] is None  # no district: the page's own zone


# --- in a real browser --------------------------------------------------------------------------


def test_spelled_digits_are_read_off_a_sentence() -> None:
    said = (
        "Your report number is 4, 8, 1, 5, 1, 6, 2. Your PIN is 9 0 1 2. "
        "To hear your report number and PIN again, press 1."
    )
    assert _spelled(said, "report number", 6) == "4815162"
    assert _spelled(said, "PIN", 4) == "9012"
    assert _spelled("To hear your report number and PIN again, press 1.", "PIN", 4) is None

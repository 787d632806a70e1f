"""The simulated phone network against a tiny TwiML app that checks signatures like the hotline.

The app here is not the hotline: it serves a handful of fixed TwiML documents and records every
webhook it receives, each checked with twilio's own RequestValidator (403 when it fails).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape

import pytest
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

from hotline.core.clock import ManualClock
from hotline.telephony.ports import (
    CallRequest,
    CallUpdate,
    SmsRequest,
    Telephony,
    TelephonyError,
    TelephonyErrorKind,
)
from hotline.telephony.simulated import (
    APPLICATION_ERROR_TEXT,
    HandsetError,
    HttpWebhookTransport,
    SimulatedPhoneNetwork,
    WebhookTransport,
    twilio_signature,
)
from tests.support.sim_support import FlaskClientTransport

BASE = "https://hotline.example.org"
TOKEN = "sim-test-token-0123456789abcdef"
HOTLINE = "+13125550100"
CALLER = "+13125550123"
CALLEE = "+13125550177"

VOICEMAIL = "<Response><Say>This is a voicemail from the hotline.</Say><Hangup/></Response>"

DOCS: dict[str, str] = {
    "greeting": (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Say language="es-MX" voice="Polly.Mia">Hola, gracias por llamar.</Say>'
        '<Pause length="2"/><Say>Goodbye.</Say></Response>'
    ),
    "menu": (
        '<Response><Gather numDigits="1" action="/t/choice" timeout="5">'
        "<Say>Press 1 to leave a message.</Say></Gather>"
        "<Say>We did not get a choice.</Say><Hangup/></Response>"
    ),
    "multi": (
        '<Response><Gather finishOnKey="*" timeout="3" action="/t/echo">'
        "<Say>Enter your report number, then star.</Say></Gather>"
        "<Say>Nothing entered.</Say></Response>"
    ),
    "empty-action": (
        '<Response><Gather actionOnEmptyResult="true" action="/t/echo" timeout="4">'
        "<Say>Anything?</Say></Gather><Say>Not reached.</Say></Response>"
    ),
    "speech": (
        '<Response><Gather input="dtmf speech" action="/t/echo" language="es-MX" '
        'hints="Lincoln, Washington"><Say>Say the school name.</Say></Gather></Response>'
    ),
    "record": (
        "<Response><Say>Leave your tip after the beep.</Say>"
        '<Record action="/t/recorded" timeout="3" maxLength="120" '
        'recordingStatusCallback="/t/recording-status"/>'
        "<Say>Nothing was recorded.</Say><Hangup/></Response>"
    ),
    "redirect": (
        "<Response><Say>Redirecting.</Say><Redirect>after-redirect?step=2</Redirect>"
        "<Say>Never said.</Say></Response>"
    ),
    "redirect-get": '<Response><Redirect method="GET">after-redirect</Redirect></Response>',
    "after-redirect": "<Response><Say>After the redirect.</Say></Response>",
    "self-update": "<Response><Redirect>/t/self-update</Redirect></Response>",
    "invalid": "<Response><Say>Broken",
    "unknown-verb": "<Response><Say>Hi</Say><Dance/></Response>",
    "outbound": (
        '<Response><Gather numDigits="1" action="/t/echo" timeout="15">'
        "<Say>This is the hotline. Press 1 to confirm.</Say></Gather></Response>"
    ),
}


@dataclass
class Seen:
    method: str
    path: str
    url: str
    form: list[tuple[str, str]]
    headers: dict[str, str]
    valid: bool

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)


@dataclass
class TwimlApp:
    app: Flask
    seen: list[Seen] = field(default_factory=list)
    network: SimulatedPhoneNetwork | None = None

    def to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def build_twiml_app(auth_token: str) -> TwimlApp:
    app = Flask("sim-twiml-test")
    state = TwimlApp(app)
    validator = RequestValidator(auth_token)

    @app.before_request
    def check_signature() -> None:
        params = request.form if request.method == "POST" else {}
        valid = validator.validate(
            request.url, params, request.headers.get("X-Twilio-Signature", "")
        )
        form = list(request.form.items(multi=True)) or list(request.args.items(multi=True))
        state.seen.append(
            Seen(request.method, request.path, request.url, form, dict(request.headers), valid)
        )
        if not valid:
            abort(403)

    @app.route("/t/doc/<name>", methods=["GET", "POST"])
    def document(name: str) -> Response:
        return twiml(DOCS[name])

    @app.post("/t/choice")
    def choice() -> Response:
        digits = escape(request.form.get("Digits", "-"))
        return twiml(f"<Response><Say>You chose {digits}.</Say><Hangup/></Response>")

    @app.post("/t/echo")
    def echo() -> Response:
        said = " ".join(
            f"{name}={escape(request.form.get(name, '-'))}"
            for name in ("Digits", "FinishedOnKey", "SpeechResult", "Confidence")
        )
        return twiml(f"<Response><Say>{said}</Say><Hangup/></Response>")

    @app.post("/t/self-update")
    def self_update() -> Response:
        # Redirect the call through the REST API while answering its own webhook: Twilio runs
        # the update, and the TwiML answered here is dropped.
        assert state.network is not None
        state.network.update_call(request.form["CallSid"], CallUpdate(twiml=VOICEMAIL))
        return twiml("<Response><Say>Dropped.</Say></Response>")

    @app.post("/t/recorded")
    def recorded() -> Response:
        return twiml("<Response><Say>Thank you.</Say><Hangup/></Response>")

    @app.post("/t/amd")
    def amd() -> tuple[str, int]:
        # The app redirects the live call from inside the webhook, as the hotline does.
        if request.form["AnsweredBy"].startswith("machine") and state.network is not None:
            state.network.update_call(request.form["CallSid"], CallUpdate(twiml=VOICEMAIL))
        return "", 204

    @app.post("/t/sms")
    def sms() -> Response:
        body = escape(request.form.get("Body", ""))
        return twiml(
            '<Response><Message statusCallback="/t/sms-status">'
            f"Thanks, we got: {body}</Message></Response>"
        )

    for path in ("/t/status", "/t/voice-status", "/t/recording-status", "/t/sms-status"):
        app.add_url_rule(path, path, lambda: ("", 204), methods=["POST"])
    return state


@dataclass
class Sim:
    net: SimulatedPhoneNetwork
    clock: ManualClock
    app: TwimlApp

    def said(self, call_sid: str) -> list[str]:
        return [e.text for e in self.net.call_log(call_sid) if e.kind == "say"]

    def advance(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return self.net.tick()


MakeSim = Callable[..., Sim]


@pytest.fixture
def make_sim() -> MakeSim:
    def factory(
        doc: str = "menu",
        *,
        token: str = TOKEN,
        transport: Callable[[Flask], WebhookTransport] | None = None,
        base: str = BASE,
        app_state: TwimlApp | None = None,
    ) -> Sim:
        state = app_state or build_twiml_app(TOKEN)
        clock = ManualClock()
        net = SimulatedPhoneNetwork(
            auth_token=token,
            hotline_number=HOTLINE,
            voice_url=f"{base}/t/doc/{doc}",
            voice_status_url=f"{base}/t/voice-status",
            sms_url=f"{base}/t/sms",
            clock=clock,
            transport=(transport or FlaskClientTransport)(state.app),
        )
        state.network = net
        return Sim(net, clock, state)

    return factory


def test_it_is_a_telephony_port(make_sim: MakeSim) -> None:
    port: Telephony = make_sim().net  # checked by mypy: every port method, same signatures
    assert isinstance(port, SimulatedPhoneNetwork)


# --- signatures --------------------------------------------------------------------------------


def test_signature_matches_the_twilio_library_test_vector() -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    # Repeated names keep every value, as the library does with Flask's MultiDict.
    repeated = [("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]
    expected = RequestValidator("12345").compute_signature(url, MultiDict(repeated))
    assert twilio_signature("12345", url, repeated) == expected


def test_every_webhook_is_signed_and_carries_twilio_parameters(make_sim: MakeSim) -> None:
    sim = make_sim("menu")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.press(sid, "1")

    assert [s.path for s in sim.app.seen] == ["/t/doc/menu", "/t/choice", "/t/voice-status"]
    assert all(s.valid for s in sim.app.seen)
    first = sim.app.seen[0]
    assert first.get("CallSid") == sid
    assert first.get("AccountSid") == sim.net.account_sid
    assert (first.get("From"), first.get("To")) == (CALLER, HOTLINE)
    assert (first.get("CallStatus"), first.get("Direction")) == ("ringing", "inbound")
    assert first.get("ApiVersion") == "2010-04-01"
    assert first.get("FromCountry") == "US"  # caller location, for the app to drop
    assert sim.app.seen[1].get("CallStatus") == "in-progress"
    tokens = [s.headers["I-Twilio-Idempotency-Token"] for s in sim.app.seen]
    assert len(set(tokens)) == len(tokens)


def test_redelivery_reuses_the_idempotency_token(make_sim: MakeSim) -> None:
    sim = make_sim("greeting")
    sid = sim.net.dial_hotline(CALLER)
    first = sim.net.deliveries(call_sid=sid)[0]
    again = sim.net.redeliver(first.id)
    assert again.idempotency_token == first.idempotency_token
    assert again.params == first.params
    assert sim.app.seen[-1].headers["I-Twilio-Idempotency-Token"] == first.idempotency_token
    assert sim.app.seen[-1].valid


def test_wrong_token_is_rejected_by_the_app_and_the_caller_hears_an_application_error(
    make_sim: MakeSim,
) -> None:
    sim = make_sim("greeting", token="not-the-token-the-app-knows")
    sid = sim.net.dial_hotline(CALLER)

    assert sim.app.seen[0].valid is False
    errors = [e for e in sim.net.call_log(sid) if e.kind == "error"]
    assert errors
    assert errors[0].detail["code"] == "11200"
    assert "403" in errors[0].text
    assert sim.said(sid) == [APPLICATION_ERROR_TEXT]
    assert sim.net.fetch_call_status(sid) == "completed"


# --- Say, Pause, end of document ---------------------------------------------------------------


def test_say_language_and_voice_are_logged_and_pause_waits_for_the_clock(
    make_sim: MakeSim,
) -> None:
    sim = make_sim("greeting")
    sid = sim.net.dial_hotline(CALLER)

    say = next(e for e in sim.net.call_log(sid) if e.kind == "say")
    assert (say.text, say.language) == ("Hola, gracias por llamar.", "es-MX")
    assert say.voice == "Polly.Mia"
    assert sim.said(sid) == ["Hola, gracias por llamar."]
    assert sim.net.call_info(sid).waiting_for == "pause"

    sim.advance(1.9)
    assert sim.said(sid) == ["Hola, gracias por llamar."]
    sim.advance(0.1)
    assert sim.said(sid) == ["Hola, gracias por llamar.", "Goodbye."]
    goodbye = [e for e in sim.net.call_log(sid) if e.kind == "say"][-1]
    assert (goodbye.language, goodbye.voice) == ("en-US", None)  # Twilio's default language


def test_end_of_document_completes_the_call_and_posts_the_voice_status_url(
    make_sim: MakeSim,
) -> None:
    sim = make_sim("greeting")
    sid = sim.net.dial_hotline(CALLER)
    sim.advance(2)

    assert sim.net.fetch_call_status(sid) == "completed"
    (status,) = sim.app.to("/t/voice-status")
    assert status.valid
    assert status.get("CallStatus") == "completed"
    assert status.get("CallDuration") == "2"
    assert status.get("SequenceNumber") == "0"
    assert status.get("CallSid") == sid
    assert status.get("Timestamp") == "Mon, 05 Jan 2026 15:00:02 +0000"


# --- Gather ------------------------------------------------------------------------------------


def test_gather_digits_post_the_action(make_sim: MakeSim) -> None:
    sim = make_sim("menu")
    sid = sim.net.dial_hotline(CALLER)
    assert sim.said(sid) == ["Press 1 to leave a message."]
    assert sim.net.call_info(sid).waiting_for == "gather"

    sim.net.press(sid, "12")  # numDigits=1: the 2 reaches nobody

    (action,) = sim.app.to("/t/choice")
    assert (action.get("Digits"), action.get("FinishedOnKey")) == ("1", "")
    assert sim.said(sid)[-1] == "You chose 1."
    dtmf = [(e.text, e.detail.get("heard")) for e in sim.net.call_log(sid) if e.kind == "dtmf"]
    assert dtmf == [("1", None), ("2", "no")]
    assert sim.net.fetch_call_status(sid) == "completed"


def test_gather_silence_runs_the_next_verb_without_the_action(make_sim: MakeSim) -> None:
    sim = make_sim("menu")
    sid = sim.net.dial_hotline(CALLER)

    sim.advance(4.9)
    assert sim.said(sid) == ["Press 1 to leave a message."]
    sim.advance(0.1)

    assert sim.app.to("/t/choice") == []
    assert sim.said(sid)[-1] == "We did not get a choice."
    assert sim.net.fetch_call_status(sid) == "completed"


def test_action_on_empty_result_posts_the_action_without_input(make_sim: MakeSim) -> None:
    sim = make_sim("empty-action")
    sid = sim.net.dial_hotline(CALLER)
    sim.advance(4)

    (action,) = sim.app.to("/t/echo")
    assert action.get("Digits") is None
    assert action.get("SpeechResult") is None
    assert "Not reached." not in sim.said(sid)


def test_finish_on_key_ends_the_digits_and_is_reported(make_sim: MakeSim) -> None:
    sim = make_sim("multi")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.press(sid, "12#*")  # '#' is an ordinary key when finishOnKey is '*'

    (action,) = sim.app.to("/t/echo")
    assert (action.get("Digits"), action.get("FinishedOnKey")) == ("12#", "*")


def test_digits_without_the_finish_key_are_posted_after_the_inter_digit_timeout(
    make_sim: MakeSim,
) -> None:
    sim = make_sim("multi")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.press(sid, "4")
    sim.advance(2)
    sim.net.press(sid, "5")
    sim.advance(2.9)
    assert sim.app.to("/t/echo") == []  # each key restarts the timeout
    sim.advance(0.1)

    (action,) = sim.app.to("/t/echo")
    assert (action.get("Digits"), action.get("FinishedOnKey")) == ("45", "")


def test_finish_key_alone_is_no_input(make_sim: MakeSim) -> None:
    sim = make_sim("multi")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.press(sid, "*")

    assert sim.app.to("/t/echo") == []
    assert sim.said(sid)[-1] == "Nothing entered."
    assert sim.net.fetch_call_status(sid) == "completed"


def test_speech_input_posts_speech_result_and_confidence(make_sim: MakeSim) -> None:
    sim = make_sim("speech")
    sid = sim.net.dial_hotline(CALLER)
    gather = next(e for e in sim.net.call_log(sid) if e.kind == "gather")
    assert gather.language == "es-MX"
    assert gather.detail["input"] == "dtmf speech"
    assert gather.detail["hints"] == "Lincoln, Washington"

    sim.net.speak(sid, "Lincoln High", confidence=0.87)

    (action,) = sim.app.to("/t/echo")
    assert (action.get("SpeechResult"), action.get("Confidence")) == ("Lincoln High", "0.87")
    assert action.get("Digits") is None


# --- Record ------------------------------------------------------------------------------------


def test_record_posts_the_recording_and_skips_the_verbs_after_it(make_sim: MakeSim) -> None:
    sim = make_sim("record")
    sid = sim.net.dial_hotline(CALLER)
    assert sim.net.call_info(sid).waiting_for == "record"

    sim.net.record(sid, text_or_audio="There is a knife in locker twelve", finish_key="#")

    (action,) = sim.app.to("/t/recorded")
    assert action.get("Digits") == "#"
    assert action.get("RecordingDuration") == "3"  # six words, spoken at 2.5 words a second
    url, recording_sid = action.get("RecordingUrl"), action.get("RecordingSid")
    assert url is not None
    assert recording_sid is not None
    assert url.endswith(f"/{recording_sid}")
    assert sim.said(sid) == ["Leave your tip after the beep.", "Thank you."]

    (status,) = sim.app.to("/t/recording-status")
    assert status.get("RecordingStatus") == "completed"
    assert status.get("RecordingSid") == recording_sid
    media = sim.net.fetch_media(url)
    assert media.content_type == "audio/x-wav"
    assert media.content.startswith(b"RIFF")
    assert sim.net.fetch_media(url + ".wav").content == media.content
    sim.net.delete_recording(recording_sid)
    with pytest.raises(TelephonyError) as excinfo:
        sim.net.fetch_media(url)
    assert excinfo.value.code == 20404


def test_record_with_nothing_said_runs_the_next_verb(make_sim: MakeSim) -> None:
    sim = make_sim("record")
    sid = sim.net.dial_hotline(CALLER)
    sim.advance(3)

    assert sim.app.to("/t/recorded") == []
    assert sim.said(sid)[-1] == "Nothing was recorded."
    assert sim.net.fetch_call_status(sid) == "completed"


def test_record_ended_by_silence_posts_without_digits(make_sim: MakeSim) -> None:
    sim = make_sim("record")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.record(sid, text_or_audio="Someone is selling vapes", finish_key=None)
    assert sim.app.to("/t/recorded") == []
    sim.advance(3)

    (action,) = sim.app.to("/t/recorded")
    assert action.get("Digits") is None
    assert action.get("RecordingUrl")


def test_hanging_up_during_record_posts_digits_hangup(make_sim: MakeSim) -> None:
    sim = make_sim("record")
    sid = sim.net.dial_hotline(CALLER)
    sim.clock.advance(10)
    sim.net.record(sid, text_or_audio="He said he would bring a gun", finish_key=None)
    sim.net.hang_up(sid)

    (action,) = sim.app.to("/t/recorded")
    assert (action.get("Digits"), action.get("CallStatus")) == ("hangup", "completed")
    assert sim.app.to("/t/recording-status")[0].get("RecordingStatus") == "completed"
    assert "Thank you." not in sim.said(sid)  # the call is over: the answer cannot run
    (status,) = sim.app.to("/t/voice-status")
    assert (status.get("CallStatus"), status.get("CallDuration")) == ("completed", "10")


def test_hanging_up_during_gather_does_not_call_the_action(make_sim: MakeSim) -> None:
    sim = make_sim("menu")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.hang_up(sid)
    sim.advance(30)

    assert sim.app.to("/t/choice") == []
    assert [s.get("CallStatus") for s in sim.app.to("/t/voice-status")] == ["completed"]


# --- Redirect ----------------------------------------------------------------------------------


def test_redirect_resolves_relative_urls_against_the_document(make_sim: MakeSim) -> None:
    sim = make_sim("redirect")
    sid = sim.net.dial_hotline(CALLER)

    (redirected,) = sim.app.to("/t/doc/after-redirect")
    assert redirected.url == f"{BASE}/t/doc/after-redirect?step=2"
    assert redirected.method == "POST"
    assert redirected.valid
    assert sim.said(sid) == ["Redirecting.", "After the redirect."]


def test_redirect_with_get_signs_the_query_string(make_sim: MakeSim) -> None:
    sim = make_sim("redirect-get")
    sid = sim.net.dial_hotline(CALLER)

    (redirected,) = sim.app.to("/t/doc/after-redirect")
    assert redirected.method == "GET"
    assert redirected.valid
    assert redirected.get("CallSid") == sid
    assert sim.said(sid) == ["After the redirect."]


# --- invalid TwiML -----------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "code"), [("invalid", "12100"), ("unknown-verb", "12200")])
def test_invalid_twiml_is_an_application_error(make_sim: MakeSim, doc: str, code: str) -> None:
    sim = make_sim(doc)
    sid = sim.net.dial_hotline(CALLER)

    (error,) = [e for e in sim.net.call_log(sid) if e.kind == "error"]
    assert error.detail["code"] == code
    # The document is checked before it runs: the <Say> before <Dance/> is never heard.
    assert sim.said(sid) == [APPLICATION_ERROR_TEXT]
    assert sim.net.fetch_call_status(sid) == "completed"
    assert sim.app.to("/t/voice-status")[0].get("CallStatus") == "completed"


# --- outbound calls ----------------------------------------------------------------------------


def outbound(**overrides: object) -> CallRequest:
    fields: dict[str, object] = {
        "to": CALLEE,
        "from_": HOTLINE,
        "url": f"{BASE}/t/doc/outbound",
        "status_callback": f"{BASE}/t/status",
    }
    fields.update(overrides)
    return CallRequest(**fields)  # type: ignore[arg-type]


def test_outbound_call_with_async_amd_machine_gets_redirected_to_voicemail(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    placed = sim.net.place_call(
        outbound(
            machine_detection="DetectMessageEnd",
            async_amd=True,
            async_amd_status_callback=f"{BASE}/t/amd",
        )
    )
    assert placed.status == "queued"
    sim.net.tick()
    assert sim.net.fetch_call_status(placed.sid) == "ringing"

    sim.net.answer(placed.sid, by="machine")
    # Async detection: the TwiML starts at once, while the machine's greeting plays.
    assert sim.said(placed.sid) == ["This is the hotline. Press 1 to confirm."]
    (first_fetch,) = sim.app.to("/t/doc/outbound")
    assert first_fetch.get("Direction") == "outbound-api"
    assert (first_fetch.get("From"), first_fetch.get("To")) == (HOTLINE, CALLEE)
    assert first_fetch.get("AnsweredBy") is None

    sim.advance(7.9)
    assert sim.app.to("/t/amd") == []
    sim.advance(0.1)

    (verdict,) = sim.app.to("/t/amd")
    assert verdict.get("AnsweredBy") == "machine_end_beep"
    assert verdict.get("MachineDetectionDuration") == "8000"
    assert sim.said(placed.sid)[-1] == "This is a voicemail from the hotline."
    statuses = [(s.get("CallStatus"), s.get("SequenceNumber")) for s in sim.app.to("/t/status")]
    assert statuses == [
        ("initiated", "0"),
        ("ringing", "1"),
        ("in-progress", "2"),
        ("completed", "3"),
    ]
    completed = sim.app.to("/t/status")[-1]
    assert completed.get("CallDuration") == "8"
    assert completed.get("AnsweredBy") == "machine_end_beep"
    assert all(s.valid for s in sim.app.seen)


def test_outbound_call_answered_by_a_human_takes_the_keypress(make_sim: MakeSim) -> None:
    sim = make_sim()
    placed = sim.net.place_call(outbound(status_callback_events=("completed",)))
    sim.net.answer(placed.sid)
    sim.net.press(placed.sid, "1")

    (ack,) = sim.app.to("/t/echo")
    assert ack.get("Digits") == "1"
    assert ack.get("CallSid") == placed.sid
    assert [s.get("CallStatus") for s in sim.app.to("/t/status")] == ["completed"]


def test_synchronous_amd_delays_the_twiml_until_the_verdict(make_sim: MakeSim) -> None:
    sim = make_sim()
    placed = sim.net.place_call(outbound(machine_detection="DetectMessageEnd"))
    sim.net.answer(placed.sid, by="human")
    assert sim.app.to("/t/doc/outbound") == []
    assert sim.net.call_info(placed.sid).waiting_for == "machine-detection"

    sim.advance(2)

    (fetch,) = sim.app.to("/t/doc/outbound")
    assert fetch.get("AnsweredBy") == "human"
    assert sim.said(placed.sid) == ["This is the hotline. Press 1 to confirm."]


def test_update_call_inside_the_calls_own_webhook_wins(make_sim: MakeSim) -> None:
    sim = make_sim("self-update")
    sid = sim.net.dial_hotline(CALLER)

    assert sim.said(sid) == ["This is a voicemail from the hotline."]
    assert any(e.kind == "warning" and "dropped" in e.text for e in sim.net.call_log(sid))
    assert sim.net.fetch_call_status(sid) == "completed"


def test_let_ring_ends_no_answer_after_the_ring_timeout(make_sim: MakeSim) -> None:
    sim = make_sim()
    placed = sim.net.place_call(outbound(ring_timeout=20))
    gives_up = sim.net.let_ring(placed.sid)
    assert gives_up == sim.clock.now() + timedelta(seconds=20)

    sim.advance(19.9)
    assert sim.net.fetch_call_status(placed.sid) == "ringing"
    sim.advance(0.1)

    assert sim.net.fetch_call_status(placed.sid) == "no-answer"
    final = sim.app.to("/t/status")[-1]
    assert (final.get("CallStatus"), final.get("CallDuration")) == ("no-answer", "0")
    assert sim.app.to("/t/doc/outbound") == []


def test_update_call_redirects_and_ends_a_live_call(make_sim: MakeSim) -> None:
    sim = make_sim("menu")
    sid = sim.net.dial_hotline(CALLER)
    sim.net.update_call(sid, CallUpdate(url=f"{BASE}/t/doc/after-redirect"))
    sim.net.tick()
    assert sim.said(sid)[-1] == "After the redirect."
    assert sim.net.fetch_call_status(sid) == "completed"
    with pytest.raises(TelephonyError) as excinfo:
        sim.net.update_call(sid, CallUpdate(twiml="<Response/>"))
    assert excinfo.value.code == 21220

    other = sim.net.dial_hotline(CALLER)
    sim.net.update_call(other, CallUpdate(status="completed"))
    sim.net.tick()
    assert sim.net.fetch_call_status(other) == "completed"
    sim.advance(10)
    assert "We did not get a choice." not in sim.said(other)


# --- SMS ---------------------------------------------------------------------------------------


def test_sms_in_is_posted_and_the_reply_reaches_the_handset(make_sim: MakeSim) -> None:
    sim = make_sim()
    sid = sim.net.text_hotline(CALLER, "Fight after school at Lincoln")

    (inbound,) = sim.app.to("/t/sms")
    assert inbound.valid
    assert (inbound.get("MessageSid"), inbound.get("SmsSid")) == (sid, sid)
    assert (inbound.get("From"), inbound.get("To")) == (CALLER, HOTLINE)
    assert (inbound.get("Body"), inbound.get("NumMedia")) == ("Fight after school at Lincoln", "0")
    (reply,) = sim.net.handset_inbox(CALLER)
    assert reply.body == "Thanks, we got: Fight after school at Lincoln"
    assert reply.other == HOTLINE
    assert [s.get("MessageStatus") for s in sim.app.to("/t/sms-status")] == [
        "queued",
        "sent",
        "delivered",
    ]


def test_send_sms_is_delivered_with_status_callbacks(make_sim: MakeSim) -> None:
    sim = make_sim()
    sent = sim.net.send_sms(
        SmsRequest(
            to=CALLER,
            from_=HOTLINE,
            body="An agent replied",
            status_callback=f"{BASE}/t/sms-status",
        )
    )
    assert sent.status == "queued"
    sim.net.tick()

    assert [m.body for m in sim.net.handset_inbox(CALLER)] == ["An agent replied"]
    callbacks = sim.app.to("/t/sms-status")
    assert [s.get("MessageStatus") for s in callbacks] == ["queued", "sent", "delivered"]
    assert all(s.get("MessageSid") == sent.sid and s.valid for s in callbacks)

    sim.net.set_handset_reachable(CALLEE, False)
    lost = sim.net.send_sms(
        SmsRequest(to=CALLEE, from_=HOTLINE, body="x", status_callback=f"{BASE}/t/sms-status")
    )
    sim.net.tick()
    final = sim.app.to("/t/sms-status")[-1]
    assert (final.get("MessageSid"), final.get("MessageStatus")) == (lost.sid, "undelivered")
    assert final.get("ErrorCode") == "30003"


def test_mms_media_can_be_fetched_and_deleted(make_sim: MakeSim) -> None:
    sim = make_sim()
    picture = b"\x89PNG\r\n\x1a\nfake"
    sim.net.text_hotline(CALLER, "", media=[(picture, "image/png")])

    (inbound,) = sim.app.to("/t/sms")
    assert (inbound.get("NumMedia"), inbound.get("MediaContentType0")) == ("1", "image/png")
    url = inbound.get("MediaUrl0")
    assert url is not None
    assert (inbound.get("MessageSid") or "").startswith("MM")
    assert sim.net.fetch_media(url).content == picture
    sim.net.delete_media(url)
    with pytest.raises(TelephonyError):
        sim.net.fetch_media(url)


def test_stop_opts_the_handset_out_like_twilio(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.net.text_hotline(CALLER, " stop ")

    assert sim.app.to("/t/sms")[0].get("OptOutType") == "STOP"
    assert [m.body for m in sim.net.handset_inbox(CALLER)] == [
        "You have successfully been unsubscribed. You will not receive any more messages from "
        "this number. Reply START to resubscribe."
    ]  # Twilio's own answer; the app's <Message> to an opted-out number is refused
    with pytest.raises(TelephonyError) as excinfo:
        sim.net.send_sms(SmsRequest(to=CALLER, from_=HOTLINE, body="hello"))
    assert (excinfo.value.kind, excinfo.value.code) == (TelephonyErrorKind.PERMANENT_NUMBER, 21610)

    sim.net.text_hotline(CALLER, "START")
    sim.net.send_sms(SmsRequest(to=CALLER, from_=HOTLINE, body="hello"))
    sim.net.tick()
    assert sim.net.handset_inbox(CALLER)[-1].body == "hello"


def test_a_conversation_keeps_both_directions_in_order_with_delivery_states(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    texted = sim.net.text_hotline(CALLER, "Fight after school at Lincoln")
    sent = sim.net.send_sms(SmsRequest(to=CALLER, from_=HOTLINE, body="An agent replied"))
    queued = sim.net.conversation(CALLER).texts
    assert [(t.sender, t.status, t.via) for t in queued] == [
        ("handset", "received", None),
        ("hotline", "delivered", "reply"),
        ("hotline", "queued", "api"),  # the REST side only queues; the network moves on tick
    ]
    assert queued[1].reply_to == texted
    assert queued[2].sid == sent.sid
    sim.net.tick()
    assert sim.net.conversation(CALLER).texts[2].status == "delivered"

    sim.net.set_handset_reachable(CALLER, False)
    sim.net.send_sms(SmsRequest(to=CALLER, from_=HOTLINE, body="Are you safe?"))
    sim.net.tick()
    lost = sim.net.conversation(CALLER).texts[-1]
    assert (lost.status, lost.error_code) == ("undelivered", "30003")
    assert "switched off" in (lost.error or "")
    assert [c.handset for c in sim.net.conversations()] == [CALLER]
    assert sim.net.conversation(CALLEE).texts == ()


def test_after_stop_the_hotlines_texts_are_kept_as_failed_until_start(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.net.text_hotline(CALLER, "STOP")
    sim.net.text_hotline(CALLER, "are you there")
    with pytest.raises(TelephonyError):
        sim.net.send_sms(SmsRequest(to=CALLER, from_=HOTLINE, body="An agent replied"))
    conversation = sim.net.conversation(CALLER)
    assert conversation.opted_out
    assert [(t.sender, t.status, t.keyword, t.error_code) for t in conversation.texts] == [
        ("handset", "received", "STOP", None),
        ("network", "delivered", None, None),
        # The app's <Message> answer to the STOP itself, refused like the next ones.
        ("hotline", "failed", None, "21610"),
        ("handset", "received", None, None),
        ("hotline", "failed", None, "21610"),
        ("hotline", "failed", None, "21610"),
    ]
    assert conversation.texts[-1].via == "api"
    assert [m.body for m in sim.net.handset_inbox(CALLER)][-1].startswith("You have successfully")

    sim.net.text_hotline(CALLER, "start")
    after = sim.net.conversation(CALLER)
    assert not after.opted_out
    assert [(t.sender, t.status, t.keyword) for t in after.texts[-3:]] == [
        ("handset", "received", "START"),
        ("network", "delivered", None),
        ("hotline", "delivered", None),
    ]


def test_a_handset_keeps_its_picture_after_the_app_deletes_the_networks(make_sim: MakeSim) -> None:
    sim = make_sim()
    picture = b"\x89PNG\r\n\x1a\nfake"
    sid = sim.net.text_hotline(CALLER, "look", media=[(picture, "image/png")])
    (text, _reply) = sim.net.conversation(CALLER).texts
    assert [m.content_type for m in text.media] == ["image/png"]
    assert sim.net.handset_media(sid, 0).content == picture
    with pytest.raises(HandsetError):
        sim.net.handset_media(sid, 1)
    sim.net.delete_media(text.media[0].url)
    with pytest.raises(TelephonyError, match="not found"):
        sim.net.fetch_media(text.media[0].url)  # gone at the network, as on Twilio
    assert sim.net.handset_media(sid, 0).content == picture  # still on the phone


def test_patience_stretches_gather_and_record_timeouts_only(make_sim: MakeSim) -> None:
    sim = make_sim("menu")  # <Gather timeout="5">
    assert sim.net.patience == 1
    plain = sim.net.dial_hotline(CALLER)
    assert sim.net.call_info(plain).listen_seconds == 5
    sim.net.hang_up(plain)

    sim.net.set_patience(4)
    sid = sim.net.dial_hotline(CALLER)
    info = sim.net.call_info(sid)
    assert (info.waiting_for, info.listen_seconds) == ("gather", 20)
    assert info.listen_until == sim.clock.now() + timedelta(seconds=20)
    gather = next(e for e in sim.net.call_log(sid) if e.kind == "gather")
    assert (gather.detail["timeout"], gather.detail["patience"]) == ("5", "4")
    sim.advance(19)
    assert sim.net.call_info(sid).waiting_for == "gather"
    sim.advance(1)
    assert "We did not get a choice." in sim.said(sid)
    assert sim.net.call_info(sid).listen_until is None

    record = make_sim("record")  # <Record timeout="3">
    record.net.set_patience(2.5)
    sid = record.net.dial_hotline(CALLER)
    assert record.net.call_info(sid).listen_seconds == 7.5
    record.advance(7)
    assert record.net.call_info(sid).waiting_for == "record"
    for wrong in (0.5, 21):
        with pytest.raises(ValueError, match="patience"):
            record.net.set_patience(wrong)
    record.net.set_patience(1)
    assert record.net.patience == 1


# --- magic numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_sms_magic_numbers_raise(make_sim: MakeSim, number: str, code: int) -> None:
    sim = make_sim()
    with pytest.raises(TelephonyError) as excinfo:
        sim.net.send_sms(SmsRequest(to=number, from_=HOTLINE, body="hi"))
    assert (excinfo.value.kind, excinfo.value.code) == (TelephonyErrorKind.PERMANENT_NUMBER, code)


@pytest.mark.parametrize(("number", "code"), [("+15005550001", 21217), ("+15005550002", 21214)])
def test_call_magic_numbers_raise(make_sim: MakeSim, number: str, code: int) -> None:
    sim = make_sim()
    with pytest.raises(TelephonyError) as excinfo:
        sim.net.place_call(outbound(to=number))
    assert (excinfo.value.kind, excinfo.value.code) == (TelephonyErrorKind.PERMANENT_NUMBER, code)
    assert sim.net.calls() == []


# --- real HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def http_base() -> Iterator[tuple[str, TwimlApp]]:
    state = build_twiml_app(TOKEN)
    server = make_server("127.0.0.1", 0, state.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_http_transport_with_concurrent_callers(
    make_sim: MakeSim, http_base: tuple[str, TwimlApp]
) -> None:
    base, state = http_base
    sim = make_sim(
        "menu", base=base, app_state=state, transport=lambda _app: HttpWebhookTransport(timeout=5)
    )
    sids: list[str] = []
    lock = threading.Lock()

    def caller(number: str) -> None:
        sid = sim.net.dial_hotline(number)
        sim.net.press(sid, "1")
        with lock:
            sids.append(sid)

    threads = [threading.Thread(target=caller, args=(f"+1312555020{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    sim.net.tick()

    assert len(sids) == 4
    for sid in sids:
        assert sim.said(sid)[-1] == "You chose 1.", [
            (e.kind, e.text, e.detail) for e in sim.net.call_log(sid)
        ]
        assert sim.net.fetch_call_status(sid) == "completed"
    assert all(s.valid for s in state.seen)
    assert len(state.to("/t/voice-status")) == 4


def test_http_connection_failure_is_an_application_error(make_sim: MakeSim) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = make_sim(
        base=f"http://127.0.0.1:{port}", transport=lambda _app: HttpWebhookTransport(timeout=2)
    )
    sid = sim.net.dial_hotline(CALLER)

    (error,) = [e for e in sim.net.call_log(sid) if e.kind == "error"]
    assert error.detail["code"] == "11205"
    assert sim.said(sid) == [APPLICATION_ERROR_TEXT]
    assert sim.net.fetch_call_status(sid) == "completed"

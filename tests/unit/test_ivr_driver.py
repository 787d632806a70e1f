"""The Twilio-faithful driver, checked against a tiny app of its own (not the hotline).

The tiny app verifies every request with twilio's RequestValidator (403 otherwise), so a driver
that signs wrongly fails here, and serves scripted TwiML per path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from tests.support.ivr_driver import (
    CHECKED_ATTRIBUTES,
    Call,
    DriverError,
    Heard,
    TwimlError,
    VoiceDriver,
    _library_attributes,
    validate_twiml,
)

TOKEN = "driver-test-auth-token"
BASE = "https://ivr.example.test"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

Handler = Callable[[dict[str, str]], "str | Response"]


@dataclass
class Received:
    method: str
    path: str  # with the query string
    params: dict[str, str]  # form for POST, query for GET
    signature: str
    token: str
    user_agent: str


class TinyTwilioApp:
    """Serves TwiML by path (a string, or a function of the request's parameters)."""

    def __init__(self) -> None:
        self.app = Flask(__name__)
        self.handlers: dict[str, Handler] = {"/status": lambda _params: EMPTY}
        self.received: list[Received] = []
        self.app.add_url_rule("/<path:rest>", "any", self.dispatch, methods=["GET", "POST"])

    def serve(self, path: str, answer: str | VoiceResponse | Handler) -> None:
        if callable(answer) and not isinstance(answer, VoiceResponse):
            self.handlers[path] = answer
        else:
            text = str(answer)
            self.handlers[path] = lambda _params: text

    def dispatch(self, rest: str) -> Response:  # noqa: ARG002 - Flask passes the path by name
        query = request.query_string.decode("latin-1")
        url = BASE + request.path + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        form = request.form if request.method == "POST" else {}
        if not RequestValidator(TOKEN).validate(url, form, signature):
            return Response("bad signature", status=403, content_type="text/plain")
        params = (request.form if request.method == "POST" else request.args).to_dict()
        self.received.append(
            Received(
                request.method,
                request.full_path.rstrip("?"),
                params,
                signature,
                request.headers.get("I-Twilio-Idempotency-Token", ""),
                request.headers.get("User-Agent", ""),
            )
        )
        handler = self.handlers.get(request.path)
        if handler is None:
            return Response("not found", status=404, content_type="text/plain")
        answer = handler(params)
        if isinstance(answer, Response):
            return answer
        return Response(answer, content_type="text/xml")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == path]


@pytest.fixture
def tiny() -> TinyTwilioApp:
    return TinyTwilioApp()


@pytest.fixture
def driver(tiny: TinyTwilioApp) -> Iterator[VoiceDriver]:
    with tiny.app.test_client() as client:
        yield VoiceDriver(client, BASE, TOKEN, voice_path="/voice", status_path="/status")


def twiml(build: Callable[[VoiceResponse], object]) -> str:
    response = VoiceResponse()
    build(response)
    return str(response)


def menu(**gather_attrs: object) -> str:
    """A Gather asking for input, then a line heard only when the Gather falls through."""

    def build(r: VoiceResponse) -> None:
        r.gather(action="/menu", **gather_attrs).say("Press a key.")
        r.say("We did not get that.")

    return twiml(build)


def echo_digits(params: dict[str, str]) -> str:
    return twiml(lambda r: r.say(f"You pressed {params.get('Digits', 'nothing')}."))


# -- requests as Twilio sends them -------------------------------------------------------------


def test_signature_agrees_with_the_twilio_library_test_vector(driver: VoiceDriver) -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    signer = VoiceDriver(driver.client, BASE, "12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signer.sign(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_incoming_call_carries_twilio_parameters_and_ends_with_a_status_callback(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", twiml(lambda r: (r.say("Hello", voice="Polly.Joanna"), r.hangup())))

    call = driver.call(from_="+14155550123", to="+13125550100")

    first, status = tiny.received
    assert first.method == "POST"
    assert first.path == "/voice"
    p = first.params
    assert re.fullmatch(r"CA[0-9a-f]{32}", p["CallSid"])
    assert p["CallSid"] == call.sid
    assert re.fullmatch(r"AC[0-9a-f]{32}", p["AccountSid"])
    assert (p["CallStatus"], p["Direction"], p["ApiVersion"]) == (
        "ringing",
        "inbound",
        "2010-04-01",
    )
    assert p["From"] == p["Caller"] == "+14155550123"
    assert p["To"] == p["Called"] == "+13125550100"
    for field in ("FromCity", "FromState", "FromZip", "FromCountry", "CallerCity", "CalledZip"):
        assert p[field], field
    assert first.user_agent.startswith("TwilioProxy/")

    assert call.ended
    assert call.end_reason == "hangup"
    assert call.waiting_for is None
    assert call.heard == [Heard("Hello", None, "Polly.Joanna")]
    assert status.path == "/status"
    s = status.params
    assert (s["CallStatus"], s["CallSid"], s["CallbackSource"]) == (
        "completed",
        call.sid,
        "call-progress-events",
    )
    assert s["CallDuration"].isdigit()
    assert s["SequenceNumber"] == "0"
    assert parsedate_to_datetime(s["Timestamp"]).tzinfo is not None
    assert first.token
    assert status.token
    assert first.token != status.token


def test_anonymous_caller_has_empty_location_fields(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", twiml(lambda r: r.hangup()))
    driver.call(from_="anonymous")
    params = tiny.received[0].params
    assert params["From"] == "anonymous"
    assert params["FromCity"] == ""
    assert params["ToCity"]


def test_a_wrongly_signing_driver_fails_loudly(tiny: TinyTwilioApp, driver: VoiceDriver) -> None:
    tiny.serve("/voice", menu())
    wrong = VoiceDriver(driver.client, BASE, "not-the-token", voice_path="/voice")
    with pytest.raises(TwimlError, match="HTTP 403"):
        wrong.call()


def test_later_requests_are_in_progress_and_resolve_relative_actions(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/ivr/menu/start", twiml(lambda r: r.gather(action="step2", num_digits=1).say("Hi")))
    tiny.serve("/ivr/menu/step2", echo_digits)
    driver.voice_path = "/ivr/menu/start"

    call = driver.call().press("7")

    action = tiny.at("/ivr/menu/step2")[0]
    assert action.params["CallStatus"] == "in-progress"
    assert action.params["Digits"] == "7"
    assert action.params["CallSid"] == call.sid
    assert call.last_heard_text() == "You pressed 7."
    assert call.heard_since_last_action() == [Heard("You pressed 7.")]


# -- Gather ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "keys", "digits", "finished_on"),
    [
        ({"num_digits": 1}, "1234", "1", ""),
        ({}, "123#", "123", "#"),
        ({"num_digits": 4}, "12", "12", ""),  # submitted when the Gather times out
        ({"finish_on_key": ""}, "12#", "12#", ""),  # no finish key: # is a digit
        ({"finish_on_key": "*", "num_digits": 6}, "42*9", "42", "*"),
    ],
)
def test_gather_collects_digits_like_twilio(
    tiny: TinyTwilioApp,
    driver: VoiceDriver,
    attrs: dict[str, object],
    keys: str,
    digits: str,
    finished_on: str,
) -> None:
    tiny.serve("/voice", menu(**attrs))
    tiny.serve("/menu", echo_digits)

    call = driver.call()
    assert call.waiting_for == "gather"
    assert call.heard_texts() == ["Press a key."]
    call.press(keys)

    action = tiny.at("/menu")[0].params
    assert action["Digits"] == digits
    assert action["FinishedOnKey"] == finished_on
    assert "We did not get that." not in call.heard_texts()
    assert call.ended
    assert call.end_reason == "end-of-document"


def test_silence_runs_the_next_verb_without_calling_the_action(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu())
    call = driver.call().silence()
    assert tiny.at("/menu") == []
    assert call.heard_since_last_action() == [Heard("We did not get that.")]
    assert call.ended
    assert tiny.at("/status")[0].params["CallStatus"] == "completed"


def test_finish_key_alone_is_no_input(tiny: TinyTwilioApp, driver: VoiceDriver) -> None:
    tiny.serve("/voice", menu())
    call = driver.call().press("#")
    assert tiny.at("/menu") == []
    assert call.last_heard_text() == "We did not get that."


def test_action_on_empty_result_posts_the_action_without_digits(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu(action_on_empty_result=True))
    tiny.serve("/menu", echo_digits)
    call = driver.call().silence()
    (action,) = tiny.at("/menu")
    assert "Digits" not in action.params
    assert call.heard_texts() == ["Press a key.", "You pressed nothing."]


def test_speech_is_sent_only_to_a_gather_that_listens_for_it(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve(
        "/voice", menu(input="dtmf speech", hints="Lincoln High, Roosevelt", language="en-US")
    )
    tiny.serve("/menu", lambda params: twiml(lambda r: r.say(params["SpeechResult"])))

    call = driver.call()
    assert call.current_gather is not None
    assert call.current_gather["hints"] == "Lincoln High, Roosevelt"
    assert call.current_gather["language"] == "en-US"
    call.say_speech("Lincoln High", confidence=0.8)
    action = tiny.at("/menu")[0].params
    assert action["SpeechResult"] == "Lincoln High"
    assert action["Confidence"] == "0.8"
    assert "Digits" not in action
    assert call.last_heard_text() == "Lincoln High"

    tiny.serve("/voice", menu())
    with pytest.raises(DriverError, match="does not listen for speech"):
        driver.call().say_speech("hello")
    tiny.serve("/voice", menu(input="speech"))
    with pytest.raises(DriverError, match="keys are not listened to"):
        driver.call().press("1")


def test_hang_up_at_a_gather_calls_no_action_and_sends_the_final_status(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu())
    call = driver.call().hang_up()
    assert tiny.at("/menu") == []
    assert call.ended
    assert call.end_reason == "caller-hung-up"
    assert [r.path for r in tiny.received] == ["/voice", "/status"]
    with pytest.raises(DriverError, match="has ended"):
        call.press("1")


# -- Record ------------------------------------------------------------------------------------


def recording_prompt(**record_attrs: object) -> str:
    def build(r: VoiceResponse) -> None:
        r.say("Leave your message after the beep.")
        r.record(action="/recorded", **record_attrs)
        r.say("Nothing was recorded.")

    return twiml(build)


def thanks(_params: dict[str, str]) -> str:
    return twiml(lambda r: (r.say("Thank you."), r.hangup()))


def test_a_recording_posts_the_action_and_skips_the_verbs_after_record(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", recording_prompt(recording_status_callback="/recording-status"))
    tiny.serve("/recorded", thanks)
    tiny.serve("/recording-status", lambda _params: EMPTY)

    call = driver.call()
    assert call.waiting_for == "record"
    handle = call.record(duration=12, finish_key="#")

    action = tiny.at("/recorded")[0].params
    account = action["AccountSid"]
    assert re.fullmatch(r"RE[0-9a-f]{32}", action["RecordingSid"])
    assert action["RecordingUrl"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{action['RecordingSid']}"
    )
    assert (action["RecordingDuration"], action["Digits"]) == ("12", "#")
    assert call.heard_texts() == ["Leave your message after the beep.", "Thank you."]

    (callback,) = tiny.at("/recording-status")
    c = callback.params
    assert (c["RecordingSid"], c["RecordingUrl"]) == (handle.sid, handle.url)
    assert (c["RecordingStatus"], c["RecordingDuration"]) == ("completed", "12")
    assert (c["CallSid"], c["AccountSid"]) == (call.sid, account)
    assert (c["RecordingChannels"], c["RecordingSource"]) == ("1", "RecordVerb")
    paths = [r.path for r in tiny.received]
    assert paths.index("/recorded") < paths.index("/recording-status") < paths.index("/status")


def test_silence_at_record_records_nothing_and_runs_the_next_verbs(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", recording_prompt(recording_status_callback="/recording-status"))
    call = driver.call().silence()
    assert tiny.at("/recorded") == []
    assert tiny.at("/recording-status") == []
    assert call.last_heard_text() == "Nothing was recorded."
    assert call.recordings == []
    assert call.ended


@pytest.mark.parametrize("how", ["hang_up", "record"])
def test_hanging_up_during_record_posts_digits_hangup(
    tiny: TinyTwilioApp, driver: VoiceDriver, how: str
) -> None:
    tiny.serve("/voice", recording_prompt(recording_status_callback="/recording-status"))
    tiny.serve("/recorded", thanks)
    tiny.serve("/recording-status", lambda _params: EMPTY)

    call = driver.call()
    if how == "hang_up":
        call.hang_up(recorded_seconds=5)
    else:
        call.record(duration=5, hang_up=True)

    action = tiny.at("/recorded")[0].params
    assert (action["Digits"], action["RecordingDuration"]) == ("hangup", "5")
    assert action["CallStatus"] == "completed"
    assert call.ended
    assert call.end_reason == "caller-hung-up"
    assert "Thank you." not in call.heard_texts()  # the call is over; the answer is not played
    assert [r.path for r in tiny.received][-2:] == ["/recording-status", "/status"]


def test_recording_callback_can_come_later_and_twice(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", recording_prompt(recording_status_callback="/recording-status"))
    tiny.serve("/recorded", thanks)
    tiny.serve("/recording-status", lambda _params: EMPTY)

    handle = driver.call().record(duration=3, recording_callback=False)
    assert tiny.at("/recording-status") == []
    handle.deliver()
    handle.deliver()
    first, second = tiny.at("/recording-status")
    assert first.params == second.params
    assert first.token != second.token


def test_record_finish_key_must_be_one_the_record_listens_for(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", recording_prompt(finish_on_key="*"))
    with pytest.raises(DriverError, match="does not end this <Record>"):
        driver.call().record(duration=3, finish_key="#")


# -- Redirect, Dial, Reject ---------------------------------------------------------------------


def test_redirects_resolve_relative_urls_against_the_document(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/ivr/menu/start", twiml(lambda r: (r.say("One"), r.redirect("next"))))
    tiny.serve("/ivr/menu/next", twiml(lambda r: r.redirect("../other?x=1", method="GET")))
    tiny.serve("/ivr/other", twiml(lambda r: r.gather(num_digits=1).say("Two")))
    driver.voice_path = "/ivr/menu/start"

    call = driver.call()
    redirect_get = tiny.at("/ivr/other")[0]
    assert redirect_get.method == "GET"
    assert redirect_get.path.startswith("/ivr/other?x=1&")  # Twilio's parameters in the query
    assert redirect_get.params["CallSid"] == call.sid
    assert call.heard_texts() == ["One", "Two"]

    call.press("5")  # no action: the document URL, POSTed, without Twilio's GET parameters
    gather_post = tiny.at("/ivr/other")[1]
    assert (gather_post.method, gather_post.path) == ("POST", "/ivr/other?x=1")
    assert gather_post.params["Digits"] == "5"


def test_gather_action_by_get_carries_the_parameters_in_the_query(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu(method="GET", num_digits=2))
    tiny.serve("/menu", echo_digits)
    call = driver.call().press("42")
    (action,) = tiny.at("/menu")
    assert action.method == "GET"
    assert "Digits=42" in action.path
    assert call.last_heard_text() == "You pressed 42."


def test_talking_past_max_length_then_hanging_up(tiny: TinyTwilioApp, driver: VoiceDriver) -> None:
    tiny.serve("/voice", recording_prompt(max_length=10))
    tiny.serve("/recorded", lambda _params: menu())
    call = driver.call()
    call.record(duration=30, hang_up=True)
    action = tiny.at("/recorded")[0].params
    assert action["RecordingDuration"] == "10"
    assert "Digits" not in action
    assert action["CallStatus"] == "in-progress"
    assert call.ended
    assert tiny.at("/menu") == []


def test_late_status_callbacks_take_the_next_sequence_number(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", twiml(lambda r: r.hangup()))
    call = driver.call()
    call.send_status("in-progress")
    completed, late = tiny.at("/status")
    assert (completed.params["SequenceNumber"], late.params["SequenceNumber"]) == ("0", "1")
    assert late.params["CallStatus"] == "in-progress"


def test_a_redirect_loop_is_stopped(tiny: TinyTwilioApp, driver: VoiceDriver) -> None:
    tiny.serve("/voice", twiml(lambda r: r.redirect("/voice")))
    with pytest.raises(DriverError, match="more than 50 <Redirect>s"):
        driver.call()


def test_dial_posts_its_action_when_the_other_leg_ends(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    def build(r: VoiceResponse) -> None:
        dial = Dial(action="/after-dial", timeout=20)
        dial.conference("agents-room")
        r.append(dial)

    tiny.serve("/voice", twiml(build))
    tiny.serve("/after-dial", thanks)
    call = driver.call()
    assert call.waiting_for == "dial"
    assert call.current_dial is not None
    call.end_dial("completed", duration=42)
    action = tiny.at("/after-dial")[0].params
    assert (action["DialCallStatus"], action["DialCallDuration"]) == ("completed", "42")
    assert call.last_heard_text() == "Thank you."


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), (None, "no-answer")])
def test_reject_first_leaves_the_call_unanswered(
    tiny: TinyTwilioApp, driver: VoiceDriver, reason: str | None, status: str
) -> None:
    tiny.serve("/voice", twiml(lambda r: r.reject(reason=reason)))
    call = driver.call()
    final = tiny.at("/status")[0].params
    assert call.ended
    assert final["CallStatus"] == status
    assert "CallDuration" not in final


# -- retries and bad answers -------------------------------------------------------------------


def test_redeliver_sends_the_same_token_signature_and_parameters(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu())
    tiny.serve("/menu", lambda _params: menu())  # the caller is asked again
    call = driver.call().press("3")
    heard_before = list(call.heard)

    response = call.redeliver_last()

    original, retry = tiny.at("/menu")
    assert (retry.token, retry.signature, retry.params) == (
        original.token,
        original.signature,
        original.params,
    )
    assert response.get_data(as_text=True) == call.requests[-2].body
    assert call.requests[-1].redelivery
    assert call.heard == heard_before
    assert call.waiting_for == "gather"


def test_every_delivery_has_its_own_idempotency_token(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    tiny.serve("/voice", menu())
    tiny.serve("/menu", lambda _params: menu())
    driver.call().press("1").press("2").silence()
    tokens = [r.token for r in tiny.received]
    assert len(tokens) == 4
    assert len(set(tokens)) == 4


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Response("boom", status=500, content_type="text/xml"), "HTTP 500"),
        (Response("<Response/>", content_type="text/html"), "not text/xml"),
        (
            Response(
                "<Response><Gather input=\"['dtmf', 'speech']\"/></Response>",
                content_type="text/xml",
            ),
            "Python list",
        ),
    ],
)
def test_a_bad_answer_mid_call_fails_with_the_document(
    tiny: TinyTwilioApp, driver: VoiceDriver, answer: Response, message: str
) -> None:
    tiny.serve("/voice", menu())
    tiny.serve("/menu", lambda _params: answer)
    call = driver.call()
    with pytest.raises(TwimlError, match=message) as failure:
        call.press("1")
    assert "/menu" in str(failure.value)
    assert answer.get_data(as_text=True) in str(failure.value)


def test_heard_text_is_normalised_and_keeps_language_and_voice(
    tiny: TinyTwilioApp, driver: VoiceDriver
) -> None:
    def build(r: VoiceResponse) -> None:
        r.say("  Para   español\n oprima dos. ", language="es-MX", voice="Polly.Mia")
        say = r.say("Your report number is", language="en-US")
        say.say_as("4 8 1 5", interpret_as="digits")
        say.sub("WWW", alias="the web")
        r.play("https://example.test/beep.mp3")
        r.pause(length=2)
        r.hangup()

    tiny.serve("/voice", twiml(build))
    call = driver.call()
    assert call.heard == [
        Heard("Para español oprima dos.", "es-MX", "Polly.Mia"),
        Heard("Your report number is 4 8 1 5 the web", "en-US", None),
        Heard("https://example.test/beep.mp3"),
    ]
    assert call.heard[2].verb == "Play"


# -- validate_twiml ----------------------------------------------------------------------------


def doc(inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


INVALID: list[tuple[str, str, str]] = [
    ("not well-formed", "<Response><Say>hi</Response>", "not well-formed"),
    ("root is not Response", "<Responses><Say>hi</Say></Responses>", "root element"),
    ("unknown verb", doc("<Speak>hi</Speak>"), "unknown verb or noun <Speak>"),
    ("verbs are case-sensitive", doc("<say>hi</say>"), "did you mean 'Say'"),
    ("unknown attribute", doc('<Say lang="en-US">hi</Say>'), "unknown attribute 'lang'"),
    ("snake_case attribute", doc('<Gather num_digits="1"/>'), "did you mean 'numDigits'"),
    ("Response attribute", doc("").replace("<Response>", '<Response a="1">'), "'a'"),
    ("input as a Python list", doc("<Gather input=\"['dtmf', 'speech']\"/>"), "Python list"),
    ("input unknown", doc('<Gather input="voice"/>'), "must be 'dtmf', 'speech'"),
    ("numDigits zero", doc('<Gather numDigits="0"/>'), "numDigits='0' must be at least 1"),
    ("numDigits not an int", doc('<Gather numDigits="1.0"/>'), "digits only"),
    ("timeout negative", doc('<Gather timeout="-1"/>'), "timeout='-1'"),
    ("finishOnKey two keys", doc('<Gather finishOnKey="#*"/>'), "finishOnKey='#*'"),
    ("finishOnKey letter", doc('<Gather finishOnKey="A"/>'), "one key of 0-9"),
    ("boolean from str(True)", doc('<Gather actionOnEmptyResult="True"/>'), "str(True)"),
    ("boolean word", doc('<Gather bargeIn="yes"/>'), "'true' or 'false'"),
    ("method lower case", doc('<Gather method="post"/>'), "'GET' or 'POST'"),
    ("speechTimeout", doc('<Gather speechTimeout="soon"/>'), "speechTimeout='soon'"),
    ("Gather language", doc('<Gather language="english"/>'), "BCP-47"),
    ("too many hints", doc(f'<Gather hints="{",".join(["x"] * 501)}"/>'), "at most 500"),
    ("hint too long", doc(f'<Gather hints="a, {"b" * 101}"/>'), "longer than 100"),
    ("empty hint", doc('<Gather hints="a,,b"/>'), "empty entry"),
    ("action None", doc('<Gather action="None"/>'), "Python None"),
    ("action empty", doc('<Gather action=""/>'), "empty URL"),
    ("action whitespace", doc('<Gather action="/a b"/>'), "whitespace"),
    ("action scheme", doc('<Gather action="ftp://x/y"/>'), "scheme 'ftp'"),
    ("Record maxLength", doc('<Record maxLength="two"/>'), "maxLength='two'"),
    ("Record timeout", doc('<Record timeout="5s"/>'), "timeout='5s'"),
    ("Record playBeep", doc('<Record playBeep="1"/>'), "playBeep='1'"),
    ("Record finishOnKey", doc('<Record finishOnKey="#x"/>'), "keys from 0-9"),
    ("Record trim", doc('<Record trim="yes"/>'), "trim='yes'"),
    ("Record events", doc('<Record recordingStatusCallbackEvent="done"/>'), "space-separated"),
    ("Say language underscore", doc('<Say language="en_US">hi</Say>'), "BCP-47"),
    ("Say voice", doc('<Say voice="Joanna">hi</Say>'), "Polly.<Name>"),
    (
        "Google voice vs language",
        doc('<Say voice="Google.es-US-Neural2-A" language="en-US">hi</Say>'),
        "speaks es-US",
    ),
    ("Say loop", doc('<Say loop="-1">hi</Say>'), "loop='-1'"),
    ("Pause length zero", doc('<Pause length="0"/>'), "length='0'"),
    ("Pause length fraction", doc('<Pause length="1.5"/>'), "digits only"),
    ("Play loop", doc('<Play loop="x">https://e.test/a.mp3</Play>'), "loop='x'"),
    ("Play digits", doc('<Play digits="12x"/>'), "DTMF keys"),
    ("Reject reason", doc('<Reject reason="no"/>'), "reason='no'"),
    ("Gather holds Record", doc("<Gather><Record/></Gather>"), "<Gather> may not contain <Record>"),
    ("Gather holds Gather", doc("<Gather><Gather/></Gather>"), "<Gather> may not contain <Gather>"),
    ("text in Gather", doc("<Gather>Press one</Gather>"), "holds text 'Press one'"),
    ("Say holds a verb", doc("<Say>hi <Play>https://e.test/a.mp3</Play></Say>"), "<Say> may not"),
    ("Say holds an unknown tag", doc("<Say>hi <loud>there</loud></Say>"), "<loud>"),
    ("SSML break time", doc('<Say>hi<break time="2 seconds"/></Say>'), "'500ms' or '2s'"),
    ("Record holds a verb", doc("<Record><Say>hi</Say></Record>"), "<Record> may not contain"),
    ("Redirect holds a verb", doc("<Redirect><Say>hi</Say></Redirect>"), "needs a URL"),
    ("Hangup holds text", doc("<Hangup>bye</Hangup>"), "holds text 'bye'"),
    ("Pause holds text", doc("<Pause>2</Pause>"), "holds text '2'"),
    ("Reject holds a verb", doc("<Reject><Say>no</Say></Reject>"), "<Reject> may not contain"),
    ("empty Say", doc("<Say/>"), "<Say> is empty"),
    ("blank Say", doc("<Say>  \n </Say>"), "<Say> is empty"),
    ("Say with only a break", doc('<Say><break time="1s"/></Say>'), "<Say> is empty"),
    ("Say too long", doc(f"<Say>{'a' * 4097}</Say>"), "limit is 4096"),
    ("Redirect without URL", doc("<Redirect/>"), "needs a URL"),
    ("Redirect to None", doc("<Redirect>None</Redirect>"), "Python None"),
    ("Play without URL", doc("<Play/>"), "needs a media URL"),
    ("empty Dial", doc("<Dial/>"), "<Dial> needs either"),
    ("Dial unknown noun", doc("<Dial><Phone>+13125550100</Phone></Dial>"), "<Phone>"),
    (
        "Dial noun attribute",
        doc('<Dial><Number colour="red">+13125550100</Number></Dial>'),
        "unknown attribute 'colour'",
    ),
    ("stray text in Response", doc("Hello<Hangup/>"), "holds text 'Hello'"),
]


@pytest.mark.parametrize(
    ("xml", "message"), [(x, m) for _, x, m in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_validate_twiml_rejects(xml: str, message: str) -> None:
    with pytest.raises(TwimlError) as failure:
        validate_twiml(xml)
    assert message in str(failure.value)
    assert xml in str(failure.value)  # the offending document is in the message


def _menu(r: VoiceResponse) -> None:
    gather = Gather(
        input="dtmf speech",
        action="/twilio/voice/menu?step=2",
        method="POST",
        timeout=5,
        num_digits=1,
        finish_on_key="#",
        speech_timeout="auto",
        language="es-MX",
        hints="Lincoln High, Roosevelt Middle",
        action_on_empty_result=True,
        barge_in=True,
    )
    gather.say("Para español, oprima dos.", language="es-MX", voice="Polly.Mia")
    gather.pause(length=1)
    gather.play("https://example.test/prompt.mp3", loop=2)
    r.append(gather)
    r.say("We did not get that.", voice="Google.en-US-Neural2-C", language="en-US")
    r.redirect("/twilio/voice", method="POST")


def _record(r: VoiceResponse) -> None:
    r.say("After the tone, describe what happened.", voice="alice", language="en-US", loop=1)
    r.record(
        action="recorded",
        method="POST",
        timeout=5,
        finish_on_key="#",
        max_length=120,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback="/twilio/recording/status",
        recording_status_callback_method="POST",
        recording_status_callback_event="in-progress completed absent",
    )
    r.say("We did not hear anything.")
    r.hangup()


def _ssml(r: VoiceResponse) -> None:
    say = r.say("Your report number is", language="en-US")
    say.say_as("4815", interpret_as="digits")
    say.break_(time="500ms")
    say.lang("uno dos", xml_lang="es-MX")
    say.prosody("slowly", rate="slow")
    say.emphasis("now", level="strong")


def _dial(r: VoiceResponse) -> None:
    dial = r.dial(action="/after-dial", timeout=20, caller_id="+13125550100", answer_on_bridge=True)
    dial.conference("agents", start_conference_on_enter=True, end_conference_on_exit=False)
    r.dial("+13125550199")


VALID: dict[str, Callable[[VoiceResponse], object]] = {
    "empty": lambda _r: None,
    "menu": _menu,
    "record": _record,
    "ssml": _ssml,
    "dial": _dial,
    "reject": lambda r: r.reject(reason="busy"),
    "play digits": lambda r: r.play(digits="1w2#"),
    "pause then hangup": lambda r: (r.pause(length=3), r.hangup()),
    "speech only": lambda r: r.gather(input="speech", speech_timeout=3, max_speech_time=30),
}


@pytest.mark.parametrize("build", VALID.values(), ids=VALID.keys())
def test_validate_twiml_accepts_documents_from_twilios_builders(
    build: Callable[[VoiceResponse], object],
) -> None:
    root = validate_twiml(twiml(build))
    assert root.tag == "Response"


@pytest.mark.parametrize("verb", sorted(CHECKED_ATTRIBUTES))
def test_checked_attributes_are_named_as_in_the_twilio_library(verb: str) -> None:
    # A typo in the driver's own tables would let a wrong attribute through (or refuse a right
    # one): every name it checks must be one the library's builder knows.
    from twilio.twiml import voice_response as vr

    builder = getattr(vr.VoiceResponse, verb.lower())
    assert set(CHECKED_ATTRIBUTES[verb]) <= set(_library_attributes(builder, getattr(vr, verb)))


def test_call_type_is_exported() -> None:
    assert Call.__name__ == "Call"

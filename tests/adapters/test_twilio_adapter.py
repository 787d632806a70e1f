"""TwilioTelephony against a local fake of Twilio's REST API, checked against Twilio's OpenAPI.

Every request the adapter makes is validated by the fake against ../shared/twilio's OpenAPI
document (the ``twilio_fake`` fixture fails the test on any violation), and every test runs behind
the live-network guard: nothing here can reach twilio.com.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.telephony.ports import (
    PERMANENT_NUMBER_CODES,
    CallRequest,
    CallUpdate,
    SmsRequest,
    TelephonyError,
    TelephonyErrorKind,
)
from hotline.telephony.twilio_adapter import TwilioTelephony, kind_for_http, rewrite_twilio_url
from tests.support.live_network_guard import LiveNetworkError, NetworkGuard, install_guard
from tests.support.twilio_fake import (
    DEFAULT_NUMBER_ERRORS,
    PATIENT_READ_TIMEOUT,
    WAV_BYTES,
    Contract,
    TwilioFake,
    contract_or_skip,
)

pytest_plugins = ["tests.support.twilio_fake.pytest_plugin"]

HOTLINE = "+15005550006"
PRINCIPAL = "+13125550142"
CALLBACKS = "https://hotline.example.org/twilio"
SID = re.compile(r"^(?P<prefix>[A-Z]{2})[0-9a-f]{32}$")


@pytest.fixture(autouse=True)
def no_live_network() -> Iterator[NetworkGuard]:
    with install_guard() as guard:
        yield guard
    assert not guard.violations, guard.violations


@pytest.fixture
def telephony(twilio_fake: TwilioFake) -> Iterator[TwilioTelephony]:
    adapter = TwilioTelephony(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        api_base_url=twilio_fake.base_url,
        connect_timeout=2,
        read_timeout=PATIENT_READ_TIMEOUT,
    )
    yield adapter
    adapter.close()


def alert_call(**overrides: object) -> CallRequest:
    fields: dict[str, object] = {
        "to": PRINCIPAL,
        "from_": HOTLINE,
        "url": f"{CALLBACKS}/voice/alert?attempt=7",
        "status_callback": f"{CALLBACKS}/voice/outbound-status?attempt=7",
        "machine_detection": "DetectMessageEnd",
        "async_amd": True,
        "async_amd_status_callback": f"{CALLBACKS}/voice/amd?attempt=7",
        "ring_timeout": 25,
    }
    fields.update(overrides)
    return CallRequest(**fields)  # type: ignore[arg-type]


def raised(action: object) -> TelephonyError:
    with pytest.raises(TelephonyError) as info:
        action()  # type: ignore[operator]
    return info.value


# -- calls ----------------------------------------------------------------------------------


def test_call_with_callbacks_async_amd_ring_timeout_and_digits_sends_exactly_these_fields(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    placed = telephony.place_call(alert_call(send_digits="ww1234#", time_limit=600))

    assert SID.match(placed.sid)
    assert placed.sid.startswith("CA")
    assert placed.status == "queued"
    (request,) = twilio_fake.requests_to("CreateCall")
    assert request.authorized
    assert request.path == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Calls.json"
    assert sorted(request.form) == sorted(
        [
            ("To", PRINCIPAL),
            ("From", HOTLINE),
            ("Url", f"{CALLBACKS}/voice/alert?attempt=7"),
            ("StatusCallback", f"{CALLBACKS}/voice/outbound-status?attempt=7"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("StatusCallbackMethod", "POST"),
            ("MachineDetection", "DetectMessageEnd"),
            ("AsyncAmd", "true"),
            ("AsyncAmdStatusCallback", f"{CALLBACKS}/voice/amd?attempt=7"),
            ("Timeout", "25"),
            ("TimeLimit", "600"),
            ("SendDigits", "ww1234#"),
        ]
    )
    assert list(twilio_fake.calls) == [placed.sid]
    assert twilio_fake.problems == []  # the OpenAPI contract check passed


def test_machine_detection_with_send_digits_warns_without_the_number(
    telephony: TwilioTelephony, caplog: pytest.LogCaptureFixture
) -> None:
    # Twilio documents that MachineDetection is ignored when SendDigits is present.
    with caplog.at_level(logging.DEBUG, logger="hotline.telephony"):
        telephony.place_call(alert_call(send_digits="w55"))
    assert any("ignores machine detection" in r.getMessage() for r in caplog.records)
    assert PRINCIPAL not in caplog.text
    assert PRINCIPAL[1:] not in caplog.text


def test_twiml_call_without_callbacks_sends_only_twiml(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    twiml = "<Response><Say>Test</Say></Response>"
    telephony.place_call(CallRequest(to=PRINCIPAL, from_=HOTLINE, twiml=twiml))

    (request,) = twilio_fake.requests_to("CreateCall")
    assert sorted(request.form) == sorted([("To", PRINCIPAL), ("From", HOTLINE), ("Twiml", twiml)])


def test_twiml_call_with_callbacks_and_custom_events(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    telephony.place_call(
        CallRequest(
            to=PRINCIPAL,
            from_=HOTLINE,
            twiml="<Response><Pause length='1'/></Response>",
            status_callback=f"{CALLBACKS}/voice/outbound-status",
            status_callback_events=("answered", "completed"),
        )
    )
    (request,) = twilio_fake.requests_to("CreateCall")
    assert request.fields["StatusCallbackEvent"] == ["answered", "completed"]
    assert "Url" not in request.fields
    assert "MachineDetection" not in request.fields


@pytest.mark.parametrize(
    ("update", "expected_form"),
    [
        (
            CallUpdate(twiml="<Response><Say>Bye</Say></Response>"),
            [("Twiml", "<Response><Say>Bye</Say></Response>")],
        ),
        (CallUpdate(url=f"{CALLBACKS}/voice/voicemail"), [("Url", f"{CALLBACKS}/voice/voicemail")]),
        (CallUpdate(status="completed"), [("Status", "completed")]),
    ],
    ids=["twiml", "url", "status"],
)
def test_update_call(
    twilio_fake: TwilioFake,
    telephony: TwilioTelephony,
    update: CallUpdate,
    expected_form: list[tuple[str, str]],
) -> None:
    placed = telephony.place_call(alert_call())
    twilio_fake.set_call_status(placed.sid, "in-progress")

    telephony.update_call(placed.sid, update)

    (request,) = twilio_fake.requests_to("UpdateCall")
    assert request.path.endswith(f"/Calls/{placed.sid}.json")
    assert request.form == expected_form
    expected_status = "completed" if update.status else "in-progress"
    assert telephony.fetch_call_status(placed.sid) == expected_status


def test_fetch_call_status(twilio_fake: TwilioFake, telephony: TwilioTelephony) -> None:
    placed = telephony.place_call(alert_call())
    assert telephony.fetch_call_status(placed.sid) == "queued"
    twilio_fake.set_call_status(placed.sid, "no-answer")
    assert telephony.fetch_call_status(placed.sid) == "no-answer"
    assert [r.method for r in twilio_fake.requests_to("FetchCall")] == ["GET", "GET"]


def test_redirecting_a_finished_call_is_rejected(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    placed = telephony.place_call(alert_call())
    twilio_fake.set_call_status(placed.sid, "completed")

    error = raised(lambda: telephony.update_call(placed.sid, CallUpdate(twiml="<Response/>")))

    assert (error.kind, error.code, error.http_status) == (TelephonyErrorKind.REJECTED, 21220, 400)


def test_unknown_call_is_rejected(telephony: TwilioTelephony) -> None:
    error = raised(lambda: telephony.fetch_call_status("CA" + "0" * 32))
    assert (error.kind, error.code, error.http_status) == (TelephonyErrorKind.REJECTED, 20404, 404)


# -- messages -------------------------------------------------------------------------------


def test_sms_with_body_and_status_callback(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    sent = telephony.send_sms(
        SmsRequest(
            to=PRINCIPAL,
            from_=HOTLINE,
            body="Critical tip 4821337 for Lincoln HS. Reply 1 to confirm.",
            status_callback=f"{CALLBACKS}/sms/status?message=9",
        )
    )

    assert sent.sid.startswith("SM")
    assert SID.match(sent.sid)
    assert sent.status == "queued"
    (request,) = twilio_fake.requests_to("CreateMessage")
    assert sorted(request.form) == sorted(
        [
            ("To", PRINCIPAL),
            ("From", HOTLINE),
            ("Body", "Critical tip 4821337 for Lincoln HS. Reply 1 to confirm."),
            ("StatusCallback", f"{CALLBACKS}/sms/status?message=9"),
        ]
    )


def test_sms_with_media_only(twilio_fake: TwilioFake, telephony: TwilioTelephony) -> None:
    media = [f"{CALLBACKS}/media/1.jpg", f"{CALLBACKS}/media/2.png"]
    sent = telephony.send_sms(SmsRequest(to=PRINCIPAL, from_=HOTLINE, media_urls=media))

    assert SID.match(sent.sid)
    (request,) = twilio_fake.requests_to("CreateMessage")
    assert request.fields == {"To": [PRINCIPAL], "From": [HOTLINE], "MediaUrl": media}


# -- media ----------------------------------------------------------------------------------


def test_fetch_recording_returns_the_wav_with_basic_auth(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    sid, url = twilio_fake.add_recording()
    assert url.startswith("https://api.twilio.com/")  # what a webhook carries

    media = telephony.fetch_media(url)

    assert media.content == WAV_BYTES
    assert media.content_type == "audio/x-wav"
    (request,) = twilio_fake.requests_to("RecordingAudio")
    assert request.authorized
    assert request.path.endswith(f"/Recordings/{sid}.wav")


def test_fetch_recording_keeps_an_explicit_mp3(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    _, url = twilio_fake.add_recording(b"ID3fake")
    media = telephony.fetch_media(url + ".mp3")
    assert (media.content, media.content_type) == (b"ID3fake", "audio/mpeg")


def test_fetch_mms_follows_the_cdn_redirect_without_credentials(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    _, url = twilio_fake.add_mms_media(b"\xff\xd8\xffJPEG", "image/jpeg")

    media = telephony.fetch_media(url)

    assert (media.content, media.content_type) == (b"\xff\xd8\xffJPEG", "image/jpeg")
    (api,) = twilio_fake.requests_to("MediaContent")
    (cdn,) = twilio_fake.requests_to("MediaCdn")
    assert api.authorized
    assert "Authorization" not in cdn.headers  # credentials stay with the API host


def test_fetch_media_refuses_other_hosts(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    error = raised(lambda: telephony.fetch_media("https://attacker.example/x.wav"))
    assert error.kind is TelephonyErrorKind.REJECTED
    assert twilio_fake.requests == []


def test_fetch_missing_media_is_rejected(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    account = twilio_fake.account_sid
    url = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/RE{'1' * 32}"
    error = raised(lambda: telephony.fetch_media(url))
    assert (error.kind, error.http_status, error.code) == (TelephonyErrorKind.REJECTED, 404, 20404)


def test_delete_recording_is_idempotent(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    sid, _ = twilio_fake.add_recording()

    telephony.delete_recording(sid)
    telephony.delete_recording(sid)  # already gone: not an error

    assert sid not in twilio_fake.recordings
    assert [r.method for r in twilio_fake.requests_to("DeleteRecording")] == ["DELETE", "DELETE"]


def test_delete_media_deletes_the_mms_picture(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    sid, url = twilio_fake.add_mms_media(b"img")
    telephony.delete_media(url)
    assert sid not in twilio_fake.media
    (request,) = twilio_fake.requests_to("DeleteMedia")
    assert request.path == url.removeprefix("https://api.twilio.com") + ".json"


def test_delete_media_of_a_recording_url(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    sid, url = twilio_fake.add_recording()
    telephony.delete_media(url)
    assert sid not in twilio_fake.recordings


def test_delete_media_refuses_a_non_media_url(telephony: TwilioTelephony) -> None:
    error = raised(
        lambda: telephony.delete_media("https://api.twilio.com/2010-04-01/Accounts.json")
    )
    assert error.kind is TelephonyErrorKind.REJECTED


# -- error classification -------------------------------------------------------------------

SEND = {
    "call": lambda t, to=PRINCIPAL: t.place_call(alert_call(to=to)),
    "sms": lambda t, to=PRINCIPAL: t.send_sms(SmsRequest(to=to, from_=HOTLINE, body="Tip 1")),
}


@pytest.mark.parametrize("what", SEND)
def test_too_many_requests_is_retryable_and_nothing_was_created(
    twilio_fake: TwilioFake, telephony: TwilioTelephony, what: str
) -> None:
    twilio_fake.fail_next(status=429)

    error = raised(lambda: SEND[what](telephony))

    assert (error.kind, error.code, error.http_status) == (TelephonyErrorKind.RETRYABLE, 20429, 429)
    assert twilio_fake.calls == {}
    assert twilio_fake.messages == {}
    SEND[what](telephony)  # the retry goes through


def test_code_20429_is_retryable_whatever_the_http_status(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    twilio_fake.fail_next(status=400, code=20429)
    assert raised(lambda: SEND["call"](telephony)).kind is TelephonyErrorKind.RETRYABLE


@pytest.mark.parametrize("what", SEND)
def test_connection_refused_is_retryable(what: str, twilio_fake: TwilioFake) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    adapter = TwilioTelephony(
        twilio_fake.account_sid, "token", api_base_url=f"http://127.0.0.1:{closed_port}"
    )

    error = raised(lambda: SEND[what](adapter))

    assert error.kind is TelephonyErrorKind.RETRYABLE
    assert error.http_status is None


@pytest.mark.parametrize("what", SEND)
def test_read_timeout_is_unknown_outcome_and_the_request_did_arrive(
    twilio_fake: TwilioFake, what: str
) -> None:
    twilio_fake.hang_next(seconds=5)
    adapter = TwilioTelephony(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        api_base_url=twilio_fake.base_url,
        read_timeout=0.5,
    )

    error = raised(lambda: SEND[what](adapter))

    assert error.kind is TelephonyErrorKind.UNKNOWN_OUTCOME
    operation = "CreateCall" if what == "call" else "CreateMessage"
    assert len(twilio_fake.requests_to(operation)) == 1
    # And it went through: re-sending blindly would have called the principal twice.
    assert len(twilio_fake.calls) + len(twilio_fake.messages) == 1
    adapter.close()


def test_connection_dropped_after_sending_is_unknown_outcome(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    twilio_fake.drop_next()

    error = raised(lambda: SEND["call"](telephony))

    assert error.kind is TelephonyErrorKind.UNKNOWN_OUTCOME
    assert len(twilio_fake.calls) == 1


def test_read_timeout_on_a_read_is_retryable(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    placed = telephony.place_call(alert_call())
    twilio_fake.hang_next(seconds=5, method="GET")
    adapter = TwilioTelephony(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        api_base_url=twilio_fake.base_url,
        read_timeout=0.5,
    )

    assert (
        raised(lambda: adapter.fetch_call_status(placed.sid)).kind is TelephonyErrorKind.RETRYABLE
    )
    adapter.close()


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("what", SEND)
def test_server_errors_on_create_are_unknown_outcome(
    twilio_fake: TwilioFake, telephony: TwilioTelephony, status: int, what: str
) -> None:
    twilio_fake.fail_next(status=status)

    error = raised(lambda: SEND[what](telephony))

    assert (error.kind, error.http_status) == (TelephonyErrorKind.UNKNOWN_OUTCOME, status)
    assert error.code == {500: 20500, 503: 20503}[status]


def test_server_error_on_update_is_unknown_outcome_and_on_fetch_retryable(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    placed = telephony.place_call(alert_call())
    twilio_fake.fail_next(2, status=503)

    update = raised(lambda: telephony.update_call(placed.sid, CallUpdate(status="completed")))
    fetch = raised(lambda: telephony.fetch_call_status(placed.sid))

    assert update.kind is TelephonyErrorKind.UNKNOWN_OUTCOME
    assert fetch.kind is TelephonyErrorKind.RETRYABLE


@pytest.mark.parametrize(
    ("channel", "number", "code"),
    [(channel, number, code) for (channel, number), code in DEFAULT_NUMBER_ERRORS.items()],
)
def test_permanent_number_codes(
    telephony: TwilioTelephony,
    caplog: pytest.LogCaptureFixture,
    channel: str,
    number: str,
    code: int,
) -> None:
    with caplog.at_level(logging.DEBUG):
        error = raised(lambda: SEND[channel](telephony, number))

    assert (error.kind, error.code, error.http_status) == (
        TelephonyErrorKind.PERMANENT_NUMBER,
        code,
        400,
    )
    # Twilio's own message quotes the number for some codes: it must not survive anywhere.
    for text in (str(error), repr(error), caplog.text):
        assert number not in text
        assert number[1:] not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_every_permanent_code_is_recognised(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    for code in sorted(PERMANENT_NUMBER_CODES):
        twilio_fake.fail_number("+13125550199", code)
        error = raised(lambda: SEND["sms"](telephony, "+13125550199"))
        assert (error.kind, error.code) == (TelephonyErrorKind.PERMANENT_NUMBER, code)


def test_other_bad_request_is_rejected(twilio_fake: TwilioFake, telephony: TwilioTelephony) -> None:
    twilio_fake.fail_next(status=400, code=21205)
    error = raised(lambda: SEND["call"](telephony))
    assert (error.kind, error.code, error.http_status) == (TelephonyErrorKind.REJECTED, 21205, 400)


def test_bad_credentials_are_rejected(twilio_fake: TwilioFake) -> None:
    adapter = TwilioTelephony(
        twilio_fake.account_sid, "not-the-token", api_base_url=twilio_fake.base_url
    )

    error = raised(lambda: SEND["call"](adapter))

    assert (error.kind, error.code, error.http_status) == (TelephonyErrorKind.REJECTED, 20003, 401)
    (request,) = twilio_fake.requests
    assert not request.authorized
    assert twilio_fake.calls == {}


def test_a_contract_violation_is_caught_by_the_fake(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    error = raised(lambda: telephony.place_call(alert_call(machine_detection="Sometimes")))

    assert error.kind is TelephonyErrorKind.REJECTED
    problems = twilio_fake.take_problems()
    assert len(problems) == 1
    assert "MachineDetection" in problems[0]
    assert "Sometimes" in problems[0]
    assert twilio_fake.calls == {}


@pytest.mark.parametrize(
    ("status", "code", "idempotent", "kind"),
    [
        (429, None, False, TelephonyErrorKind.RETRYABLE),
        (429, 20429, False, TelephonyErrorKind.RETRYABLE),
        (400, 21610, False, TelephonyErrorKind.PERMANENT_NUMBER),
        (400, 21205, False, TelephonyErrorKind.REJECTED),
        (401, 20003, True, TelephonyErrorKind.REJECTED),
        (404, 20404, True, TelephonyErrorKind.REJECTED),
        (500, None, False, TelephonyErrorKind.UNKNOWN_OUTCOME),
        (502, None, False, TelephonyErrorKind.UNKNOWN_OUTCOME),
        (503, 20503, True, TelephonyErrorKind.RETRYABLE),
    ],
)
def test_kind_for_http(
    status: int, code: int | None, idempotent: bool, kind: TelephonyErrorKind
) -> None:
    assert kind_for_http(status, code, idempotent=idempotent) is kind


# -- the base-URL rewrite: nothing goes to twilio.com ---------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?x=1",
            "http://mock:4010/2010-04-01/Accounts/AC1/Calls.json?x=1",
        ),
        (
            "https://api.us1.twilio.com/2010-04-01/Accounts.json",
            "http://mock:4010/2010-04-01/Accounts.json",
        ),
        ("https://media.twilio.com/v1/x", "http://mock:4010/v1/x"),
        ("https://TWILIO.COM/x", "http://mock:4010/x"),
        ("https://eviltwilio.com/x", "https://eviltwilio.com/x"),
        ("https://twilio.com.evil.example/x", "https://twilio.com.evil.example/x"),
        ("https://hotline.example.org/x", "https://hotline.example.org/x"),
    ],
)
def test_rewrite_twilio_url(url: str, expected: str) -> None:
    assert rewrite_twilio_url(url, "http://mock:4010") == expected
    assert rewrite_twilio_url(url, None) == url


def test_rewrite_keeps_a_base_path_prefix() -> None:
    assert (
        rewrite_twilio_url(
            "https://api.twilio.com/2010-04-01/Calls.json", "https://p.example/laml/"
        )
        == "https://p.example/laml/2010-04-01/Calls.json"
    )


def test_everything_goes_to_the_base_url_and_nothing_to_twilio(
    twilio_fake: TwilioFake, telephony: TwilioTelephony
) -> None:
    with install_guard() as guard:
        placed = telephony.place_call(alert_call())
        telephony.update_call(placed.sid, CallUpdate(status="completed"))
        telephony.fetch_call_status(placed.sid)
        telephony.send_sms(SmsRequest(to=PRINCIPAL, from_=HOTLINE, body="x"))
        sid, url = twilio_fake.add_recording()
        telephony.fetch_media(url)
        telephony.delete_recording(sid)
        _, mms = twilio_fake.add_mms_media(b"img")
        telephony.fetch_media(mms)
        telephony.delete_media(mms)

    assert guard.violations == []
    assert len(twilio_fake.requests) == 9
    hosts = {r.headers["Host"] for r in twilio_fake.requests}
    assert hosts == {f"127.0.0.1:{twilio_fake.port}", f"localhost:{twilio_fake.port}"}


def test_without_a_base_url_the_guard_stops_the_adapter_before_twilio() -> None:
    # Proves the guard above would notice: the default adapter heads for api.twilio.com, and the
    # guard's error is not swallowed as a retryable connection failure.
    adapter = TwilioTelephony("AC" + "0" * 32, "token")
    with install_guard() as guard, pytest.raises(LiveNetworkError):
        adapter.place_call(alert_call())
    assert guard.violations
    assert "api.twilio.com" in guard.violations[0]


def test_the_fake_requires_the_contract_file(twilio_contract: Contract) -> None:
    # The fixture skipped (locally) or failed (CI) if ../shared/twilio was missing; here it is.
    assert twilio_contract.source.name == "twilio_api_v2010.json"
    assert "tests" not in twilio_contract.source.parts  # read from ../shared, never copied


# -- the contract checker itself can fail ---------------------------------------------------

FORM = "application/x-www-form-urlencoded"
ACCOUNT = "AC" + "a" * 32


def test_contract_flags_what_twilio_would_refuse(twilio_contract: Contract) -> None:
    found = twilio_contract.find("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert found is not None
    op, params = found
    problems = twilio_contract.check_request(
        op,
        params,
        [],
        [
            ("To", PRINCIPAL),
            ("Timeout", "soon"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "hungup"),
            ("Url", f"{CALLBACKS}/a"),
            ("Url", f"{CALLBACKS}/b"),
            ("StatusCallback", "/relative/path"),
            ("Bogus", "1"),
        ],
        FORM,
    )
    text = "\n".join(problems)
    for expected in (
        "'soon' is not an integer",
        "'hungup' is not one of",
        "field 'Url' repeats but is not an array",
        "'/relative/path' is not an absolute http(s) URL",
        "field 'Bogus' is not a property",
        "required field 'From' is missing",
    ):
        assert expected in text, text
    assert len(problems) == 6, text


def test_contract_flags_bad_enums_paths_and_bodies(twilio_contract: Contract) -> None:
    found = twilio_contract.find("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{'b' * 32}.json")
    assert found is not None
    op, params = found
    assert op.operation_id == "UpdateCall"
    assert twilio_contract.check_request(op, params, [], [("Status", "completed")], FORM) == []
    (enum,) = twilio_contract.check_request(op, params, [], [("Status", "hangup")], FORM)
    assert "'hangup' is not one of ['canceled', 'completed']" in enum
    (wrong_type,) = twilio_contract.check_request(op, params, [], [("Status", "completed")], None)
    assert "body must be application/x-www-form-urlencoded" in wrong_type

    bad = twilio_contract.find("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/XX123.json")
    assert bad is not None
    assert any(
        "does not match" in p for p in twilio_contract.check_request(bad[0], bad[1], [], [], None)
    )


def test_contract_flags_bad_responses(twilio_contract: Contract) -> None:
    found = twilio_contract.find("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert found is not None
    op = found[0]
    good = b'{"sid": "CA' + b"c" * 32 + b'", "status": "queued", "to": null}'
    assert twilio_contract.check_response(op, 201, good) == []
    assert twilio_contract.check_response(op, 200, good) == [
        "CreateCall response 200: the spec declares only [201]"
    ]
    problems = twilio_contract.check_response(
        op, 201, b'{"sid": "XX", "status": "dialing", "x": 1}'
    )
    text = "\n".join(problems)
    assert "does not match" in text
    assert "'dialing' is not one of" in text
    assert "'x'" in text
    assert twilio_contract.check_response(op, 429, b'{"message": "slow"}') != []


def test_a_missing_contract_skips_locally_and_fails_on_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "twilio_api_v2010.json"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"need \.\./shared/twilio/twilio_api_v2010"):
        contract_or_skip(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"need \.\./shared/twilio/twilio_api_v2010"):
        contract_or_skip(missing)

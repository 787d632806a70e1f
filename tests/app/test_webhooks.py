"""Signature checks, forged and replayed webhooks, and the status callbacks behind them."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from hotline.core.clock import ManualClock
from hotline.models import Call, Recording, WebhookReceipt
from hotline.services import hotline
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.twilio_driver import TwilioDriver, sign

CALL = "CA" + "1" * 32


def test_twilio_published_test_vector() -> None:
    """The library's own example, so our signing helper and the validator agree with Twilio."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign("12345", url, params) == expected
    assert RequestValidator("12345").validate(url, params, expected)
    assert not RequestValidator("12345").validate(url, {**params, "Digits": "1235"}, expected)


def status(seq: int, call_status: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL,
        "AccountSid": "AC" + "0" * 32,
        "From": "+14158675309",
        "To": "+13125550100",
        "CallStatus": call_status,
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "SequenceNumber": str(seq),
        **extra,
    }


def count(app: Flask, model: type) -> int:
    with hotline(app).db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_signed_status_callback_is_applied(app: Flask, twilio: TwilioDriver) -> None:
    r = twilio.post("/twilio/voice/status", status(0, "completed", CallDuration="42"))
    assert r.status_code == 200
    assert r.content_type.startswith("text/xml")
    with hotline(app).db.sessionmaker() as s:
        call = s.scalars(select(Call)).one()
        assert (call.status, call.duration_seconds) == ("completed", 42)
        assert call.ended_at == hotline(app).clock.now()


@pytest.mark.parametrize(
    "how",
    ["unsigned", "wrong token", "tampered body", "signed for another url", "signed for http"],
)
def test_forged_webhooks_are_refused_and_store_nothing(
    how: str, app: Flask, twilio: TwilioDriver, caplog: pytest.LogCaptureFixture
) -> None:
    params = status(0, "completed", Body="secret words from +14158675309")
    url = TEST_PUBLIC_BASE_URL + "/twilio/voice/status"
    kwargs: dict[str, object] = {}
    if how == "unsigned":
        kwargs["signed"] = False
    elif how == "wrong token":
        kwargs["signature"] = sign("not-the-token", url, params)
    elif how == "tampered body":
        kwargs["signature"] = sign(TEST_AUTH_TOKEN, url, {**params, "CallStatus": "ringing"})
    elif how == "signed for another url":
        kwargs["signature"] = sign(TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL + "/twilio/sms", params)
    else:
        kwargs["signature"] = sign(TEST_AUTH_TOKEN, url.replace("https://", "http://"), params)
    with caplog.at_level(logging.DEBUG):
        r = twilio.post("/twilio/voice/status", params, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 403
    assert count(app, Call) == 0
    assert count(app, WebhookReceipt) == 0
    logged = caplog.text
    assert "secret words" not in logged
    assert "8675309" not in logged
    assert "/twilio/voice/status" in logged


def test_url_is_rebuilt_from_public_base_url_behind_a_proxy(app: Flask) -> None:
    """The app is reached as http://localhost behind the TLS proxy; Twilio signed the public
    https URL, query string included."""
    client = app.test_client()
    path = "/twilio/voice/status?step=3&x=a%20b"
    params = status(0, "completed")
    good = sign(TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL + path, params)
    assert (
        client.post(
            path,
            data=params,
            headers={"X-Twilio-Signature": good},
            base_url="http://localhost:8000",
        ).status_code
        == 200
    )
    as_seen = sign(TEST_AUTH_TOKEN, "http://localhost:8000" + path, params)
    assert (
        client.post(
            path,
            data=params,
            headers={"X-Twilio-Signature": as_seen},
            base_url="http://localhost:8000",
        ).status_code
        == 403
    )


def test_retry_with_the_same_idempotency_token_changes_nothing(
    app: Flask, twilio: TwilioDriver
) -> None:
    first = twilio.post("/twilio/voice/status", status(1, "ringing"), idempotency_token="tok-1")
    # Time passes and the call moves on; then Twilio re-delivers the first callback.
    twilio.post("/twilio/voice/status", status(2, "in-progress"), idempotency_token="tok-2")
    again = twilio.post("/twilio/voice/status", status(1, "ringing"), idempotency_token="tok-1")
    assert again.status_code == first.status_code
    assert again.data == first.data
    assert count(app, WebhookReceipt) == 2
    with hotline(app).db.sessionmaker() as s:
        assert s.scalars(select(Call)).one().status == "in-progress"


def test_retry_without_token_is_recognised_by_content(app: Flask, twilio: TwilioDriver) -> None:
    twilio.post("/twilio/voice/status", status(3, "completed", CallDuration="5"))
    twilio.post("/twilio/voice/status", status(3, "completed", CallDuration="5"))
    assert count(app, WebhookReceipt) == 1
    assert count(app, Call) == 1


def test_status_callbacks_are_ordered_by_sequence_number(app: Flask, twilio: TwilioDriver) -> None:
    for seq, st in [
        (0, "initiated"),
        (3, "completed"),
        (1, "ringing"),
        (2, "in-progress"),
        (3, "completed"),
    ]:
        extra = {"CallDuration": "30"} if st == "completed" else {}
        assert twilio.post("/twilio/voice/status", status(seq, st, **extra)).status_code == 200
    with hotline(app).db.sessionmaker() as s:
        call = s.scalars(select(Call)).one()
        assert (call.status, call.last_sequence_number, call.duration_seconds) == (
            "completed",
            3,
            30,
        )


def test_final_status_is_never_replaced(app: Flask, twilio: TwilioDriver) -> None:
    twilio.post("/twilio/voice/status", {**status(0, "no-answer"), "SequenceNumber": ""})
    twilio.post("/twilio/voice/status", {**status(0, "ringing"), "SequenceNumber": ""})
    twilio.post("/twilio/voice/status", {**status(0, "completed"), "SequenceNumber": ""})
    with hotline(app).db.sessionmaker() as s:
        assert s.scalars(select(Call)).one().status == "no-answer"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"CallSid": CALL},
        {"CallSid": CALL, "CallStatus": "exploded"},
        {"CallSid": "C" * 5000, "CallStatus": "completed"},
        {
            "CallSid": CALL,
            "CallStatus": "completed",
            "SequenceNumber": "-1\x00",
            "CallDuration": "9" * 40,
            "From": "anonymous",
        },
    ],
)
def test_malformed_parameters_never_500(params: dict[str, str], twilio: TwilioDriver) -> None:
    assert twilio.post("/twilio/voice/status", params).status_code == 200


def test_oversized_webhook_is_refused(twilio: TwilioDriver) -> None:
    assert (
        twilio.post("/twilio/voice/status", status(0, "completed", Body="x" * 70_000)).status_code
        == 413
    )


def test_caller_location_is_not_kept(app: Flask, twilio: TwilioDriver) -> None:
    twilio.post(
        "/twilio/voice/status",
        status(0, "completed", FromCity="OAKLAND", FromZip="94607", CallerName="JANE DOE"),
    )
    with hotline(app).db.sessionmaker() as s:
        dump = " ".join(r.body + r.key for r in s.scalars(select(WebhookReceipt)))
    assert "OAKLAND" not in dump
    assert "94607" not in dump
    assert "JANE" not in dump


def test_recording_status_never_regresses(app: Flask, twilio: TwilioDriver) -> None:
    def rec(st: str, duration: str = "") -> dict[str, str]:
        return {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": CALL,
            "RecordingSid": "RE" + "2" * 32,
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE2",
            "RecordingStatus": st,
            "RecordingDuration": duration,
        }

    twilio.post("/twilio/recording/status", rec("in-progress"))
    twilio.post("/twilio/recording/status", rec("completed", "17"))
    twilio.post("/twilio/recording/status", rec("in-progress"))
    with hotline(app).db.sessionmaker() as s:
        r = s.scalars(select(Recording)).one()
        assert (r.status, r.duration_seconds) == ("completed", 17)


def test_every_twilio_route_refuses_unsigned_requests(app: Flask) -> None:
    """Future routes included: anything mounted under /twilio/ must verify the signature."""
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/")]
    assert len(rules) >= 2
    client = app.test_client()
    for rule in rules:
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        r = client.post(path, data={"CallSid": CALL, "CallStatus": "completed"})
        assert r.status_code == 403, rule.rule
    assert count(app, WebhookReceipt) == 0
    assert count(app, Call) == 0


def test_a_concurrent_first_callback_of_the_same_call_is_not_lost(
    app: Flask, twilio: TwilioDriver
) -> None:
    """Two status callbacks of a new call arrive at once; both create the Call row, one loses
    the race on the unique sid. The loser applies its status again rather than failing."""
    from sqlalchemy import event

    from hotline.core.calls import CallStatusUpdate, apply_call_status
    from hotline.models import CallDirection

    db = hotline(app).db
    raced: list[bool] = []

    def other_request_commits_first(session, _flush_context, _instances):  # type: ignore[no-untyped-def]
        # Between this request's "no such call yet" and its INSERT, the other one commits.
        if raced or not any(isinstance(o, Call) for o in session.new):
            return
        raced.append(True)
        with db.session() as other:
            apply_call_status(
                other,
                CallStatusUpdate(CALL, "ringing", 1, direction=CallDirection.INBOUND),
                hotline(app).clock.now(),
            )

    event.listen(db.sessionmaker, "before_flush", other_request_commits_first)
    try:
        r = twilio.post("/twilio/voice/status", status(2, "in-progress"))
    finally:
        event.remove(db.sessionmaker, "before_flush", other_request_commits_first)
    assert r.status_code == 200
    assert raced
    with db.sessionmaker() as s:
        call = s.scalars(select(Call)).one()
        assert (call.status, call.last_sequence_number) == ("in-progress", 2)
    assert count(app, WebhookReceipt) == 1


def test_old_receipts_are_purged_recent_ones_kept(
    app: Flask, twilio: TwilioDriver, clock: ManualClock
) -> None:
    from hotline.web.webhooks import RECEIPT_RETENTION, purge_receipts

    twilio.post("/twilio/voice/status", status(0, "ringing"))
    clock.advance(RECEIPT_RETENTION)
    twilio.post("/twilio/voice/status", status(1, "completed"))
    clock.advance(1)
    with hotline(app).db.session() as s:
        assert purge_receipts(s, clock.now()) == 1
    assert count(app, WebhookReceipt) == 1

"""Status callbacks from the phone network (the console's "Call status changes" URL and the
recording callbacks the app asks for). The voice menu and SMS routes live in ivr_flows/ and sms/."""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from hotline.core.calls import CallStatusUpdate, apply_call_status, apply_recording_status
from hotline.services import hotline
from hotline.web.webhooks import TwilioRequest, twilio_webhook

log = logging.getLogger(__name__)
bp = Blueprint("twilio_status", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def _empty() -> Response:
    return Response(EMPTY_TWIML, content_type="text/xml")


@bp.post("/voice/status")
@twilio_webhook("voice.status")
def voice_status(req: TwilioRequest, session: Session) -> Response:
    update = CallStatusUpdate.from_params(req.params)
    if update is None:
        log.warning("call status callback without a usable CallSid/CallStatus; ignored")
        return _empty()
    apply_call_status(session, update, hotline().clock.now())
    return _empty()


@bp.post("/recording/status")
@twilio_webhook("recording.status")
def recording_status(req: TwilioRequest, session: Session) -> Response:
    if apply_recording_status(session, req.params, hotline().clock.now()) is None:
        log.warning("recording status callback without usable fields; ignored")
    return _empty()

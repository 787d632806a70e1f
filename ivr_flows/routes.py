"""The voice webhooks: verify (the decorator), parse, run the menu, render. Nothing else.

- ``POST /twilio/voice``: a call comes in (the console's "A call comes in" URL).
- ``POST /twilio/voice/step?n=…&e=…``: every answer to a prompt; ``e`` says what happened
  (``input``, ``timeout``, ``recorded``, ``norecording``), ``n`` which prompt it answers.
- ``POST /twilio/voice/rescue``: the recording left after an apology, when the menu failed.

Any exception inside still answers valid TwiML: an apology and a chance to record, so a caller
never hears "an application error has occurred" and a tip is never lost to a bug.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.core import tips as tip_service
from hotline.models import Call, Tip, TipStatus
from hotline.services import hotline
from hotline.web.webhooks import TwilioRequest, twilio_webhook
from hotline.wording import DEFAULT_LANGUAGE, LANGUAGE_MENU
from ivr_flows import flow, runtime
from ivr_flows.render import Renderer, apology, thanks_and_goodbye

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")

_SID_RE = re.compile(r"^[A-Za-z]{2}[0-9a-fA-F]{32}$")
_DIGITS_RE = re.compile(r"[^0-9*#]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _twiml(body: str) -> Response:
    return Response(body, content_type="text/xml; charset=utf-8")


def parse_event(kind: str, params: dict[str, str]) -> flow.Event:
    """The menu's event from Twilio's parameters. Anything malformed is treated as no input."""
    if kind == "input":
        digits = _DIGITS_RE.sub("", params.get("Digits", ""))[:32]
        if digits:
            return flow.Keys(digits)
        speech = _CONTROL_RE.sub(" ", params.get("SpeechResult", ""))[:500].strip()
        if speech:
            try:
                confidence: float | None = float(params.get("Confidence", ""))
            except ValueError:
                confidence = None
            return flow.Speech(speech, confidence)
        return flow.NoInput()
    if kind == "recorded":
        sid = params.get("RecordingSid", "")
        url = params.get("RecordingUrl", "")
        raw_duration = params.get("RecordingDuration", "")
        duration = int(raw_duration) if raw_duration.isdigit() and len(raw_duration) < 7 else None
        if (
            _SID_RE.match(sid)
            and url.startswith(("https://", "http://"))
            and len(url) <= 500
            # A zero-second recording (the caller hung up at the beep) holds nothing to hear.
            and duration != 0
        ):
            return flow.Recorded(
                recording_sid=sid,
                recording_url=url,
                duration_seconds=duration,
                hung_up=params.get("Digits", "") == "hangup",
            )
        return flow.NotRecorded()
    if kind == "norecording":
        return flow.NotRecorded()
    return flow.NoInput()


_VERSTAT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,63}$")


def caller_verification(params: dict[str, str]) -> str | None:
    """Twilio's ``StirVerstat`` (``TN-Validation-Passed-A``, ``No-TN-Validation``...): as given
    when it looks like one, ``unrecognised`` otherwise, None when absent."""
    value = params.get("StirVerstat", "").strip()
    if not value:
        return None
    return value if _VERSTAT_RE.match(value) else "unrecognised"


def _call_sid(req: TwilioRequest) -> str | None:
    sid = req.get("CallSid")
    return sid if _SID_RE.match(sid) else None


def run_menu(req: TwilioRequest, session: Session, event: flow.Event, n: int | None) -> Response:
    services = hotline()
    base = services.settings.public_base_url
    sid = _call_sid(req)
    if sid is None:
        log.warning("voice webhook without a usable CallSid; answering with the apology")
        return _twiml(apology(base, DEFAULT_LANGUAGE))
    language = DEFAULT_LANGUAGE
    for attempt in (1, 2):
        try:
            return _twiml(_menu_turn(req, session, event, n, sid))
        except IntegrityError:
            # A concurrent webhook of the same call inserted the same row first (Twilio posts
            # the <Record> action and the recording's status callback at the same moment):
            # do the turn again on top of what it committed.
            session.rollback()
            if attempt == 2:
                log.exception("voice menu conflict on call %s persisted", sid)
        except Exception:
            # Logged without the caller's number (the redaction filter would mask it anyway).
            log.exception("voice menu failed on call %s; answering with the apology", sid)
            session.rollback()
            break
        language = _language_of(session, sid)
    return _twiml(apology(base, language))


def _language_of(session: Session, call_sid: str) -> str:
    """The language to apologise in. Part of the menu's boundary: it runs after a failure, so
    whatever is wrong with the call's row, the caller still hears the apology."""
    try:
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        return flow.VoiceState.from_json(call.flow_state).language if call else DEFAULT_LANGUAGE
    except Exception:  # noqa: BLE001 - the apology must be said, in English if need be
        session.rollback()
        return DEFAULT_LANGUAGE


def _menu_turn(
    req: TwilioRequest, session: Session, event: flow.Event, n: int | None, sid: str
) -> str:
    """One turn of the menu: load the call, advance, apply the effects, render. Raises on any
    failure; the caller turns that into the apology."""
    services = hotline()
    now = services.clock.now()
    call = runtime.load_call(session, sid, req.get("From"), now)
    state = flow.VoiceState.from_json(call.flow_state)
    ctx = runtime.DatabaseFlowContext(session, services.keyring, now, caller=req.get("From"))
    # An answer to a prompt that is no longer current (a late or replayed request) changes
    # nothing: the current prompt is said again.
    stale = n is not None and n != state.n
    turn = flow.Turn(state) if stale else flow.advance(state, event, ctx)
    state = runtime.apply_effects(session, call, turn.state, turn.effects, now, req.get("From"))
    if state.step in (flow.Step.READBACK, flow.Step.ENDED) and state.tip_id is not None:
        tip = session.get(Tip, state.tip_id)
        if tip is not None and tip.status is TipStatus.INTAKE:
            tip_service.finish_intake(session, tip, now)
    script, heard = flow.script(state, ctx, pin=runtime.open_pin(state))
    state = runtime.apply_effects(session, call, state, heard, now, req.get("From"))
    state = flow.mark_messages_read(state)
    if state.step is flow.Step.ENDED:
        state = replace(state, pin_sealed=None)
    call.flow_state = state.to_json()
    session.flush()
    renderer = Renderer(services.settings.public_base_url, state.language, ctx.hints)
    return renderer.render(state.n, turn.preface, script)


def _apology_without_database(_req: TwilioRequest) -> Response:
    """The database failed: the apology and a chance to record all the same. The recording is
    kept at the provider; its action reaches ``/rescue`` and, if the database is still down,
    :mod:`hotline.background.reconcile` brings it in later."""
    return _twiml(apology(hotline().settings.public_base_url, DEFAULT_LANGUAGE))


def _rescue_language() -> str:
    language = request.args.get("lang", DEFAULT_LANGUAGE)
    return language if language in LANGUAGE_MENU.values() else DEFAULT_LANGUAGE


def _thanks_without_database(_req: TwilioRequest) -> Response:
    """The message after the apology could not be stored: it stays at the provider and is
    brought in by :mod:`hotline.background.reconcile`; the caller is thanked (never asked again)."""
    return _twiml(thanks_and_goodbye(_rescue_language()))


@bp.post("")
@twilio_webhook("voice.incoming", on_database_error=_apology_without_database)
def incoming(req: TwilioRequest, session: Session) -> Response:
    return run_menu(req, session, flow.Start(caller_verification(req.params)), None)


@bp.post("/step")
@twilio_webhook("voice.step", on_database_error=_apology_without_database)
def step(req: TwilioRequest, session: Session) -> Response:
    raw_n = request.args.get("n", "")
    n = int(raw_n) if raw_n.isdigit() and len(raw_n) < 7 else None
    return run_menu(req, session, parse_event(request.args.get("e", ""), req.params), n)


@bp.post("/rescue")
@twilio_webhook("voice.rescue", on_database_error=_thanks_without_database)
def rescue(req: TwilioRequest, session: Session) -> Response:
    """The message left after an apology: kept on the call's tip, or a new tip, whatever else
    failed. Deliberately simple: this is the path of last resort."""
    services = hotline()
    now = services.clock.now()
    language = _rescue_language()
    event = parse_event("recorded", req.params)
    sid = _call_sid(req)
    if isinstance(event, flow.Recorded) and sid is not None:
        for attempt in (1, 2):
            try:
                _keep_rescue_recording(session, req, event, sid, language, now)
                break
            except Exception as exc:
                session.rollback()
                if attempt == 2 or not isinstance(exc, IntegrityError):
                    # The recording is still in the provider's call log; say so loudly.
                    log.exception("could not keep the rescue recording of call %s", sid)
                    break
    return _twiml(thanks_and_goodbye(language))


def _keep_rescue_recording(
    session: Session,
    req: TwilioRequest,
    event: flow.Recorded,
    sid: str,
    language: str,
    now: datetime,
) -> None:
    call = runtime.load_call(session, sid, req.get("From"), now)
    runtime.keep_recording(
        session,
        call,
        recording_sid=event.recording_sid,
        url=event.recording_url,
        duration_seconds=event.duration_seconds,
        language=language,
        now=now,
        caller_verification=caller_verification(req.params),
    )

"""The dev phone: a browser page that calls the hotline through the simulated phone network.

A newcomer runs ``make run``, opens http://127.0.0.1:5000/ and calls the hotline with no account
anywhere. The page never calls the app's ``/twilio/...`` routes itself: every keypress, spoken
phrase and recording goes through the simulator's handset API, which posts the same signed
webhooks Twilio would. What the hotline says comes back as the simulator's event feed.

The blueprint is registered only when the app runs on the simulated network, and every route
answers 404 when there is no simulator anyway: production never exposes it. Its page is
``templates/devphone/phone.html`` beside this module, with ``static/devphone.js`` and
``static/devphone.css`` (served under ``/dev/phone/static/``); pyproject.toml ships them as
package data.

JSON API (under ``/dev/phone/api``):

* ``GET state``: hotline number, default caller number, event cursor, every call so far, the
  patient-caller setting (``patience``) and the time zone the page shows clock times in
  (``time_zone``: the network has no district, so the first district's in the directory, with
  ``source`` saying so; UTC while there is none);
* ``GET events?cursor=N``: events after ``N`` (oldest first, at most :data:`MAX_EVENTS` per
  answer, ``more`` when there are others), the next cursor, and the calls they concern plus every
  live call; each event carries its call sid, kind, text, language, voice, the call's status at
  that moment and time, so later pages (outbound alert calls, SMS inbox) read the same feed;
  a call carries ``listen_until`` and ``listen_seconds`` while a <Gather> or <Record> waits for
  the caller (how long it was given, patience included);
* ``GET calls/<sid>``: one call and its whole log (a reloaded page picks up a live call);
* ``GET calls/<sid>/contacts``: who the call's handset is in the directory (an alert call
  rings a contact's number; several contacts may share one), so the page can say "incoming call
  to Angela Brooks (Principal)" without a phone number in any URL (each contact with its
  district's ``time_zone``, the zone the alert call speaks its times in);
* ``GET emails?cursor=N``: e-mails the development outbox kept after ``N`` (newest last: seq,
  time, sender, recipients, subject), the next cursor and ``reset`` when the outbox restarted;
  ``GET emails/<seq>``: one e-mail with its text and HTML bodies. ``available`` is false when
  e-mail goes out through ``SMTP_URL`` instead;
* ``POST dial`` ``{"from": "+15555550123"}``, ``POST digits`` ``{"call_sid", "digits"}``,
  ``POST speech`` ``{"call_sid", "text", "confidence"?}``, ``POST recording``
  ``{"call_sid", "text"}`` or ``{"call_sid", "audio_wav_base64"}`` (then ``#``),
  ``POST hangup`` ``{"call_sid"}``;
* calls the app places (alerts to contacts) ring here: ``POST answer``
  ``{"call_sid", "by": "human" | "machine"}`` (a machine gets the verdict of the call's machine
  detection), ``POST ring`` ``{"call_sid"}`` (let it ring until its ring timeout: no-answer,
  ``rings_until`` says when) and ``POST decline`` ``{"call_sid"}`` (busy);
* texts: ``POST texts`` ``{"from", "body", "media"?: [{"content_type", "data_base64"}]}`` texts
  the hotline from any number (pictures, at most :data:`MAX_PICTURES` of
  :data:`PICTURE_TYPES`, :data:`MAX_PICTURE_BYTES` in all, are kept by the network and reach the
  app as Twilio's ``MediaUrlN``; STOP, START and HELP are answered by the network itself, as
  Twilio does); ``GET texts``: every handset's conversation (what it sent, the hotline's answers
  and later texts with their delivery state: queued, sent, delivered, undelivered, failed, and
  the network's own keyword answers), whether it opted out, whether it is reachable; the page
  reads it again when the event feed brings an ``sms`` event. ``GET texts/<sid>/media/<n>``: a
  picture a handset sent (404 once the app deleted it). ``POST texts/reachable``
  ``{"number", "reachable"}`` switches a handset off (the hotline's texts end undelivered) or on;
* ``POST patience`` ``{"patient": true | false, "multiplier"?}``: the "patient caller" switch.
  On, every <Gather> timeout and <Record> silence timeout armed from then on is
  ``multiplier`` (default :data:`PATIENT_MULTIPLIER`, at most 20) times its TwiML's, on every
  call of the network, for people reading the prompts as they go; off (the default) is Twilio's
  timing. ``GET state`` and every ``GET events`` answer carry it.

State-changing requests must be JSON and carry ``X-Dev-Phone: 1``: a cross-site page cannot send
either without a CORS preflight, which the app never grants. A Host check keeps DNS-rebinding
pages out, and a foreign ``Origin`` or ``Sec-Fetch-Site`` is refused. Handset errors (a call that
has ended, no recording listening, a call answered twice) are JSON 409/400 answers the page shows,
never a 500.

Phone numbers are never logged here (the app's log filter masks them anyway).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import wave
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sansio.blueprints import BlueprintSetupState
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as BaseResponse

from hotline.email.dev import DevOutbox, StoredEmail
from hotline.models import Contact, ContactRole, District, PhoneNumber, School
from hotline.services import hotline
from hotline.telephony.simulated import (
    HandsetError,
    SimCallInfo,
    SimConversation,
    SimEvent,
    SimText,
    SimulatedPhoneNetwork,
)
from hotline.telephony.simulated.network import MAX_PATIENCE

bp = Blueprint(
    "devphone",
    __name__,
    url_prefix="/dev/phone",
    template_folder="templates",
    static_folder="static",
)

#: A fictional caller (555 is not a real area code), editable on the page.
DEFAULT_CALLER = "+15555550123"
#: Events per answer of ``GET events``; the page asks again at once when ``more`` is true.
MAX_EVENTS = 500
#: Longest text a handset "says" or records.
MAX_TEXT = 4000
#: A recorded WAV (8 kHz, 16-bit mono: about 16 kB a second) up to ten minutes.
MAX_AUDIO_BYTES = 10 * 60 * 16_000
DTMF_KEYS = frozenset("0123456789*#")
API_HEADER = "X-Dev-Phone"
#: How the handset answers an outbound call: a person, or a machine (voicemail).
ANSWER_BY = frozenset({"human", "machine"})
#: Twilio's longest text body.
MAX_SMS_BODY = 1600
#: Twilio takes at most 10 media items per message, 5 MB in all.
MAX_PICTURES = 10
MAX_PICTURE_BYTES = 5 * 1024 * 1024
#: The pictures the page attaches (and serves back). No SVG: opened on its own it could run
#: scripts on this origin.
PICTURE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/heic", "image/heif"}
)
#: How much longer the hotline waits for a "patient caller" (the page's switch).
PATIENT_MULTIPLIER = 5.0
#: A contact's role in plain words, for the incoming-call card.
ROLE_WORDS: dict[ContactRole, str] = {
    ContactRole.SCHOOL_CONTACT: "school contact",
    ContactRole.DISTRICT_CONTACT: "district contact",
    ContactRole.PSAP: "911 centre (PSAP)",
    ContactRole.LAW_ENFORCEMENT: "law enforcement",
    ContactRole.PIO: "communications",
    ContactRole.DUTY: "hotline duty supervisor",
}

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

T = TypeVar("T")


class ApiError(Exception):
    """An answer the page shows to the user: HTTP status and a sentence."""

    def __init__(self, status: int, message: str, code: str = "bad-request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


# --- registration, guards, errors ---------------------------------------------------------------


def _root() -> BaseResponse:
    """``GET /`` on the development default: straight to the dev phone."""
    if _simulator_or_none() is None:
        abort(404)
    return redirect("/dev/phone", code=302)


@bp.record_once
def _add_root_redirect(state: BlueprintSetupState) -> None:
    # An app-level rule: the blueprint's own rules all live under /dev/phone.
    app = state.app
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", endpoint="devphone_root", view_func=_root, methods=["GET"])


def _simulator_or_none() -> SimulatedPhoneNetwork | None:
    return hotline().simulator


def _simulator() -> SimulatedPhoneNetwork:
    sim = _simulator_or_none()
    if sim is None:
        abort(404)
    return sim


@bp.before_request
def _guard() -> None:
    if _simulator_or_none() is None:
        abort(404)
    if not _trusted_host():
        raise ApiError(403, "This page answers only on its own address.", "bad-host")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _refuse_cross_site()


def _trusted_host() -> bool:
    """The loopback or PUBLIC_BASE_URL's host: a DNS-rebinding page arrives with another one."""
    try:
        hostname = urlsplit(f"//{request.host}").hostname or ""
    except ValueError:
        return False
    if hostname in _LOOPBACK_HOSTS or hostname.endswith(".localhost"):
        return True
    public = urlsplit(hotline().settings.public_base_url).hostname or ""
    return hostname == public.lower()


def _refuse_cross_site() -> None:
    if request.headers.get(API_HEADER) != "1":
        raise ApiError(403, f"Cross-site request refused (no {API_HEADER} header).", "cross-site")
    if request.mimetype != "application/json":
        raise ApiError(415, "Send JSON (Content-Type: application/json).", "not-json")
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, "Cross-site request refused.", "cross-site")
    origin = request.headers.get("Origin")
    if origin is not None:
        own = {request.host, urlsplit(hotline().settings.public_base_url).netloc}
        if urlsplit(origin).netloc not in own:
            raise ApiError(403, "Cross-site request refused (foreign Origin).", "cross-site")


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return jsonify(ok=False, error=exc.message, code=exc.code), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response | tuple[Response, int] | HTTPException:
    if not request.path.startswith("/dev/phone/api/"):
        return exc
    status = exc.code or 500
    return jsonify(ok=False, error=exc.description or exc.name, code=str(status)), status


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self' blob: data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


# --- the page -----------------------------------------------------------------------------------


@bp.get("/")
@bp.get("")
def page() -> str:
    sim = _simulator()
    return render_template(
        "devphone/phone.html",
        api_base=url_for("devphone.state").rsplit("/", 1)[0],
        hotline_number=sim.hotline_number,
        default_caller=DEFAULT_CALLER,
    )


# --- reading ------------------------------------------------------------------------------------


@bp.get("/api/state")
def state() -> Response:
    sim = _simulator()
    _, cursor = sim.events_since(0)
    return jsonify(
        ok=True,
        hotline_number=sim.hotline_number,
        default_caller=DEFAULT_CALLER,
        cursor=cursor,
        calls=[call_json(info) for info in sim.calls()],
        patience=patience_json(sim),
        time_zone=time_zone_json(),
    )


@bp.get("/api/events")
def events() -> Response:
    sim = _simulator()
    raw = request.args.get("cursor", "0")
    if not raw.isdigit():
        raise ApiError(400, "cursor is a whole number (the seq of the last event seen).")
    batch, cursor = sim.events_since(int(raw))
    more = len(batch) > MAX_EVENTS
    if more:
        batch = batch[:MAX_EVENTS]
        cursor = batch[-1].seq
    touched = {event.call_sid for event in batch if event.call_sid}
    infos = {info.sid: info for info in sim.calls() if info.ended_at is None or info.sid in touched}
    return jsonify(
        ok=True,
        events=events_json(sim, batch, infos),
        cursor=cursor,
        more=more,
        calls=[call_json(info) for info in infos.values()],
        patience=patience_json(sim),
    )


@bp.get("/api/calls/<call_sid>")
def call(call_sid: str) -> Response:
    sim = _simulator()
    if not _CALL_SID.match(call_sid):
        raise ApiError(404, "No such call.", "no-call")
    try:
        info = sim.call_info(call_sid)
        log = sim.call_log(call_sid)
    except HandsetError as exc:
        raise ApiError(404, str(exc), "no-call") from exc
    return jsonify(ok=True, call=call_json(info), events=events_json(sim, log, {info.sid: info}))


@bp.get("/api/calls/<call_sid>/contacts")
def call_contacts(call_sid: str) -> Response:
    """Who the call's handset is in the directory: the contacts sharing that number."""
    sim = _simulator()
    if not _CALL_SID.match(call_sid):
        raise ApiError(404, "No such call.", "no-call")
    try:
        info = sim.call_info(call_sid)
    except HandsetError as exc:
        raise ApiError(404, str(exc), "no-call") from exc
    return jsonify(
        ok=True,
        call_sid=info.sid,
        number=info.handset,
        contacts=contacts_json(info.handset),
    )


@bp.get("/api/emails")
def emails() -> Response:
    outbox = _outbox()
    raw = request.args.get("cursor", "0")
    if not raw.isdigit():
        raise ApiError(400, "cursor is a whole number (the seq of the last e-mail seen).")
    if outbox is None:
        return jsonify(ok=True, available=False, emails=[], cursor=0, reset=False)
    asked = int(raw)
    batch, cursor = outbox.messages_since(asked)
    return jsonify(
        ok=True,
        available=True,
        emails=[email_json(stored) for stored in batch],
        cursor=cursor,
        # The outbox restarted (the app did): what the page holds is gone, start over.
        reset=asked > cursor,
    )


@bp.get("/api/emails/<int:seq>")
def email_message(seq: int) -> Response:
    outbox = _outbox()
    stored = None
    if outbox is not None and seq > 0:
        batch, _ = outbox.messages_since(seq - 1)
        stored = batch[0] if batch and batch[0].seq == seq else None
    if stored is None:
        raise ApiError(404, "That e-mail is no longer kept.", "no-email")
    message = stored.message
    return jsonify(
        ok=True, email={**email_json(stored), "text": message.text, "html": message.html}
    )


# --- the handset --------------------------------------------------------------------------------


@bp.post("/api/dial")
def dial() -> tuple[Response, int]:
    sim = _simulator()
    body = _json_body()
    caller = _text(body, "from", required=True).strip()
    if caller.lower() == "anonymous":
        caller = "anonymous"
    elif not _E164.match(caller):
        raise ApiError(
            400,
            "Enter the caller number in E.164 form, e.g. +15555550123 (or 'anonymous').",
            "bad-number",
        )
    if caller == sim.hotline_number:
        raise ApiError(400, "That is the hotline's own number; pick another caller number.")
    call_sid = _handset(lambda: sim.dial_hotline(caller))
    return jsonify(ok=True, call_sid=call_sid, call=call_json(sim.call_info(call_sid))), 201


@bp.post("/api/digits")
def digits() -> Response:
    sim = _simulator()
    body = _json_body()
    call_sid = _call_sid(body)
    keys = _text(body, "digits", required=True)
    if len(keys) > 64 or any(key not in DTMF_KEYS for key in keys):
        raise ApiError(400, "Keys are 0-9, * and # (at most 64 at a time).", "bad-digits")
    _handset(lambda: sim.press(call_sid, keys))
    return _call_answer(sim, call_sid)


@bp.post("/api/speech")
def speech() -> Response:
    sim = _simulator()
    body = _json_body()
    call_sid = _call_sid(body)
    text = _text(body, "text", required=True).strip()
    if not text:
        raise ApiError(400, "Type what you say.", "empty")
    confidence = body.get("confidence", 0.9)
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 <= confidence <= 1
    ):
        raise ApiError(400, "confidence is a number from 0 to 1.")
    _handset(lambda: sim.speak(call_sid, text, float(confidence)))
    return _call_answer(sim, call_sid)


@bp.post("/api/recording")
def recording() -> Response:
    """Talk into the hotline's recording, then press # (what a caller does after the beep)."""
    sim = _simulator()
    body = _json_body()
    call_sid = _call_sid(body)
    audio: str | bytes
    duration: float | None = None
    if body.get("audio_wav_base64") is not None:
        audio, duration = _wav(_text(body, "audio_wav_base64", required=True, limit=None))
    else:
        audio = _text(body, "text", required=True).strip()
        if not audio:
            raise ApiError(400, "Type what you say in the recording.", "empty")
    _handset(lambda: sim.record(call_sid, text_or_audio=audio, finish_key="#", duration=duration))
    return _call_answer(sim, call_sid)


@bp.post("/api/hangup")
def hangup() -> Response:
    sim = _simulator()
    call_sid = _call_sid(_json_body())
    _handset(lambda: sim.hang_up(call_sid))
    return _call_answer(sim, call_sid)


@bp.post("/api/answer")
def answer() -> Response:
    """Pick up a call the app placed: as a person, or let the voicemail (a machine) answer."""
    sim = _simulator()
    body = _json_body()
    call_sid = _call_sid(body)
    by = body.get("by", "human")
    if not isinstance(by, str) or by not in ANSWER_BY:
        raise ApiError(400, "by is 'human' or 'machine'.", "bad-by")
    _handset(lambda: sim.answer(call_sid, by=by))
    return _call_answer(sim, call_sid)


@bp.post("/api/ring")
def ring() -> Response:
    """Leave a call the app placed ringing: it ends no-answer at its ring timeout."""
    sim = _simulator()
    call_sid = _call_sid(_json_body())
    until = _handset(lambda: sim.let_ring(call_sid))
    return jsonify(
        ok=True,
        call_sid=call_sid,
        call=call_json(sim.call_info(call_sid)),
        rings_until=until.isoformat(),
    )


@bp.post("/api/decline")
def decline() -> Response:
    """Reject a call the app placed: the hotline hears busy."""
    sim = _simulator()
    call_sid = _call_sid(_json_body())
    _handset(lambda: sim.decline(call_sid))
    return _call_answer(sim, call_sid)


# --- texts --------------------------------------------------------------------------------------


@bp.get("/api/texts")
def texts() -> Response:
    sim = _simulator()
    return jsonify(
        ok=True,
        default_texter=DEFAULT_CALLER,
        conversations=[conversation_json(c) for c in sim.conversations()],
    )


@bp.get("/api/texts/<message_sid>/media/<int:index>")
def text_media(message_sid: str, index: int) -> Response:
    """A picture a handset sent, for the page's conversation (never a page of its own)."""
    sim = _simulator()
    if not _MESSAGE_SID.match(message_sid):
        raise ApiError(404, "No such text.", "no-text")
    try:
        media = sim.handset_media(message_sid, index)
    except HandsetError as exc:
        raise ApiError(404, str(exc), "no-media") from exc
    picture = media.content_type in PICTURE_TYPES
    response = Response(
        media.content, mimetype=media.content_type if picture else "application/octet-stream"
    )
    response.headers["Content-Disposition"] = "inline" if picture else "attachment"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.post("/api/texts")
def send_text() -> tuple[Response, int]:
    """Text the hotline from any number, with pictures; the network answers its keywords."""
    sim = _simulator()
    body = _json_body()
    sender = _number(sim, body, "from")
    words = _text(body, "body", required=False, limit=MAX_SMS_BODY)
    pictures = _pictures(body.get("media"))
    if not words.strip() and not pictures:
        raise ApiError(400, "Type a message or attach a picture.", "empty")
    sid = _handset(lambda: sim.text_hotline(sender, words, pictures))
    return jsonify(
        ok=True, message_sid=sid, conversation=conversation_json(sim.conversation(sender))
    ), 201


@bp.post("/api/texts/reachable")
def text_reachable() -> Response:
    """Switch a handset off (the hotline's texts end undelivered) or back on."""
    sim = _simulator()
    body = _json_body()
    number = _number(sim, body, "number")
    reachable = body.get("reachable")
    if not isinstance(reachable, bool):
        raise ApiError(400, "reachable is true or false.", "bad-reachable")
    sim.set_handset_reachable(number, reachable)
    return jsonify(ok=True, conversation=conversation_json(sim.conversation(number)))


@bp.post("/api/patience")
def patience() -> Response:
    """The "patient caller" switch: the network waits longer for keys and recordings."""
    sim = _simulator()
    body = _json_body()
    patient = body.get("patient")
    if not isinstance(patient, bool):
        raise ApiError(400, "patient is true or false.", "bad-patient")
    multiplier = body.get("multiplier", PATIENT_MULTIPLIER) if patient else 1
    if patient and (
        isinstance(multiplier, bool)
        or not isinstance(multiplier, int | float)
        or not 1 < multiplier <= MAX_PATIENCE
    ):
        raise ApiError(
            400, f"multiplier is a number above 1, at most {MAX_PATIENCE:g}.", "bad-multiplier"
        )
    _handset(lambda: sim.set_patience(float(multiplier)))
    return jsonify(ok=True, patience=patience_json(sim))


# --- JSON shapes --------------------------------------------------------------------------------


def call_json(info: SimCallInfo) -> dict[str, Any]:
    end = info.ended_at
    start = info.answered_at
    return {
        "sid": info.sid,
        "direction": info.direction,
        "from": info.from_,
        "to": info.to,
        "handset": info.handset,
        "status": info.status,
        "live": end is None,
        "created_at": info.created_at.isoformat(),
        "answered_at": start.isoformat() if start else None,
        "ended_at": end.isoformat() if end else None,
        "duration": round((end - start).total_seconds()) if end and start else None,
        "answered_by": info.answered_by,
        "waiting_for": info.waiting_for,
        "gather_inputs": list(info.gather_inputs),
        "listen_until": info.listen_until.isoformat() if info.listen_until else None,
        "listen_seconds": info.listen_seconds,
    }


def events_json(
    sim: SimulatedPhoneNetwork, batch: Iterable[SimEvent], infos: dict[str, SimCallInfo]
) -> list[dict[str, Any]]:
    """Each event with the channel it belongs to and, for calls, the call's status then."""
    batch = list(batch)
    status_at: dict[int, str] = {}
    for call_sid in {e.call_sid for e in batch if e.call_sid}:
        try:
            info = infos.get(call_sid) or sim.call_info(call_sid)
            log = sim.call_log(call_sid)
        except HandsetError:
            continue
        infos.setdefault(call_sid, info)
        status = "ringing" if info.direction == "inbound" else "queued"
        for event in log:
            if event.kind == "status" and event.text != "initiated":
                status = event.text
            status_at[event.seq] = status
    out = []
    for event in batch:
        item = event.to_dict()
        of_call = infos.get(event.call_sid) if event.call_sid else None
        item["channel"] = "call" if event.call_sid else "sms" if event.message_sid else "network"
        item["status"] = status_at.get(event.seq)
        item["direction"] = of_call.direction if of_call else event.detail.get("direction")
        out.append(item)
    return out


def contacts_json(number: str) -> list[dict[str, Any]]:
    """The directory's contacts on ``number``, active ones first, then by priority."""
    try:
        with hotline().db.sessionmaker() as session:
            rows = session.execute(
                select(Contact, School.name, District.name, District.timezone)
                .join(PhoneNumber, Contact.phone_number_id == PhoneNumber.id)
                # Outer: the hotline's duty contacts have no district (and no school).
                .outerjoin(District, Contact.district_id == District.id)
                .outerjoin(School, Contact.school_id == School.id)
                .where(PhoneNumber.e164 == number)
                .order_by(Contact.active.desc(), Contact.priority, Contact.id)
            ).all()
    except SQLAlchemyError as exc:
        raise ApiError(503, "The directory cannot be read right now.", "directory") from exc
    return [
        {
            "name": contact.name,
            "role": contact.role.value,
            "role_words": ROLE_WORDS.get(contact.role, contact.role.value),
            "priority": contact.priority,
            "school": school_name,
            "district": district_name,
            "time_zone": zone,
            "active": contact.active,
        }
        for contact, school_name, district_name, zone in rows
    ]


def time_zone_json() -> dict[str, Any]:
    """The zone the page shows clock times in. A call to the hotline has no district (and the
    hotline no zone setting), so the first district's in the directory: the zone its alert calls
    speak their times in. UTC while the directory is empty."""
    try:
        with hotline().db.sessionmaker() as session:
            first = session.execute(
                select(District.name, District.timezone).order_by(District.id).limit(1)
            ).first()
    except SQLAlchemyError:
        first = None
    if first is not None:
        name, zone = first
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return {
                "name": zone,
                "district": name,
                "source": f"{name}'s time zone (the first district in the directory)",
            }
    return {"name": "UTC", "district": None, "source": "UTC (no district in the directory)"}


def patience_json(sim: SimulatedPhoneNetwork) -> dict[str, Any]:
    multiplier = sim.patience
    return {
        "patient": multiplier != 1,
        "multiplier": multiplier,
        "default_multiplier": PATIENT_MULTIPLIER,
    }


def conversation_json(conversation: SimConversation) -> dict[str, Any]:
    return {
        "handset": conversation.handset,
        "opted_out": conversation.opted_out,
        "reachable": conversation.reachable,
        "texts": [text_json(text) for text in conversation.texts],
    }


def text_json(text: SimText) -> dict[str, Any]:
    from_handset = text.direction == "from-handset"
    return {
        "sid": text.sid,
        "at": text.at.isoformat(),
        "direction": text.direction,
        "sender": text.sender,
        "body": text.body,
        "media": [
            {
                "index": index,
                "content_type": media.content_type or None,
                # The handset's pictures are served here; the hotline's are its own URLs.
                "url": url_for("devphone.text_media", message_sid=text.sid, index=index)
                if from_handset
                else media.url,
            }
            for index, media in enumerate(text.media)
        ],
        "status": text.status,
        "error_code": text.error_code,
        "error": text.error,
        "via": text.via,
        "reply_to": text.reply_to,
        "keyword": text.keyword,
    }


def email_json(stored: StoredEmail) -> dict[str, Any]:
    message = stored.message
    return {
        "seq": stored.seq,
        "message_id": stored.message_id,
        "sent_at": stored.sent_at.isoformat(),
        "from": stored.sender,
        "to": list(message.to),
        "subject": message.subject,
        "has_html": message.html is not None,
    }


# --- helpers ------------------------------------------------------------------------------------


def _outbox() -> DevOutbox | None:
    """The development outbox, or None when e-mail goes out through SMTP."""
    sender = hotline().email
    return sender if isinstance(sender, DevOutbox) else None


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body is a JSON object.", "not-json")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool, limit: int | None = MAX_TEXT) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} is missing (a string).", "missing")
    if limit is not None and len(value) > limit:
        raise ApiError(400, f"{name} is too long (at most {limit} characters).", "too-long")
    return value


def _number(sim: SimulatedPhoneNetwork, body: dict[str, Any], name: str) -> str:
    """A handset's number in E.164 form, not the hotline's own."""
    number = _text(body, name, required=True).strip()
    if not _E164.match(number):
        raise ApiError(
            400,
            f"Enter the phone number ({name}) in E.164 form, e.g. {DEFAULT_CALLER}.",
            "bad-number",
        )
    if number == sim.hotline_number:
        raise ApiError(400, "That is the hotline's own number; pick another one.", "bad-number")
    return number


def _pictures(items: object) -> list[tuple[bytes, str]]:
    """The pictures of a text: ``[{"content_type", "data_base64"}]``, checked."""
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_PICTURES:
        raise ApiError(400, f"media is a list of at most {MAX_PICTURES} pictures.", "bad-media")
    pictures: list[tuple[bytes, str]] = []
    total = 0
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(400, "Each picture is {content_type, data_base64}.", "bad-media")
        kind = _text(item, "content_type", required=True).strip().lower()
        if kind not in PICTURE_TYPES:
            raise ApiError(
                415,
                f"Attach pictures ({', '.join(sorted(PICTURE_TYPES))}), not {kind or 'this'}.",
                "bad-media",
            )
        encoded = _text(item, "data_base64", required=True, limit=None)
        if len(encoded) > MAX_PICTURE_BYTES * 4 // 3 + 4:
            raise ApiError(413, "The pictures are over 5 MB, more than a text carries.", "too-long")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(400, "A picture is not base64.", "bad-media") from exc
        if not data:
            raise ApiError(400, "A picture is empty.", "empty")
        total += len(data)
        if total > MAX_PICTURE_BYTES:
            raise ApiError(413, "The pictures are over 5 MB, more than a text carries.", "too-long")
        pictures.append((data, kind))
    return pictures


def _call_sid(body: dict[str, Any]) -> str:
    sid = _text(body, "call_sid", required=True)
    if not _CALL_SID.match(sid):
        raise ApiError(400, "call_sid is not a call of the simulated network.", "bad-call")
    return sid


def _handset(action: Callable[[], T]) -> T:
    """Run a handset action; what the simulator refuses becomes an answer, not a 500."""
    try:
        return action()
    except HandsetError as exc:
        raise ApiError(409, str(exc), "handset") from exc
    except ValueError as exc:
        raise ApiError(400, str(exc), "bad-request") from exc


def _call_answer(sim: SimulatedPhoneNetwork, call_sid: str) -> Response:
    return jsonify(ok=True, call_sid=call_sid, call=call_json(sim.call_info(call_sid)))


def _wav(encoded: str) -> tuple[bytes, float]:
    """A base64 WAV from the page's recorder, checked, with its length in seconds."""
    if len(encoded) > MAX_AUDIO_BYTES * 4 // 3 + 4:
        raise ApiError(413, "The recording is too long.", "too-long")
    try:
        data = base64.b64decode(encoded, validate=True)
        with wave.open(io.BytesIO(data)) as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
    except (binascii.Error, ValueError, wave.Error, EOFError) as exc:
        raise ApiError(400, "The recording is not a WAV file.", "bad-audio") from exc
    if not frames or not rate:
        raise ApiError(400, "The recording is empty.", "empty")
    return data, frames / rate

"""TwiML as the simulated phone network reads it: parsed with the standard library, checked
against Twilio's rules, and turned into small typed verbs the executor runs.

The whole document is checked before its first verb runs, so a typo at the end of a document
fails the call at once (an application error) instead of after the caller heard half of it.
The simulator is deliberately at least as strict as Twilio: a mistake found in development is
one a reporter never hears.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Twilio error codes (see Twilio's error dictionary).
DOCUMENT_PARSE_FAILURE = 12100
SCHEMA_VALIDATION = 12200
INVALID_CONTENT_TYPE = 12300
INVALID_URL = 11100
INVALID_MESSAGE_VERB = 14110

#: Content types Twilio parses as TwiML.
TWIML_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "text/html"})

DTMF_KEYS = "0123456789*#"
GATHER_DEFAULT_FINISH_ON_KEY = "#"
RECORD_DEFAULT_FINISH_ON_KEY = "1234567890*#"
DEFAULT_LANGUAGE = "en-US"

# Valid TwiML voice verbs the simulator cannot play out (no second party to bridge, no payment
# network). Hearing an application error in development is better than silently skipping them.
_NOT_SIMULATED = frozenset(
    {"Connect", "Echo", "Enqueue", "Leave", "Pay", "Prompt", "Queue", "Refer", "Sms"}
)
_DIAL_NOUNS = frozenset({"Number", "Client", "Conference", "Queue", "Sip", "Application"})
_GATHER_CHILDREN = frozenset({"Say", "Play", "Pause"})
_RECORDING_EVENTS = frozenset({"in-progress", "completed", "absent"})


class TwimlError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# --- voice verbs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    language: str
    voice: str | None
    loop: int


@dataclass(frozen=True)
class Play:
    url: str
    digits: str | None
    loop: int


@dataclass(frozen=True)
class Pause:
    length: int


Prompt = Say | Play | Pause


@dataclass(frozen=True)
class Gather:
    inputs: frozenset[str]
    action: str | None
    method: str
    timeout: int
    speech_timeout: str | None
    finish_on_key: str
    num_digits: int | None
    action_on_empty_result: bool
    language: str
    hints: str | None
    barge_in: bool
    prompts: tuple[Prompt, ...]


@dataclass(frozen=True)
class Record:
    action: str | None
    method: str
    timeout: int
    finish_on_key: str
    max_length: int
    play_beep: bool
    trim: str
    status_callback: str | None
    status_callback_method: str
    status_callback_events: frozenset[str]
    transcribe: bool


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class Dial:
    """A dial the simulator cannot connect: it rings out (``<Number>``, ``<Client>``...) or
    waits in a conference nobody joins, like a lone participant on Twilio."""

    target: str
    conference: bool
    action: str | None
    method: str
    timeout: int


@dataclass(frozen=True)
class Ignored:
    """Verbs that only start or stop something in the background (``<Start>``, ``<Stop>``)."""

    name: str


VoiceVerb = Say | Play | Pause | Gather | Record | Redirect | Hangup | Reject | Dial | Ignored


# --- messaging verbs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    body: str
    media: tuple[str, ...]
    to: str | None
    from_: str | None
    status_callback: str | None


@dataclass(frozen=True)
class MessagingDocument:
    verbs: tuple[Message | Redirect, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


# --- parsing -----------------------------------------------------------------------------------


def parse_document(body: str) -> ET.Element:
    """The ``<Response>`` root of a TwiML document, or TwimlError(12100)."""
    if not body.strip():
        raise TwimlError(DOCUMENT_PARSE_FAILURE, "empty document")
    # No DTDs: TwiML never needs one, and refusing them keeps entity tricks out of the parser.
    if "<!DOCTYPE" in body or "<!ENTITY" in body:
        raise TwimlError(DOCUMENT_PARSE_FAILURE, "DTDs are not allowed in TwiML")
    try:
        # The document comes from the hotline app itself, and DTDs are refused above.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise TwimlError(DOCUMENT_PARSE_FAILURE, f"XML parse error: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(
            DOCUMENT_PARSE_FAILURE, f"the root element is <{root.tag}>, expected <Response>"
        )
    return root


def compile_voice(body: str) -> tuple[VoiceVerb, ...]:
    root = parse_document(body)
    return tuple(_voice_verb(child) for child in root)


def compile_messaging(body: str) -> MessagingDocument:
    root = parse_document(body)
    verbs: list[Message | Redirect] = []
    warnings: list[str] = []
    for child in root:
        if child.tag == "Message":
            verbs.append(_message(child))
        elif child.tag == "Redirect":
            verbs.append(_redirect(child))
        else:
            # Twilio logs warning 14110 and skips the verb.
            warnings.append(f"<{child.tag}> is not a messaging verb (14110); skipped")
    return MessagingDocument(tuple(verbs), tuple(warnings))


def _voice_verb(el: ET.Element) -> VoiceVerb:
    tag = el.tag
    if tag in ("Say", "Play", "Pause"):
        return _prompt(el)
    if tag == "Gather":
        return _gather(el)
    if tag == "Record":
        _no_children(el)
        return _record(el)
    if tag == "Redirect":
        return _redirect(el)
    if tag == "Hangup":
        _no_children(el)
        return Hangup()
    if tag == "Reject":
        _no_children(el)
        reason = el.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            raise TwimlError(SCHEMA_VALIDATION, f"<Reject reason={reason!r}>: rejected or busy")
        return Reject(reason)
    if tag == "Dial":
        return _dial(el)
    if tag in ("Start", "Stop"):
        return Ignored(tag)
    if tag in _NOT_SIMULATED:
        raise TwimlError(SCHEMA_VALIDATION, f"<{tag}> is valid TwiML but is not simulated")
    raise TwimlError(SCHEMA_VALIDATION, f"unknown verb <{tag}> (TwiML is case-sensitive)")


def _prompt(el: ET.Element) -> Prompt:
    if el.tag == "Say":
        # Say may hold SSML (<break>, <prosody>, <lang>...): what is heard is all the text.
        text = " ".join("".join(el.itertext()).split())
        return Say(
            text=text,
            language=el.get("language") or DEFAULT_LANGUAGE,
            voice=el.get("voice"),
            loop=_int(el, "loop", 1, minimum=0),
        )
    _no_children(el)
    if el.tag == "Play":
        url = (el.text or "").strip()
        digits = el.get("digits")
        if digits is not None and not re.fullmatch(r"[0-9*#wW]+", digits):
            raise TwimlError(SCHEMA_VALIDATION, f"<Play digits={digits!r}>: DTMF keys and w")
        if not url and digits is None:
            raise TwimlError(SCHEMA_VALIDATION, "<Play> needs a URL or digits")
        return Play(url=url, digits=digits, loop=_int(el, "loop", 1, minimum=0))
    return Pause(length=_int(el, "length", 1, minimum=0))


def _gather(el: ET.Element) -> Gather:
    raw_input = el.get("input", "dtmf")
    inputs = frozenset(raw_input.split())
    # Catches the classic builder pitfall input="['dtmf', 'speech']" (see NOTES.md).
    if not inputs or not inputs <= {"dtmf", "speech"}:
        raise TwimlError(
            SCHEMA_VALIDATION, f"<Gather input={raw_input!r}>: dtmf, speech or 'dtmf speech'"
        )
    finish_on_key = el.get("finishOnKey", GATHER_DEFAULT_FINISH_ON_KEY)
    if len(finish_on_key) > 1 or (finish_on_key and finish_on_key not in DTMF_KEYS):
        raise TwimlError(
            SCHEMA_VALIDATION, f"<Gather finishOnKey={finish_on_key!r}>: one of 0-9 * # or ''"
        )
    num_digits = el.get("numDigits")
    prompts: list[Prompt] = []
    for child in el:
        if child.tag not in _GATHER_CHILDREN:
            raise TwimlError(
                SCHEMA_VALIDATION, f"<{child.tag}> cannot be nested in <Gather> (Say, Play, Pause)"
            )
        prompts.append(_prompt(child))
    speech_timeout = el.get("speechTimeout")
    if speech_timeout is not None and speech_timeout != "auto":
        _int(el, "speechTimeout", 0, minimum=0)
    return Gather(
        inputs=inputs,
        action=_optional_url(el, "action"),
        method=_method(el, "method"),
        timeout=_int(el, "timeout", 5, minimum=0),
        speech_timeout=speech_timeout,
        finish_on_key=finish_on_key,
        num_digits=None if num_digits is None else _int(el, "numDigits", 1, minimum=1),
        action_on_empty_result=_bool(el, "actionOnEmptyResult", False),
        language=el.get("language") or DEFAULT_LANGUAGE,
        hints=el.get("hints"),
        barge_in=_bool(el, "bargeIn", True),
        prompts=tuple(prompts),
    )


def _record(el: ET.Element) -> Record:
    finish_on_key = el.get("finishOnKey", RECORD_DEFAULT_FINISH_ON_KEY)
    if any(key not in DTMF_KEYS for key in finish_on_key):
        raise TwimlError(
            SCHEMA_VALIDATION, f"<Record finishOnKey={finish_on_key!r}>: keys among 0-9 * #"
        )
    raw_events = el.get("recordingStatusCallbackEvent", "completed")
    events = frozenset(raw_events.replace(",", " ").split())
    if not events <= _RECORDING_EVENTS:
        raise TwimlError(
            SCHEMA_VALIDATION,
            f"<Record recordingStatusCallbackEvent={raw_events!r}>: in-progress completed absent",
        )
    trim = el.get("trim", "trim-silence")
    if trim not in ("trim-silence", "do-not-trim"):
        raise TwimlError(SCHEMA_VALIDATION, f"<Record trim={trim!r}>")
    return Record(
        action=_optional_url(el, "action"),
        method=_method(el, "method"),
        timeout=_int(el, "timeout", 5, minimum=0),
        finish_on_key=finish_on_key,
        max_length=_int(el, "maxLength", 3600, minimum=1),
        play_beep=_bool(el, "playBeep", True),
        trim=trim,
        status_callback=_optional_url(el, "recordingStatusCallback"),
        status_callback_method=_method(el, "recordingStatusCallbackMethod"),
        status_callback_events=events,
        transcribe=_bool(el, "transcribe", False),
    )


def _redirect(el: ET.Element) -> Redirect:
    _no_children(el)
    url = (el.text or "").strip()
    if not url:
        raise TwimlError(SCHEMA_VALIDATION, "<Redirect> needs a URL")
    return Redirect(url=url, method=_method(el, "method"))


def _dial(el: ET.Element) -> Dial:
    nouns = list(el)
    for noun in nouns:
        if noun.tag not in _DIAL_NOUNS:
            raise TwimlError(SCHEMA_VALIDATION, f"<{noun.tag}> cannot be nested in <Dial>")
    conference = any(noun.tag == "Conference" for noun in nouns)
    if nouns:
        target = ", ".join(f"{n.tag} {(n.text or '').strip()}".strip() for n in nouns)
    else:
        target = (el.text or "").strip()
    if not target:
        raise TwimlError(SCHEMA_VALIDATION, "<Dial> needs a number or a noun")
    return Dial(
        target=target,
        conference=conference,
        action=_optional_url(el, "action"),
        method=_method(el, "method"),
        timeout=_int(el, "timeout", 30, minimum=1),
    )


def _message(el: ET.Element) -> Message:
    bodies = [child for child in el if child.tag == "Body"]
    media = tuple((child.text or "").strip() for child in el if child.tag == "Media")
    for child in el:
        if child.tag not in ("Body", "Media"):
            raise TwimlError(SCHEMA_VALIDATION, f"<{child.tag}> cannot be nested in <Message>")
    body = (bodies[0].text or "") if bodies else (el.text or "")
    return Message(
        body=body.strip(),
        media=media,
        to=el.get("to"),
        from_=el.get("from"),
        status_callback=el.get("statusCallback") or el.get("action"),
    )


# --- attribute helpers -------------------------------------------------------------------------


def _no_children(el: ET.Element) -> None:
    for child in el:
        raise TwimlError(SCHEMA_VALIDATION, f"<{child.tag}> cannot be nested in <{el.tag}>")


def _int(el: ET.Element, name: str, default: int, *, minimum: int) -> int:
    raw = el.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise TwimlError(SCHEMA_VALIDATION, f"<{el.tag} {name}={raw!r}>: an integer") from None
    if value < minimum:
        raise TwimlError(SCHEMA_VALIDATION, f"<{el.tag} {name}={raw!r}>: at least {minimum}")
    return value


def _bool(el: ET.Element, name: str, default: bool) -> bool:
    raw = el.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise TwimlError(SCHEMA_VALIDATION, f"<{el.tag} {name}={raw!r}>: true or false")
    return raw.lower() == "true"


def _method(el: ET.Element, name: str) -> str:
    raw = el.get(name, "POST")
    if raw.upper() not in ("GET", "POST"):
        raise TwimlError(SCHEMA_VALIDATION, f"<{el.tag} {name}={raw!r}>: GET or POST")
    return raw.upper()


def _optional_url(el: ET.Element, name: str) -> str | None:
    raw = el.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw:
        raise TwimlError(SCHEMA_VALIDATION, f"<{el.tag} {name}=''>: empty URL")
    return raw

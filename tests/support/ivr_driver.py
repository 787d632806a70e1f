"""A caller on a phone, played against the app's voice webhooks the way Twilio plays them.

This is an independent reading of Twilio's documented behaviour, written for the tests; it shares
nothing with ``hotline.telephony.simulated`` on purpose, so that the two can disagree and a
disagreement shows up as a failing test instead of a bug both copies share.

Two halves:

* :func:`validate_twiml` / :func:`validate_answer`: everything Twilio would reject in an answer, or
  that is surely a bug (a Python list rendered into ``input``, ``str(True)`` in a boolean, an
  empty ``<Say>``), raised as :class:`TwimlError` with the offending document in the message.
* :class:`VoiceDriver` / :class:`Call`: a call through the Flask test client. Every request is
  form-encoded and signed over the public URL like Twilio's, carries the parameters Twilio sends
  (caller-location fields included, so that dropping them is exercised) and a fresh
  ``I-Twilio-Idempotency-Token``; every answer is validated before it is executed with Twilio's
  semantics (verbs in order, ``<Gather>`` and ``<Record>`` waiting for the test to act as the
  caller, no ``<Gather>`` action on silence or hang-up, the final status callback at the end).

Time is virtual and deterministic: speech takes about 2.5 words a second, ``<Pause>`` its length, a
silent ``<Gather>`` its timeout; ``CallDuration`` comes from that, not from the wall clock.
"""

from __future__ import annotations

import inspect
import math
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal
from urllib.parse import urlencode, urljoin, urlsplit

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from twilio.twiml import TwiML, lower_camel
from twilio.twiml import voice_response as vr
from werkzeug.test import TestResponse

__all__ = [
    "Call",
    "CallDriver",
    "DriverError",
    "Heard",
    "RecordingHandle",
    "SentRequest",
    "TwilioCaller",
    "TwimlError",
    "VoiceDriver",
    "validate_answer",
    "validate_twiml",
]


class TwimlError(AssertionError):
    """An answer Twilio would reject (or that is surely a bug). An AssertionError so that pytest
    reports it as a plain test failure with the whole message."""


class DriverError(AssertionError):
    """The test asked the caller to do something the call's state does not allow (pressing keys
    when nothing is listening), or the app answered something the driver cannot play."""


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

#: A check returns a complaint (completing "attribute X ...") or None when the value is fine.
Check = Callable[[str], "str | None"]

_XML_NS = "{http://www.w3.org/XML/1998/namespace}"

# BCP-47-ish: a 2-3 letter language, then subtags (script, region, variant). "en_US" is refused:
# TwiML wants hyphens and Twilio does not correct it (only the Python builder's Say helper
# reformats, and only for some verbs).
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|\d{3}))?(-[A-Za-z0-9]{5,8})*$")
# Built-in voices, Amazon Polly voices (Polly.Joanna, Polly.Lupe-Neural) and Google voices, whose
# name starts with their locale (Google.es-US-Neural2-A).
_VOICE_RE = re.compile(
    r"^(man|woman|alice|Polly\.[A-Z][A-Za-z]+(-[A-Za-z]+)?|Google\.[a-z]{2,3}-[A-Z]{2}(-[A-Za-z0-9]+)+)$"
)
_GOOGLE_VOICE_LOCALE_RE = re.compile(r"^Google\.([a-z]{2,3}-[A-Z]{2})-")
_DTMF_KEYS = "0123456789*#"
#: Twilio's documented limit for the text of one <Say>.
SAY_MAX_CHARACTERS = 4096
#: Twilio's limits for Gather hints, as the hotline relies on them.
HINTS_MAX_ENTRIES = 500
HINT_MAX_CHARACTERS = 100


def _enum(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(map(repr, allowed))}"

    return check


def _boolean(value: str) -> str | None:
    if value in ("true", "false"):
        return None
    hint = (
        " (str(True) renders 'True'; pass a Python bool to the builder)"
        if value
        in (
            "True",
            "False",
        )
        else ""
    )
    return f"must be 'true' or 'false'{hint}"


def _integer(minimum: int = 0, maximum: int | None = None) -> Check:
    def check(value: str) -> str | None:
        if not re.fullmatch(r"\d+", value):
            return "must be a whole number of seconds/units written with digits only"
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            return f"must be at least {minimum}{upper}"
        return None

    return check


def _method(value: str) -> str | None:
    return None if value in ("GET", "POST") else "must be 'GET' or 'POST' (upper case)"


def _url(value: str) -> str | None:
    if not value.strip():
        return "is an empty URL (omit it to use the default)"
    if value == "None":
        return "is 'None' (a Python None rendered as text)"
    if re.search(r"\s", value):
        return "contains whitespace; Twilio cannot fetch it"
    parts = urlsplit(value)
    if parts.scheme and parts.scheme not in ("http", "https"):
        return f"has scheme {parts.scheme!r}; Twilio fetches only http(s) URLs"
    if parts.scheme and not parts.netloc:
        return "is an absolute URL without a host"
    return None


def _language(value: str) -> str | None:
    if _LANGUAGE_RE.fullmatch(value):
        return None
    return "must be a BCP-47 language tag such as 'en-US' or 'es-MX'"


def _voice(value: str) -> str | None:
    if _VOICE_RE.fullmatch(value):
        return None
    return "must be man, woman, alice, Polly.<Name> or Google.<locale>-<model>"


def _gather_input(value: str) -> str | None:
    if value in ("dtmf", "speech", "dtmf speech"):
        return None
    if value.startswith("["):
        return (
            "looks like a Python list rendered as text; pass input='dtmf speech' "
            "(a space-separated string), not input=['dtmf', 'speech']"
        )
    return "must be 'dtmf', 'speech' or 'dtmf speech'"


def _gather_finish_on_key(value: str) -> str | None:
    if value == "" or (len(value) == 1 and value in _DTMF_KEYS):
        return None
    return "must be one key of 0-9, # or *, or empty for none"


def _record_finish_on_key(value: str) -> str | None:
    if all(ch in _DTMF_KEYS for ch in value):
        return None
    return "must be a set of keys from 0-9, # and *"


def _speech_timeout(value: str) -> str | None:
    return None if value == "auto" else _integer(0)(value)


def _hints(value: str) -> str | None:
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > HINTS_MAX_ENTRIES:
        return f"has {len(entries)} entries; Twilio accepts at most {HINTS_MAX_ENTRIES}"
    long = [entry for entry in entries if len(entry) > HINT_MAX_CHARACTERS]
    if long:
        return f"has an entry longer than {HINT_MAX_CHARACTERS} characters: {long[0][:40]!r}..."
    if any(not entry for entry in entries):
        return "has an empty entry (a doubled or trailing comma)"
    return None


def _space_separated(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        words = value.split()
        bad = [word for word in words if word not in allowed]
        if not words or bad:
            return f"must be space-separated words from {', '.join(allowed)}"
        return None

    return check


def _play_digits(value: str) -> str | None:
    if re.fullmatch(r"[0-9A-DwW#*]+", value):
        return None
    return "must be DTMF keys 0-9, A-D, #, * with w/W for pauses"


def _anything(_value: str) -> str | None:
    return None


def _break_time(value: str) -> str | None:
    return None if re.fullmatch(r"\d+(ms|s)", value) else "must look like '500ms' or '2s'"


@dataclass(frozen=True)
class _Spec:
    """What one element may carry.

    ``text``: "none" (whitespace only), "url" (a URL is required), "words" (free text, checked by
    the element's own rule), "any" (not checked: an element the driver only names).
    ``children``: the name of the context its children are looked up in, or None for no children,
    or "*" for "not checked".
    """

    attributes: Mapping[str, Check] | None
    children: str | None = None
    text: Literal["none", "url", "words", "any"] = "none"


_SAY_ATTRIBUTES: dict[str, Check] = {
    "voice": _voice,
    "language": _language,
    "loop": _integer(0),
}
_PLAY_ATTRIBUTES: dict[str, Check] = {"loop": _integer(0), "digits": _play_digits}
_PAUSE_ATTRIBUTES: dict[str, Check] = {"length": _integer(1)}
_GATHER_ATTRIBUTES: dict[str, Check] = {
    "action": _url,
    "method": _method,
    "input": _gather_input,
    "timeout": _integer(0),
    "speechTimeout": _speech_timeout,
    "maxSpeechTime": _integer(1),
    "profanityFilter": _boolean,
    "finishOnKey": _gather_finish_on_key,
    "numDigits": _integer(1),
    "partialResultCallback": _url,
    "partialResultCallbackMethod": _method,
    "language": _language,
    "hints": _hints,
    "bargeIn": _boolean,
    "debug": _boolean,
    "actionOnEmptyResult": _boolean,
    "speechModel": _anything,
    "enhanced": _boolean,
}
_RECORD_ATTRIBUTES: dict[str, Check] = {
    "action": _url,
    "method": _method,
    "timeout": _integer(0),
    "finishOnKey": _record_finish_on_key,
    "maxLength": _integer(1),
    "playBeep": _boolean,
    "trim": _enum("trim-silence", "do-not-trim"),
    "recordingStatusCallback": _url,
    "recordingStatusCallbackMethod": _method,
    "recordingStatusCallbackEvent": _space_separated("in-progress", "completed", "absent"),
    "transcribe": _boolean,
    "transcribeCallback": _url,
    "recordingConfigurationId": _anything,
}

#: The attributes the driver checks value by value, by element. Everything else Twilio knows is
#: named from the installed twilio library (below), so a new library version extends it.
CHECKED_ATTRIBUTES: dict[str, Mapping[str, Check]] = {
    "Say": _SAY_ATTRIBUTES,
    "Play": _PLAY_ATTRIBUTES,
    "Pause": _PAUSE_ATTRIBUTES,
    "Gather": _GATHER_ATTRIBUTES,
    "Record": _RECORD_ATTRIBUTES,
    "Redirect": {"method": _method},
    "Hangup": {},
    "Reject": {"reason": _enum("rejected", "busy")},
}


def _library_attributes(builder: Callable[..., object], element: type[TwiML]) -> dict[str, Check]:
    """Attribute names of an element as the twilio library's builder method spells them.

    The builder's parameters are the element's attributes, except those the element's constructor
    takes as its content (``Dial(number)``, ``Conference(name)``). Values are not checked.
    """
    content = set(inspect.signature(element.__init__).parameters) - {"self", "kwargs"}
    names = [
        name
        for name in inspect.signature(builder).parameters
        if name not in ("self", "kwargs") and name not in content
    ]
    return {lower_camel(TwiML.MAP.get(name, name)): _anything for name in names}


def _dial_attributes() -> dict[str, Check]:
    attributes = _library_attributes(vr.VoiceResponse.dial, vr.Dial)
    attributes.update(
        {
            "action": _url,
            "method": _method,
            "timeout": _integer(1),
            "timeLimit": _integer(1),
            "hangupOnStar": _boolean,
            "answerOnBridge": _boolean,
            "callerId": _anything,
        }
    )
    return attributes


_SSML: dict[str, _Spec] = {
    "break": _Spec(
        {
            "strength": _enum("none", "x-weak", "weak", "medium", "strong", "x-strong"),
            "time": _break_time,
        }
    ),
    "emphasis": _Spec({"level": _enum("strong", "moderate", "reduced")}, "ssml", "words"),
    "lang": _Spec({"xml:lang": _language}, "ssml", "words"),
    "p": _Spec({}, "ssml", "words"),
    "phoneme": _Spec({"alphabet": _anything, "ph": _anything}, "ssml", "words"),
    "prosody": _Spec({"volume": _anything, "rate": _anything, "pitch": _anything}, "ssml", "words"),
    "s": _Spec({}, "ssml", "words"),
    "say-as": _Spec({"interpret-as": _anything, "format": _anything}, "ssml", "words"),
    "sub": _Spec({"alias": _anything}, "ssml", "words"),
    "w": _Spec({"role": _anything}, "ssml", "words"),
}

_PARAMETER = _Spec({"name": _anything, "value": _anything})

_DIAL_NOUNS: dict[str, _Spec] = {
    "Number": _Spec(_library_attributes(vr.Dial.number, vr.Number), None, "any"),
    "Client": _Spec(_library_attributes(vr.Dial.client, vr.Client), "*", "any"),
    "Conference": _Spec(_library_attributes(vr.Dial.conference, vr.Conference), None, "any"),
    "Queue": _Spec(_library_attributes(vr.Dial.queue, vr.Queue), None, "any"),
    "Sip": _Spec(_library_attributes(vr.Dial.sip, vr.Sip), "*", "any"),
    "Sim": _Spec(_library_attributes(vr.Dial.sim, vr.Sim), None, "any"),
    "Application": _Spec(_library_attributes(vr.Dial.application, vr.Application), "*", "any"),
    "WhatsApp": _Spec(_library_attributes(vr.Dial.whats_app, vr.WhatsApp), None, "any"),
}


def _other_verb(builder: Callable[..., object], element: type[TwiML]) -> _Spec:
    # Verbs Twilio knows but the hotline does not use: named (a typo is still an unknown verb)
    # and their attribute names checked, their insides not.
    return _Spec(_library_attributes(builder, element), "*", "any")


#: Every verb allowed directly under <Response>.
_VERBS: dict[str, _Spec] = {
    "Say": _Spec(_SAY_ATTRIBUTES, "ssml", "words"),
    "Play": _Spec(_PLAY_ATTRIBUTES, None, "words"),
    "Pause": _Spec(_PAUSE_ATTRIBUTES),
    "Gather": _Spec(_GATHER_ATTRIBUTES, "gather"),
    "Record": _Spec(_RECORD_ATTRIBUTES),
    "Redirect": _Spec(CHECKED_ATTRIBUTES["Redirect"], None, "url"),
    "Hangup": _Spec({}, "parameter"),
    "Reject": _Spec(CHECKED_ATTRIBUTES["Reject"], "parameter"),
    "Dial": _Spec(_dial_attributes(), "dial", "any"),
    "Connect": _other_verb(vr.VoiceResponse.connect, vr.Connect),
    "Echo": _other_verb(vr.VoiceResponse.echo, vr.Echo),
    "Enqueue": _other_verb(vr.VoiceResponse.enqueue, vr.Enqueue),
    "Leave": _other_verb(vr.VoiceResponse.leave, vr.Leave),
    "Pay": _other_verb(vr.VoiceResponse.pay, vr.Pay),
    "Prompt": _other_verb(vr.VoiceResponse.prompt, vr.Prompt),
    "Queue": _other_verb(vr.VoiceResponse.queue, vr.Queue),
    "Refer": _other_verb(vr.VoiceResponse.refer, vr.Refer),
    "Sms": _other_verb(vr.VoiceResponse.sms, vr.Sms),
    "Start": _other_verb(vr.VoiceResponse.start, vr.Start),
    "Stop": _other_verb(vr.VoiceResponse.stop, vr.Stop),
}

_CONTEXTS: dict[str, dict[str, _Spec]] = {
    "response": _VERBS,
    # Twilio plays only these while a <Gather> listens.
    "gather": {name: _VERBS[name] for name in ("Say", "Play", "Pause")},
    "ssml": _SSML,
    "dial": _DIAL_NOUNS,
    "parameter": {"Parameter": _PARAMETER},
}
_KNOWN_ELEMENTS = {name for context in _CONTEXTS.values() for name in context}


def _attribute_name(name: str) -> str:
    return "xml:" + name[len(_XML_NS) :] if name.startswith(_XML_NS) else name


def _suggest(name: str, known: Iterable[str]) -> str:
    """'numdigits' and 'num_digits' are the usual slips for 'numDigits'."""
    folded = name.replace("_", "").replace("-", "").lower()
    for candidate in known:
        if candidate.replace("-", "").lower() == folded:
            return f" (did you mean {candidate!r}?)"
    return ""


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def complain(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def element(self, el: ET.Element, spec: _Spec, where: str) -> None:
        self.attributes(el, spec, where)
        own_text = (el.text or "").strip()
        if spec.text == "none" and own_text:
            self.complain(where, f"holds text {own_text[:40]!r}, which Twilio does not play")
        if spec.text == "url":
            problem = _url(own_text) if own_text else "needs a URL as its content"
            if problem:
                self.complain(where, f"URL {own_text!r} {problem}" if own_text else problem)
        for index, child in enumerate(el, start=1):
            child_where = f"{where}/{child.tag}[{index}]"
            if spec.text != "any" and spec.children != "ssml" and (child.tail or "").strip():
                self.complain(child_where, "is followed by stray text")
            if spec.children == "*":
                continue
            allowed = _CONTEXTS.get(spec.children or "", {})
            child_spec = allowed.get(child.tag)
            if child_spec is None:
                self.complain(child_where, self.misplaced(el.tag, child.tag, allowed))
                continue
            self.element(child, child_spec, child_where)
        self.element_rules(el, where)

    @staticmethod
    def misplaced(parent: str, tag: str, allowed: Mapping[str, _Spec]) -> str:
        if not allowed:
            return f"<{parent}> may not contain any element"
        if tag in _KNOWN_ELEMENTS:
            return f"<{parent}> may not contain <{tag}> (allowed: {', '.join(sorted(allowed))})"
        hint = _suggest(tag, _KNOWN_ELEMENTS)
        hint = hint.replace("did you mean", "TwiML is case-sensitive; did you mean")
        return f"unknown verb or noun <{tag}>{hint}"

    def attributes(self, el: ET.Element, spec: _Spec, where: str) -> None:
        if spec.attributes is None:
            return
        for raw_name, value in el.attrib.items():
            name = _attribute_name(raw_name)
            check = spec.attributes.get(name)
            if check is None:
                hint = _suggest(name, spec.attributes)
                allowed = ", ".join(sorted(spec.attributes)) or "none"
                self.complain(
                    where, f"unknown attribute {name!r} on <{el.tag}>{hint} (allowed: {allowed})"
                )
                continue
            # Pitfalls that are bugs whatever the attribute: a Python None or list rendered as
            # text by an f-string or str().
            if value == "None":
                self.complain(where, f"attribute {name!r} is 'None' (a Python None as text)")
                continue
            if name != "input" and re.fullmatch(r"\[.*\]", value.strip()):
                self.complain(where, f"attribute {name!r}={value!r} looks like a Python list")
                continue
            problem = check(value)
            if problem:
                self.complain(where, f"attribute {name}={value!r} {problem}")

    def element_rules(self, el: ET.Element, where: str) -> None:
        """Rules about an element as a whole, beyond its attributes and children."""
        if el.tag == "Say":
            text = spoken_text(el)
            if not text:
                self.complain(where, "<Say> is empty: the caller would hear nothing")
            elif len(text) > SAY_MAX_CHARACTERS:
                self.complain(
                    where,
                    f"<Say> has {len(text)} characters; Twilio's limit is {SAY_MAX_CHARACTERS}",
                )
            voice, language = el.get("voice", ""), el.get("language")
            locale = _GOOGLE_VOICE_LOCALE_RE.match(voice)
            if locale and language and locale.group(1).lower() != language.lower():
                self.complain(
                    where, f"voice {voice!r} speaks {locale.group(1)} but language={language!r}"
                )
        elif el.tag == "Play":
            url = (el.text or "").strip()
            if not url and not el.get("digits"):
                self.complain(where, "<Play> needs a media URL (or a digits attribute)")
            elif url and (problem := _url(url)):
                self.complain(where, f"media URL {url!r} {problem}")
        elif el.tag == "Dial":
            number = (el.text or "").strip()
            if bool(number) == bool(len(el)):
                self.complain(where, "<Dial> needs either a number as text or nouns, not both")


def spoken_text(say: ET.Element) -> str:
    """What a caller hears from a <Say>: its words, SSML substitutions applied, whitespace
    normalised. An SSML element is a word boundary (the builders write ``is<say-as>4</say-as>``
    and the voice still says "is 4"), so its edges count as spaces."""
    parts: list[str] = []

    def walk(el: ET.Element) -> None:
        if el.tag == "sub" and el.get("alias") is not None:
            parts.append(el.get("alias") or "")
        else:
            parts.append(el.text or "")
            for child in el:
                parts.append(" ")
                walk(child)
                parts.append(" ")
                parts.append(child.tail or "")

    walk(say)
    text = " ".join("".join(parts).split())
    return re.sub(r" ([.,;:!?])", r"\1", text)


def _fail(problems: list[str], xml: str, context: str = "") -> TwimlError:
    intro = f"{context}: " if context else ""
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return TwimlError(f"{intro}invalid TwiML:\n{listed}\n--- document ---\n{xml}")


def validate_twiml(xml: str, *, context: str = "") -> ET.Element:
    """Parse a voice TwiML document and return its <Response> element, or raise TwimlError
    listing every problem found (with the document) for anything Twilio would reject or that is
    surely a bug."""
    try:
        root = ET.fromstring(xml)  # the app's own answers, in tests
    except ET.ParseError as exc:
        raise _fail([f"not well-formed XML ({exc})"], xml, context) from None
    if root.tag != "Response":
        raise _fail([f"the root element is <{root.tag}>, not <Response>"], xml, context)
    validator = _Validator()
    validator.element(root, _Spec({}, "response"), "Response")
    if validator.problems:
        raise _fail(validator.problems, xml, context)
    return root


def validate_answer(response: TestResponse, *, context: str = "") -> ET.Element:
    """Check an HTTP answer to a voice webhook the way Twilio takes it (200, an XML content type)
    and return its validated <Response>."""
    body = response.get_data(as_text=True)
    problems = []
    if response.status_code != 200:
        problems.append(
            f"HTTP {response.status_code}: the caller would hear 'an application error has "
            "occurred'"
        )
    mimetype = (response.mimetype or "").lower()
    if mimetype not in ("text/xml", "application/xml"):
        problems.append(f"content type {response.content_type!r} is not text/xml")
    if problems:
        raise _fail(problems, body, context)
    return validate_twiml(body, context=context)


# --------------------------------------------------------------------------------------------
# The call
# --------------------------------------------------------------------------------------------

WaitingFor = Literal["gather", "record", "dial"]

#: Seconds a caller needs per spoken word (2.5 words a second), for the virtual clock.
_SECONDS_PER_WORD = 0.4

#: Caller-location fields Twilio adds to voice webhooks (values for a San Francisco caller calling
#: a Chicago number). The app must drop them; the driver sends them so that it has to.
DEFAULT_FROM_GEO: Mapping[str, str] = {
    "City": "SAN FRANCISCO",
    "State": "CA",
    "Zip": "94105",
    "Country": "US",
}
DEFAULT_TO_GEO: Mapping[str, str] = {
    "City": "CHICAGO",
    "State": "IL",
    "Zip": "60601",
    "Country": "US",
}


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Heard:
    """One thing the caller heard: a <Say>'s words (or a <Play>'s media URL) with the Say's own
    language and voice attributes as written (None when absent; Twilio's default is en-US)."""

    text: str
    language: str | None = None
    voice: str | None = None
    verb: str = field(default="Say", compare=False)
    loop: int = field(default=1, compare=False)


@dataclass
class SentRequest:
    """One delivery to the app: what Twilio would have sent and what came back."""

    kind: str
    method: str
    url: str  # the public URL, as signed (for GET including the parameters)
    path: str  # what reached the app: path and query string
    params: dict[str, str]
    headers: dict[str, str]
    response: TestResponse
    redelivery: bool = False

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def body(self) -> str:
        return self.response.get_data(as_text=True)

    @property
    def idempotency_token(self) -> str:
        return self.headers["I-Twilio-Idempotency-Token"]


@dataclass
class RecordingHandle:
    """A recording made by <Record>; ``deliver`` posts (another) recording status callback, as
    Twilio may deliver it late or twice."""

    call: Call
    sid: str
    url: str
    duration: int
    callback_url: str | None
    callback_method: str
    events: frozenset[str]
    started_at: datetime

    def params(self, status: str) -> dict[str, str]:
        params = {
            "AccountSid": self.call.account_sid,
            "CallSid": self.call.sid,
            "RecordingSid": self.sid,
            "RecordingUrl": self.url,
            "RecordingStatus": status,
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
            "RecordingStartTime": format_datetime(self.started_at),
            "ErrorCode": "0",
        }
        if status != "in-progress":
            params["RecordingDuration"] = str(self.duration if status == "completed" else 0)
        return params

    def deliver(self, status: str = "completed") -> SentRequest:
        if self.callback_url is None:
            raise DriverError("this <Record> has no recordingStatusCallback to deliver to")
        return self.call._callback(
            "recording-status", self.callback_url, self.callback_method, self.params(status)
        )


class VoiceDriver:
    """Places calls to the app through a Flask test client, as Twilio would for the number whose
    "A call comes in" webhook is ``public_base_url + voice_path`` and whose "Call status changes"
    webhook is ``public_base_url + status_path`` (None: not configured)."""

    def __init__(
        self,
        client: FlaskClient,
        public_base_url: str,
        auth_token: str,
        *,
        voice_path: str = "/twilio/voice",
        status_path: str | None = "/twilio/voice/status",
        account_sid: str | None = None,
        clock: Callable[[], datetime] | None = None,
        max_redirects: int = 50,
    ) -> None:
        self.client = client
        self.public_base_url = public_base_url.rstrip("/")
        self.auth_token = auth_token
        self.voice_path = voice_path
        self.status_path = status_path
        self.account_sid = account_sid or _sid("AC")
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_redirects = max_redirects
        self._validator = RequestValidator(auth_token)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """X-Twilio-Signature for a request to ``url`` with form ``params`` (empty for GET)."""
        signature: str = self._validator.compute_signature(url, dict(params))
        return signature

    def url(self, path: str) -> str:
        return self.public_base_url + path

    def call(
        self,
        from_: str = "+14155550123",
        to: str = "+13125550100",
        *,
        from_geo: Mapping[str, str] | None = None,
        to_geo: Mapping[str, str] | None = None,
        extra_params: Mapping[str, str] | None = None,
    ) -> Call:
        """Ring the app: post the incoming-call webhook and play its answer until the caller is
        asked for something (or the call ends). ``extra_params`` adds e.g. CallerName or
        StirVerstat; geo values default to a San Francisco caller (empty for a non-E.164
        ``From`` such as "anonymous", as Twilio knows nothing then)."""
        call = Call(self, from_, to, from_geo, to_geo, dict(extra_params or {}))
        call._start()
        return call


#: Other names the same driver goes by.
TwilioCaller = VoiceDriver
CallDriver = VoiceDriver


_WAITING_KIND: dict[str, WaitingFor] = {"Gather": "gather", "Record": "record", "Dial": "dial"}


@dataclass
class _Waiting:
    kind: WaitingFor
    element: ET.Element
    verbs: list[ET.Element]
    index: int  # of the waiting verb in ``verbs``
    document_url: str


class Call:
    """One call in progress. The test acts as the caller with press / say_speech / silence /
    record / end_dial / hang_up; each plays the app's answers until the next wait."""

    def __init__(
        self,
        driver: VoiceDriver,
        from_: str,
        to: str,
        from_geo: Mapping[str, str] | None,
        to_geo: Mapping[str, str] | None,
        extra_params: dict[str, str],
    ) -> None:
        self.driver = driver
        self.sid = _sid("CA")
        self.account_sid = driver.account_sid
        self.from_ = from_
        self.to = to
        self.started_at = driver.clock()
        self.elapsed = 0.0
        self.heard: list[Heard] = []
        self.requests: list[SentRequest] = []
        self.recordings: list[RecordingHandle] = []
        self.ended = False
        self.end_reason: str | None = None
        self.final_status: str | None = None
        self._waiting: _Waiting | None = None
        self._heard_mark = 0
        self._redirects = 0
        self._answered = False
        self._status_sequence = 0
        self._base = self._base_params(from_, to, from_geo, to_geo, extra_params)

    # -- what the test reads -------------------------------------------------------------------

    @property
    def waiting_for(self) -> WaitingFor | None:
        """ "gather", "record" or "dial" while the call waits for the caller; None otherwise."""
        return self._waiting.kind if self._waiting else None

    @property
    def current_gather(self) -> dict[str, str] | None:
        """The waiting <Gather>'s attributes as written (absent ones absent)."""
        waiting = self._waiting
        return dict(waiting.element.attrib) if waiting and waiting.kind == "gather" else None

    @property
    def current_record(self) -> dict[str, str] | None:
        waiting = self._waiting
        return dict(waiting.element.attrib) if waiting and waiting.kind == "record" else None

    @property
    def current_dial(self) -> ET.Element | None:
        """The waiting <Dial> element (attributes and nouns)."""
        return self._waiting.element if self._waiting and self._waiting.kind == "dial" else None

    @property
    def last_request(self) -> SentRequest:
        return self.requests[-1]

    def heard_since_last_action(self) -> list[Heard]:
        """What the caller heard since their last action (or since the call began)."""
        return self.heard[self._heard_mark :]

    def heard_text_since_last_action(self) -> str:
        return " ".join(item.text for item in self.heard_since_last_action())

    def last_heard_text(self) -> str:
        """The words of the last thing heard ("" if nothing yet)."""
        return self.heard[-1].text if self.heard else ""

    def heard_texts(self) -> list[str]:
        return [item.text for item in self.heard]

    # -- the caller's actions ------------------------------------------------------------------

    def press(self, keys: str) -> Call:
        """Press keys at the waiting <Gather>. Collection stops at numDigits (later keys are not
        collected) or at finishOnKey (not included in Digits); with neither, the digits are
        submitted when the Gather times out. Only finishOnKey with no digits before it is no
        input at all."""
        gather = self._expect("gather")
        if "dtmf" not in gather.element.get("input", "dtmf").split():
            raise DriverError(
                f"this <Gather> takes input={gather.element.get('input')!r}: "
                "keys are not listened to (use silence() to model that)"
            )
        if not keys or any(key not in _DTMF_KEYS for key in keys):
            raise DriverError(f"keys must be from 0-9, * and #: {keys!r}")
        finish_key = gather.element.get("finishOnKey", "#")
        num_digits = int(gather.element.get("numDigits", "0")) or None
        digits, finished_on = "", ""
        for key in keys:
            self.elapsed += 0.5
            if finish_key and key == finish_key:
                finished_on = key
                break
            digits += key
            if num_digits and len(digits) >= num_digits:
                break
        if not finished_on and not (num_digits and len(digits) >= num_digits):
            self.elapsed += int(gather.element.get("timeout", "5"))
        self._caller_acted()
        if not digits:
            return self._no_input(gather)
        params = {"Digits": digits, "FinishedOnKey": finished_on, "msg": "Gather End"}
        return self._post_action(gather, "gather", params)

    def say_speech(self, text: str, confidence: float = 0.8) -> Call:
        """Speak at the waiting <Gather> (it must listen for speech): posts SpeechResult and
        Confidence to its action."""
        gather = self._expect("gather")
        if "speech" not in gather.element.get("input", "dtmf").split():
            raise DriverError(
                "this <Gather> does not listen for speech (input="
                f"{gather.element.get('input', 'dtmf')!r})"
            )
        self.elapsed += len(text.split()) * _SECONDS_PER_WORD + 1
        self._caller_acted()
        params = {"SpeechResult": text, "Confidence": f"{confidence:.8f}".rstrip("0").rstrip(".")}
        return self._post_action(gather, "gather", params)

    def silence(self) -> Call:
        """Say and press nothing. At a <Gather>: after its timeout Twilio goes on with the next
        verb, without calling the action (unless actionOnEmptyResult="true"). At a <Record>:
        nothing is recorded, the action is not called, the verbs after <Record> run."""
        waiting = self._expect_any()
        self._caller_acted()
        if waiting.kind == "gather":
            self.elapsed += int(waiting.element.get("timeout", "5"))
            return self._no_input(waiting)
        if waiting.kind == "record":
            self.elapsed += int(waiting.element.get("timeout", "5"))
            handle = self._recording(waiting, 0)
            if "absent" in handle.events and handle.callback_url:
                handle.deliver("absent")
            return self._continue_after(waiting)
        raise DriverError("silence() means nothing at a <Dial>; use end_dial()")

    def record(
        self,
        duration: int = 12,
        finish_key: str | None = "#",
        *,
        hang_up: bool = False,
        recording_callback: bool = True,
        status_callback_first: bool = False,
    ) -> RecordingHandle:
        """Speak for ``duration`` seconds at the waiting <Record>, then press ``finish_key`` (None:
        stop talking and let the silence timeout end it) or hang up. Twilio then posts the action
        with RecordingUrl/RecordingSid/RecordingDuration/Digits, whose answer replaces the
        document (verbs after <Record> do not run). The recording status callback, if the
        <Record> asks for one, is delivered unless ``recording_callback`` is False; the returned
        handle delivers it (again) when the test wants. With ``hang_up``,
        ``status_callback_first`` delivers the final status callback before the action (Twilio
        sends both at the hang-up, and either may reach the app first)."""
        waiting = self._expect("record")
        if duration <= 0:
            raise DriverError("a recording needs a positive duration; use silence() for none")
        max_length = int(waiting.element.get("maxLength", "3600"))
        # Talking past maxLength: Twilio stops the recording there (no key, no hang-up in the
        # action) and goes on; a hang-up then comes after, wherever the call has got to.
        hang_up_later = hang_up and duration > max_length
        hang_up = hang_up and not hang_up_later
        digits: str | None
        if hang_up:
            digits = "hangup"
        elif finish_key is None:
            digits = None
        else:
            keys = waiting.element.get("finishOnKey", "1234567890*#")
            if finish_key not in keys or len(finish_key) != 1:
                raise DriverError(
                    f"key {finish_key!r} does not end this <Record> (finishOnKey={keys!r})"
                )
            digits = finish_key
        if duration > max_length:
            duration, digits = max_length, None
        self.elapsed += duration + (
            int(waiting.element.get("timeout", "5")) if digits is None else 0.5
        )
        self._caller_acted()
        handle = self._recording(waiting, duration)
        handle_events = handle.events if recording_callback else frozenset()
        if "in-progress" in handle_events and handle.callback_url:
            handle.deliver("in-progress")
        params = {
            "RecordingUrl": handle.url,
            "RecordingSid": handle.sid,
            "RecordingDuration": str(duration),
        }
        if digits is not None:
            params["Digits"] = digits
        if hang_up:
            if status_callback_first:
                self._end("caller-hung-up")
            self._post_action(waiting, "record", params, call_over=True)
            if "completed" in handle_events and handle.callback_url:
                handle.deliver("completed")
            if not status_callback_first:
                self._end("caller-hung-up")
            return handle
        # The recording is processed while the call goes on: its callback follows the action.
        self._post_action(
            waiting,
            "record",
            params,
            before_next=lambda: (
                handle.deliver("completed")
                if "completed" in handle_events and handle.callback_url
                else None
            ),
        )
        if hang_up_later and not self.ended:
            self.hang_up()
        return handle

    def end_dial(self, status: str = "completed", duration: int = 30) -> Call:
        """The dialled party's leg of a waiting <Dial> ends with DialCallStatus ``status``
        (completed, busy, no-answer, failed, canceled): Twilio posts the Dial's action, whose
        answer replaces the document, or goes on with the next verb when it has none."""
        waiting = self._expect("dial")
        self.elapsed += duration if status == "completed" else 20
        self._caller_acted()
        params = self._dial_params(status, duration)
        if waiting.element.get("action") is None:
            return self._continue_after(waiting)
        return self._post_action(waiting, "dial", params)

    def hang_up(self, *, recorded_seconds: int = 0) -> Call:
        """The caller hangs up now. No <Gather> action is called; a waiting <Record> posts its
        action with Digits=hangup (and ``recorded_seconds`` of audio); a <Dial> with an action
        posts it. Then the final status callback."""
        if self.ended:
            raise DriverError("the call has already ended")
        waiting = self._waiting
        self._caller_acted()
        if waiting and waiting.kind == "record":
            if recorded_seconds > 0:
                self.record(recorded_seconds, hang_up=True)
                return self
            handle = self._recording(waiting, 0)
            params = {
                "RecordingUrl": handle.url,
                "RecordingSid": handle.sid,
                "RecordingDuration": "0",
                "Digits": "hangup",
            }
            self._post_action(waiting, "record", params, call_over=True)
            if "absent" in handle.events and handle.callback_url:
                handle.deliver("absent")
        elif waiting and waiting.kind == "dial" and waiting.element.get("action") is not None:
            self._post_action(waiting, "dial", self._dial_params("completed", 0), call_over=True)
        self._end("caller-hung-up")
        return self

    # -- deliveries the test triggers ----------------------------------------------------------

    def redeliver_last(self) -> TestResponse:
        """Send the last request again with the same parameters, signature and idempotency
        token, as Twilio's retry does; the call's state does not move. Returns the answer."""
        last = self.last_request
        response = self.driver.client.open(
            last.path,
            method=last.method,
            data=last.params if last.method == "POST" else None,
            headers=last.headers,
        )
        again = SentRequest(
            last.kind,
            last.method,
            last.url,
            last.path,
            dict(last.params),
            dict(last.headers),
            response,
            redelivery=True,
        )
        self.requests.append(again)
        self._check_answer(again)
        return response

    def send_status(self, status: str, **extra: str) -> SentRequest:
        """Post a call status callback now (e.g. a late "in-progress" after "completed"), with
        the next SequenceNumber unless ``extra`` sets one."""
        if self.driver.status_path is None:
            raise DriverError("no status_path configured")
        params = {**self._base, "CallStatus": status}
        params.update(self._status_fields())
        params.update(extra)
        return self._callback("status", self.driver.url(self.driver.status_path), "POST", params)

    # -- internals -----------------------------------------------------------------------------

    def _base_params(
        self,
        from_: str,
        to: str,
        from_geo: Mapping[str, str] | None,
        to_geo: Mapping[str, str] | None,
        extra: dict[str, str],
    ) -> dict[str, str]:
        known = from_.startswith("+")
        from_geo = dict(
            from_geo
            if from_geo is not None
            else DEFAULT_FROM_GEO
            if known
            else dict.fromkeys(DEFAULT_FROM_GEO, "")
        )
        to_geo = dict(to_geo if to_geo is not None else DEFAULT_TO_GEO)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "Direction": "inbound",
            "From": from_,
            "Caller": from_,
            "To": to,
            "Called": to,
        }
        for who, geo in (
            ("From", from_geo),
            ("Caller", from_geo),
            ("To", to_geo),
            ("Called", to_geo),
        ):
            for what, value in geo.items():
                params[f"{who}{what}"] = value
        params.update(extra)
        return params

    def _expect_any(self) -> _Waiting:
        if self.ended:
            raise DriverError(f"the call has ended ({self.end_reason}); the caller cannot act")
        if self._waiting is None:
            raise DriverError("the call is not waiting for the caller")
        return self._waiting

    def _expect(self, kind: WaitingFor) -> _Waiting:
        waiting = self._expect_any()
        if waiting.kind != kind:
            raise DriverError(f"the call waits at a <{waiting.element.tag}>, not a {kind}")
        return waiting

    def _caller_acted(self) -> None:
        self._heard_mark = len(self.heard)
        self._redirects = 0

    def _now(self) -> datetime:
        return self.started_at + timedelta(seconds=self.elapsed)

    def _status_fields(self) -> dict[str, str]:
        fields = {
            "Timestamp": format_datetime(self._now().astimezone(UTC)),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._status_sequence),
        }
        self._status_sequence += 1
        return fields

    def _dial_params(self, status: str, duration: int) -> dict[str, str]:
        params = {"DialCallStatus": status, "DialCallSid": _sid("CA")}
        if status == "completed":
            params["DialCallDuration"] = str(duration)
        return params

    def _recording(self, waiting: _Waiting, duration: int) -> RecordingHandle:
        sid = _sid("RE")
        callback = waiting.element.get("recordingStatusCallback")
        events = frozenset(waiting.element.get("recordingStatusCallbackEvent", "completed").split())
        handle = RecordingHandle(
            call=self,
            sid=sid,
            url=f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}",
            duration=duration,
            callback_url=urljoin(waiting.document_url, callback) if callback else None,
            callback_method=waiting.element.get("recordingStatusCallbackMethod", "POST"),
            events=events,
            started_at=self._now() - timedelta(seconds=duration),
        )
        if duration:
            self.recordings.append(handle)
        return handle

    def _send(self, kind: str, url: str, method: str, params: dict[str, str]) -> SentRequest:
        base = self.driver.public_base_url
        if method == "GET":
            # Twilio puts the parameters in the query string and signs the URL alone.
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            body: dict[str, str] | None = None
            signature = self.driver.sign(url, {})
        else:
            body = params
            signature = self.driver.sign(url, params)
        if not (url == base or url.startswith(base + "/") or url.startswith(base + "?")):
            raise DriverError(
                f"Twilio would request {url}, which is not under PUBLIC_BASE_URL "
                f"{base}: the app is not there (or would not accept the signature)"
            )
        path = url[len(base) :].split("#", 1)[0] or "/"
        if not path.startswith("/"):
            path = "/" + path
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": f"{self.sid}-{uuid.uuid4().hex}",
            "User-Agent": "TwilioProxy/1.1",
            # The app sits behind a TLS proxy: what it sees is not the public URL.
            "X-Forwarded-Proto": urlsplit(base).scheme,
            "X-Forwarded-Host": urlsplit(base).netloc,
        }
        response = self.driver.client.open(path, method=method, data=body, headers=headers)
        sent = SentRequest(kind, method, url, path, dict(params), headers, response)
        self.requests.append(sent)
        return sent

    def _check_answer(self, sent: SentRequest) -> ET.Element | None:
        context = f"{sent.method} {sent.url} ({sent.kind})"
        if sent.kind in ("status", "recording-status"):
            # Twilio ignores what a callback answers, but an error there is a lost update.
            if not 200 <= sent.status_code < 300:
                raise TwimlError(f"{context}: HTTP {sent.status_code}\n{sent.body}")
            if sent.body.strip() and (sent.response.mimetype or "").endswith("xml"):
                validate_twiml(sent.body, context=context)
            return None
        return validate_answer(sent.response, context=context)

    def _callback(self, kind: str, url: str, method: str, params: dict[str, str]) -> SentRequest:
        sent = self._send(kind, url, method, params)
        self._check_answer(sent)
        return sent

    def _fetch(
        self, kind: str, url: str, method: str, extra: Mapping[str, str], status: str
    ) -> ET.Element:
        params = {**self._base, "CallStatus": status, **extra}
        sent = self._send(kind, url, method, params)
        root = self._check_answer(sent)
        assert root is not None
        return root

    def _start(self) -> None:
        url = self.driver.url(self.driver.voice_path)
        root = self._fetch("voice", url, "POST", {}, "ringing")
        self._run(list(root), 0, url)

    def _post_action(
        self,
        waiting: _Waiting,
        kind: str,
        extra: Mapping[str, str],
        *,
        call_over: bool = False,
        before_next: Callable[[], object] | None = None,
    ) -> Call:
        # Twilio resolves a relative action against the document's URL; none means the document.
        url = urljoin(waiting.document_url, waiting.element.get("action") or waiting.document_url)
        method = waiting.element.get("method", "POST")
        self._waiting = None
        root = self._fetch(kind, url, method, extra, "completed" if call_over else "in-progress")
        if before_next is not None:
            before_next()
        if not call_over:
            # The action's answer replaces the document: the verbs after the waiting one are gone.
            self._run(list(root), 0, url)
        return self

    def _no_input(self, waiting: _Waiting) -> Call:
        if waiting.element.get("actionOnEmptyResult") == "true":
            return self._post_action(waiting, "gather", {"msg": "Gather End"})
        return self._continue_after(waiting)

    def _continue_after(self, waiting: _Waiting) -> Call:
        self._waiting = None
        self._run(waiting.verbs, waiting.index + 1, waiting.document_url)
        return self

    def _hear(self, el: ET.Element) -> None:
        loop = int(el.get("loop", "1"))
        if el.tag == "Say":
            text = spoken_text(el)
            item = Heard(text, el.get("language"), el.get("voice"), "Say", loop)
            self.elapsed += len(text.split()) * _SECONDS_PER_WORD * max(loop, 1)
        else:
            text = (el.text or "").strip() or f"[DTMF {el.get('digits')}]"
            item = Heard(text, None, None, "Play", loop)
            self.elapsed += 3 * max(loop, 1)
        self.heard.append(item)

    def _run(self, verbs: list[ET.Element], index: int, document_url: str) -> None:
        """Execute ``verbs`` from ``index`` until a verb waits for the caller or the call ends."""
        while index < len(verbs):
            verb = verbs[index]
            if verb.tag != "Reject":
                self._answered = True
            if verb.tag in ("Say", "Play"):
                self._hear(verb)
            elif verb.tag == "Pause":
                self.elapsed += int(verb.get("length", "1"))
            elif verb.tag in ("Gather", "Record", "Dial"):
                for nested in verb:
                    if nested.tag in ("Say", "Play"):
                        self._hear(nested)
                    elif nested.tag == "Pause":
                        self.elapsed += int(nested.get("length", "1"))
                self._waiting = _Waiting(_WAITING_KIND[verb.tag], verb, verbs, index, document_url)
                return
            elif verb.tag == "Redirect":
                self._redirects += 1
                if self._redirects > self.driver.max_redirects:
                    raise DriverError(
                        f"more than {self.driver.max_redirects} <Redirect>s without the caller "
                        f"doing anything: a loop (last to {(verb.text or '').strip()})"
                    )
                url = urljoin(document_url, (verb.text or "").strip())
                root = self._fetch("redirect", url, verb.get("method", "POST"), {}, "in-progress")
                verbs, index, document_url = list(root), 0, url
                continue
            elif verb.tag == "Hangup":
                self._end("hangup")
                return
            elif verb.tag == "Reject":
                # First thing Twilio does with the call: it is never answered and ends busy or
                # no-answer. Later (the call already answered) it is a hang-up.
                if self._answered:
                    self._end("reject")
                else:
                    busy = verb.get("reason") == "busy"
                    self._end("reject", status="busy" if busy else "no-answer")
                return
            else:
                raise DriverError(f"the driver does not play <{verb.tag}>")
            index += 1
        self._end("end-of-document")

    def _end(self, reason: str, status: str = "completed") -> None:
        self._waiting = None
        self.ended = True
        self.end_reason = reason
        self.final_status = status
        if self.driver.status_path is None:
            return
        params = {**self._base, "CallStatus": status}
        if status == "completed":
            params["CallDuration"] = str(math.ceil(self.elapsed))
        params.update(self._status_fields())
        self._callback("status", self.driver.url(self.driver.status_path), "POST", params)


def digits_after(text: str, label: str) -> str:
    """The digits read after ``label`` in what a caller heard ("report number 4, 8, 1" → "481")."""
    match = re.search(f"(?:{label})" + r"[^0-9]*((?:\d[, ]*)+)", text)
    assert match, f"no {label!r} in {text!r}"
    return re.sub(r"\D", "", match.group(1))

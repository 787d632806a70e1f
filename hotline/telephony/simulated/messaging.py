"""Texts on the simulated network: a handset's text to the hotline (media, Twilio's own opt-out
words, the app's messaging TwiML run on the answer) and texts carried to handsets (queued, sent,
delivered or undelivered, with their status callbacks).

Each handset's conversation (:attr:`HandsetState.conversation`) keeps every text in the order the
network took it, for the dev phone: what the handset sent, the network's own keyword answers, and
the hotline's texts with their state. A text of the hotline's that the network refuses because the
handset sent STOP (error 21610: a <Message> answer, or a REST request, which raises as Twilio's
does) is kept there as failed, so the page can show the blocked delivery.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urljoin

from hotline.core.redaction import redact_text
from hotline.telephony.ports import FetchedMedia
from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.delivery import Outcome, WebhookPoster
from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.records import SimMedia, SimMessage
from hotline.telephony.simulated.state import (
    HandsetState,
    InboundNote,
    OutboundMessage,
    SimState,
)
from hotline.telephony.simulated.transport import HTTP_RETRIEVAL_FAILURE
from hotline.telephony.simulated.wire import API_VERSION, E164, caller_location, new_sid

log = logging.getLogger(__name__)

MAX_SMS_REDIRECTS = 10

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# Twilio's default keyword replies, sent by Twilio itself before it forwards the text to the app.
TWILIO_STOP_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from this "
    "number. Reply START to resubscribe."
)
TWILIO_START_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
TWILIO_HELP_REPLY = "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
#: What Twilio's error codes mean, for the dev phone.
UNSUBSCRIBED = ("21610", "the phone sent STOP: nothing reaches it until it sends START")
UNREACHABLE = ("30003", "the phone is switched off or out of reach")


class Messaging:
    """Texts in both directions. ``*_locked`` methods are called with the shared lock held;
    ``_run_inbound_sms`` and ``_run_delivery`` run as jobs, without it, taking it between posts."""

    def __init__(self, state: SimState, lanes: Lanes, poster: WebhookPoster) -> None:
        self._state = state
        self._lanes = lanes
        self._poster = poster

    # --- from a handset to the hotline -----------------------------------------------------------

    def text_hotline_locked(
        self, from_number: str, body: str, media: Sequence[tuple[bytes, str]], at: datetime
    ) -> str:
        """A handset texts the hotline: Twilio answers its keywords, then the app gets the text
        (in the text's own lane). Returns the message sid."""
        state = self._state
        sid = new_sid("MM" if media else "SM")
        handset = state.handset_locked(from_number)
        media_items: list[SimMedia] = []
        for content, content_type in media:
            url = f"{state.media_base}/Messages/{sid}/Media/{new_sid('ME')}"
            state.media[url] = FetchedMedia(content, content_type)
            handset.sent_media[url] = state.media[url]
            media_items.append(SimMedia(url, content_type))
        handset.thread.append(
            SimMessage(
                sid, at, "from-handset", from_number, state.hotline, body, tuple(media_items)
            )
        )
        handset.conversation.append(sid)
        state.event_locked(
            "sms",
            at,
            body,
            handset=from_number,
            message_sid=sid,
            detail={"direction": "from-handset", "media": str(len(media_items))},
        )
        opt_out_type = self._keyword_locked(handset, body, at)
        state.inbound_notes[sid] = InboundNote(keyword=opt_out_type)
        params = self._sms_params_locked(sid, from_number, body, media_items, opt_out_type)
        self._lanes.enqueue_locked(
            f"sms:{sid}", functools.partial(self._run_inbound_sms, sid, from_number, params)
        )
        return sid

    def _keyword_locked(self, handset: HandsetState, body: str, at: datetime) -> str | None:
        """Twilio's own handling of STOP/START/HELP: it answers and still forwards the text."""
        word = body.strip().upper()
        if word in OPT_OUT_WORDS:
            handset.opted_out = True
            self._twilio_reply_locked(handset, TWILIO_STOP_REPLY, at)
            return "STOP"
        if word in OPT_IN_WORDS:
            handset.opted_out = False
            self._twilio_reply_locked(handset, TWILIO_START_REPLY, at)
            return "START"
        if word in HELP_WORDS:
            self._twilio_reply_locked(handset, TWILIO_HELP_REPLY, at)
            return "HELP"
        return None

    def _twilio_reply_locked(self, handset: HandsetState, body: str, at: datetime) -> None:
        sid = new_sid("SM")
        handset.thread.append(
            SimMessage(sid, at, "to-handset", handset.number, self._state.hotline, body)
        )
        handset.conversation.append(sid)
        self._state.event_locked(
            "sms",
            at,
            body,
            handset=handset.number,
            message_sid=sid,
            detail={"direction": "to-handset", "from": "twilio"},
        )

    def _sms_params_locked(
        self,
        sid: str,
        from_number: str,
        body: str,
        media: list[SimMedia],
        opt_out_type: str | None,
    ) -> list[tuple[str, str]]:
        hotline = self._state.hotline
        params = [
            ("AccountSid", self._state.account_sid),
            ("ApiVersion", API_VERSION),
            ("Body", body),
            ("From", from_number),
            ("MessageSid", sid),
            ("NumMedia", str(len(media))),
            ("NumSegments", str(_segments(body))),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", hotline),
        ]
        params.extend(caller_location("From", from_number))
        params.extend(caller_location("To", hotline))
        for index, item in enumerate(media):
            params.append((f"MediaContentType{index}", item.content_type))
            params.append((f"MediaUrl{index}", item.url))
        if opt_out_type:
            params.append(("OptOutType", opt_out_type))
        return params

    def _run_inbound_sms(self, sid: str, sender: str, params: list[tuple[str, str]]) -> None:
        state = self._state
        url, method = state.sms_url, "POST"
        for _ in range(MAX_SMS_REDIRECTS):
            outcome = self._poster.send(method, url, params, purpose="sms", message_sid=sid)
            with state.lock:
                at = state.clock.now()
                redirect = self._apply_sms_reply_locked(sid, sender, url, outcome, at)
            if redirect is None:
                return
            url, method = redirect
        with state.lock:
            self._sms_error_locked(sid, sender, 11215, "too many <Redirect>s", state.clock.now())

    def _apply_sms_reply_locked(
        self, sid: str, sender: str, url: str, outcome: Outcome, at: datetime
    ) -> tuple[str, str] | None:
        """Run the app's messaging TwiML; returns where a <Redirect> goes (URL, method)."""
        if outcome.error_code is not None or outcome.reply is None:
            self._sms_error_locked(
                sid, sender, outcome.error_code or HTTP_RETRIEVAL_FAILURE, outcome.error or "", at
            )
            return None
        body = outcome.reply.body
        if not body.strip():
            return None  # an empty answer: no reply, which is fine for Twilio
        content_type = outcome.reply.content_type.split(";")[0].strip().lower()
        if content_type not in tw.TWIML_CONTENT_TYPES:
            self._sms_error_locked(
                sid, sender, tw.INVALID_CONTENT_TYPE, f"Content-Type {content_type!r}", at
            )
            return None
        try:
            document = tw.compile_messaging(body)
        except tw.TwimlError as exc:
            self._sms_error_locked(sid, sender, exc.code, exc.reason, at)
            return None
        for warning in document.warnings:
            self._state.event_locked("warning", at, warning, handset=sender, message_sid=sid)
        for verb in document.verbs:
            if isinstance(verb, tw.Redirect):
                return urljoin(url, verb.url), verb.method
            to = verb.to or sender
            if not verb.body and not verb.media:
                self._sms_error_locked(sid, sender, 14103, "<Message> with no body or media", at)
            elif not E164.match(to):
                self._sms_error_locked(sid, sender, 21211, "<Message to> is not E.164", at)
            elif self._state.handset_locked(to).opted_out:
                self._sms_error_locked(
                    sid, sender, 21610, "recipient has opted out (STOP)", at, on_text=False
                )
                self.refuse_message_locked(
                    to=to,
                    from_=verb.from_ or self._state.hotline,
                    body=verb.body,
                    media=tuple(urljoin(url, m) for m in verb.media),
                    at=at,
                    reply_to=sid,
                )
            else:
                self.queue_message_locked(
                    to=to,
                    from_=verb.from_ or self._state.hotline,
                    body=verb.body,
                    media=tuple(urljoin(url, m) for m in verb.media),
                    status_callback=urljoin(url, verb.status_callback)
                    if verb.status_callback
                    else None,
                    at=at,
                    reply_to=sid,
                )
        return None

    def _sms_error_locked(
        self, sid: str, sender: str, code: int, reason: str, at: datetime, *, on_text: bool = True
    ) -> None:
        """The app's answer to the text ``sid`` went nowhere; ``on_text``: noted on the text for
        the dev phone (False when the refused answer is kept in the conversation itself)."""
        self._state.event_locked(
            "error",
            at,
            f"{code}: {reason}",
            handset=sender,
            message_sid=sid,
            detail={"code": str(code)},
        )
        if on_text:
            note = self._state.inbound_notes.setdefault(sid, InboundNote())
            note.problem_code, note.problem = str(code), reason
        log.warning("sim: message %s error %s: %s", sid, code, redact_text(reason))

    # --- from the hotline to a handset -----------------------------------------------------------

    def queue_message_locked(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        media: tuple[str, ...],
        status_callback: str | None,
        at: datetime,
        reply_to: str | None = None,
    ) -> str:
        """Queue a text to a handset (in its own lane); returns its sid. ``reply_to``: the
        handset's text whose TwiML answer this is (None: the app's REST request)."""
        message = OutboundMessage(
            sid=new_sid("MM" if media else "SM"),
            to=to,
            from_=from_,
            body=body,
            media=media,
            status_callback=status_callback,
            created_at=at,
            origin="api" if reply_to is None else "reply",
            reply_to=reply_to,
        )
        self._state.messages[message.sid] = message
        self._state.handset_locked(to).conversation.append(message.sid)
        self._state.event_locked(
            "sms",
            at,
            body,
            handset=to,
            message_sid=message.sid,
            detail={"direction": "to-handset", "status": "queued"},
        )
        self._lanes.enqueue_locked(
            f"msg:{message.sid}", functools.partial(self._run_delivery, message.sid)
        )
        return message.sid

    def refuse_message_locked(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        media: tuple[str, ...],
        at: datetime,
        reply_to: str | None = None,
    ) -> None:
        """A text to a handset that sent STOP: nothing is carried (the caller gets error 21610);
        the conversation keeps it as failed so the dev phone shows the blocked delivery."""
        code, meaning = UNSUBSCRIBED
        message = OutboundMessage(
            sid=new_sid("MM" if media else "SM"),
            to=to,
            from_=from_,
            body=body,
            media=media,
            status_callback=None,
            created_at=at,
            status="failed",
            origin="api" if reply_to is None else "reply",
            reply_to=reply_to,
            error_code=code,
            error=meaning,
        )
        self._state.messages[message.sid] = message
        self._state.handset_locked(to).conversation.append(message.sid)
        self._state.event_locked(
            "sms",
            at,
            body,
            handset=to,
            message_sid=message.sid,
            detail={"direction": "to-handset", "status": "failed", "error": code},
        )

    def _run_delivery(self, sid: str) -> None:
        """queued -> sent -> delivered (or undelivered, 30003, for an unreachable handset)."""
        state = self._state
        for step in ("queued", "sent", "final"):
            with state.lock:
                message = state.messages[sid]
                at = state.clock.now()
                handset = state.handset_locked(message.to)
                error: str | None = None
                status = step
                if step == "final":
                    if handset.reachable:
                        status = "delivered"
                        handset.thread.append(
                            SimMessage(
                                sid,
                                at,
                                "to-handset",
                                message.to,
                                message.from_,
                                message.body,
                                tuple(SimMedia(url, "") for url in message.media),
                            )
                        )
                    else:
                        status, error = "undelivered", UNREACHABLE[0]
                        message.error_code, message.error = UNREACHABLE
                message.status = status
                if step != "queued":
                    state.event_locked(
                        "sms",
                        at,
                        status,
                        handset=message.to,
                        message_sid=sid,
                        detail={"status": status},
                    )
                url = message.status_callback
                params = [
                    ("AccountSid", state.account_sid),
                    ("ApiVersion", API_VERSION),
                    ("From", message.from_),
                    ("MessageSid", sid),
                    ("MessageStatus", status),
                    ("SmsSid", sid),
                    ("SmsStatus", status),
                    ("To", message.to),
                ]
                if error:
                    params.append(("ErrorCode", error))
            if url:
                self._poster.send("POST", url, params, purpose="message-status", message_sid=sid)


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters (153 per part when split); anything else is UCS-2 (70/67).
    single, part = (160, 153) if all(ord(c) < 128 for c in body) else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)

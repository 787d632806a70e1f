"""A call's life as Twilio reports it: its status changes and their callbacks, the parameters every
call webhook carries, answering an inbound call, ending a call, and the application error.
"""

from __future__ import annotations

import functools
import logging
import math
from datetime import datetime
from email.utils import format_datetime

from hotline.core.redaction import redact_text
from hotline.telephony.simulated.delivery import WebhookPoster
from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.state import CallState, SimState
from hotline.telephony.simulated.timers import Timers
from hotline.telephony.simulated.wire import API_VERSION, caller_location

log = logging.getLogger(__name__)

#: What Twilio's callers hear when a voice webhook fails or its TwiML is unusable.
APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."

FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class CallLifecycle:
    """Moves calls from status to status. Every method is called with the shared lock held."""

    def __init__(
        self, state: SimState, lanes: Lanes, poster: WebhookPoster, timers: Timers
    ) -> None:
        self._state = state
        self._lanes = lanes
        self._poster = poster
        self._timers = timers

    def status_locked(self, call: CallState, status: str, at: datetime) -> None:
        """Move the call to ``status`` and post the status callback if anyone subscribed."""
        if status != "initiated":  # the resource stays queued; "initiated" is only an event
            call.status = status
        self._state.event_locked("status", at, status, call=call)
        final = status in FINAL_CALL_STATUSES
        event = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}.get(
            status, "completed" if final else ""
        )
        if call.direction == "inbound":
            # The number's "Call status changes" URL hears about the end of the call only.
            url = self._state.voice_status_url if final else None
        else:
            url = call.status_callback if event in call.status_events else None
        if not url:
            return
        params = [
            *self.call_params_locked(call, status),
            ("CallbackSource", "call-progress-events"),
            ("SequenceNumber", str(call.sequence)),
            ("Timestamp", format_datetime(at)),
        ]
        call.sequence += 1
        if final:
            duration = 0
            if call.answered_at is not None:
                duration = math.ceil((at - call.answered_at).total_seconds())
            params.append(("CallDuration", str(duration)))
        if call.answered_by is not None:
            params.append(("AnsweredBy", call.answered_by))
        self.callback_locked(call, url, params, "status")

    def callback_locked(
        self,
        call: CallState,
        url: str,
        params: list[tuple[str, str]],
        purpose: str,
        method: str = "POST",
    ) -> None:
        """Queue a callback about the call (status, recording status, machine detection)."""
        # Callbacks have their own lane: they never wait for the call's TwiML, nor it for them.
        self._lanes.enqueue_locked(
            f"cb:{call.sid}",
            functools.partial(self._post_callback, method, url, params, purpose, call.sid),
        )

    def _post_callback(
        self, method: str, url: str, params: list[tuple[str, str]], purpose: str, call_sid: str
    ) -> None:
        self._poster.send(method, url, params, purpose=purpose, call_sid=call_sid)

    def call_params_locked(
        self, call: CallState, status: str | None = None
    ) -> list[tuple[str, str]]:
        """The parameters of every webhook about a call, as Twilio sends them."""
        params = [
            ("AccountSid", self._state.account_sid),
            ("ApiVersion", API_VERSION),
            ("CallSid", call.sid),
            ("CallStatus", status or call.status),
            ("Called", call.to),
            ("Caller", call.from_),
            ("Direction", call.direction),
            ("From", call.from_),
            ("To", call.to),
        ]
        # Twilio adds caller-location fields; the app must drop them (anonymity), so send them.
        for prefix, number in (
            ("From", call.from_),
            ("Caller", call.from_),
            ("To", call.to),
            ("Called", call.to),
        ):
            params.extend(caller_location(prefix, number))
        if call.direction == "inbound" and call.from_.startswith("+1"):
            params.append(("StirVerstat", "TN-Validation-Passed-A"))
        return params

    def answer_inbound_locked(self, call: CallState, at: datetime) -> None:
        """An inbound call is answered by the first verb that runs (a <Reject> first is not)."""
        if call.answered_at is None and call.direction == "inbound":
            call.answered_at = at
            self.status_locked(call, "in-progress", at)

    def end_locked(self, call: CallState, status: str, at: datetime) -> None:
        """End the call with a final status; whatever it waited for and any answer in flight go."""
        if call.ended_at is not None:
            return
        call.ended_at = at
        call.epoch += 1
        self._timers.set_wait_locked(call, None)
        self.status_locked(call, status, at)
        log.info("sim: call %s ended %s", call.sid, status)

    def application_error_locked(
        self, call: CallState, code: int, reason: str, at: datetime
    ) -> None:
        """A webhook failed or its TwiML is unusable: the caller hears the error and the call
        ends, as on Twilio."""
        self._state.event_locked(
            "error", at, f"{code}: {reason}", call=call, detail={"code": str(code)}
        )
        log.warning("sim: call %s application error %s: %s", call.sid, code, redact_text(reason))
        if call.ended_at is not None:
            return
        self.answer_inbound_locked(call, at)
        self._state.event_locked("say", at, APPLICATION_ERROR_TEXT, call=call, language="en-US")
        self.end_locked(call, "completed", at)

"""What a person at a handset does on the simulated network: call the hotline, press keys, speak,
record, hang up; answer, let ring or decline a call the hotline places; text the hotline.

Each action changes state under the shared lock, lets go, then runs the queued work and waits
until the hotline has answered it (its call's lane is settled), as a person would hear it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.lifecycle import CallLifecycle
from hotline.telephony.simulated.messaging import Messaging
from hotline.telephony.simulated.records import HandsetError
from hotline.telephony.simulated.state import CallState, Fetch, RecordWait, SimState
from hotline.telephony.simulated.timers import Timers
from hotline.telephony.simulated.voice import VoiceEngine
from hotline.telephony.simulated.wire import new_sid

log = logging.getLogger(__name__)

ANSWERED_BY_VALUES = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)

#: How long machine detection takes by default, per verdict (DetectMessageEnd waits for the
#: greeting's beep, hence the long machine_end_* delays).
DEFAULT_DETECTION_SECONDS: dict[str, float] = {
    "human": 2.0,
    "machine_start": 3.0,
    "machine_end_beep": 8.0,
    "machine_end_silence": 8.0,
    "machine_end_other": 8.0,
    "fax": 4.0,
    "unknown": 5.0,
}


class Handsets:
    """The handset side of the network, for the dev phone and tests. Called without the lock."""

    def __init__(
        self,
        state: SimState,
        lanes: Lanes,
        timers: Timers,
        lifecycle: CallLifecycle,
        voice: VoiceEngine,
        messaging: Messaging,
    ) -> None:
        self._state = state
        self._lanes = lanes
        self._timers = timers
        self._lifecycle = lifecycle
        self._voice = voice
        self._messaging = messaging

    def _done(self, call_sid: str) -> None:
        """Run what the action queued, then wait for the hotline's answer on the call."""
        self._lanes.drain()
        self._lanes.settle(call_sid)

    # --- calling the hotline ---------------------------------------------------------------------

    def dial_hotline(self, from_number: str) -> str:
        """Call the hotline from ``from_number`` (any caller id, ``anonymous`` too)."""
        if not from_number:
            raise ValueError("a caller id is needed (use 'anonymous' for a withheld number)")
        state = self._state
        with state.lock:
            at = state.clock.now()
            call = CallState(
                sid=new_sid("CA"),
                direction="inbound",
                from_=from_number,
                to=state.hotline,
                handset=from_number,
                status="ringing",
                created_at=at,
                twiml_started=True,
            )
            state.calls[call.sid] = call
            state.handset_locked(from_number)
            state.event_locked("call", at, "calling the hotline", call=call)
            params = self._lifecycle.call_params_locked(call)
            self._voice.start_chain_locked(
                call, Fetch(state.voice_url, "POST", params, "voice"), at
            )
            log.info("sim: inbound call %s", call.sid)
        self._done(call.sid)
        return call.sid

    def press(self, call_sid: str, digits: str) -> None:
        """Press keys on the handset, one after the other."""
        if not digits or any(key not in tw.DTMF_KEYS for key in digits):
            raise ValueError(f"keys are among {tw.DTMF_KEYS}")
        state = self._state
        with state.lock:
            call = state.live_call_locked(call_sid)
            at = state.clock.now()
            for key in digits:
                if not self._voice.listening.key_locked(call, key, at):
                    state.event_locked("dtmf", at, key, call=call, detail={"heard": "no"})
        self._done(call_sid)

    def speak(self, call_sid: str, text: str, confidence: float = 0.9) -> None:
        """Say something: a speech <Gather> hears it; a <Record> records it."""
        state = self._state
        with state.lock:
            call = state.live_call_locked(call_sid)
            at = state.clock.now()
            if not self._voice.listening.speech_locked(call, text, confidence, at):
                state.event_locked("speech", at, text, call=call, detail={"heard": "no"})
        self._done(call_sid)

    def record(
        self,
        call_sid: str,
        *,
        text_or_audio: str | bytes,
        finish_key: str | None = "#",
        duration: float | None = None,
    ) -> None:
        """Talk into a <Record>: ``text_or_audio`` is what is said (text, or WAV bytes), then
        ``finish_key`` is pressed; ``None`` goes silent (the record times out), ``"hangup"``
        hangs up. ``duration`` overrides the estimated speaking time in seconds."""
        if finish_key not in (None, "hangup") and (
            len(finish_key) != 1 or finish_key not in tw.DTMF_KEYS
        ):
            raise ValueError("finish_key is one key, None (silence) or 'hangup'")
        state = self._state
        listening = self._voice.listening
        with state.lock:
            call = state.live_call_locked(call_sid)
            wait = call.wait
            if not isinstance(wait, RecordWait):
                raise HandsetError("no <Record> is listening on this call now")
            at = state.clock.now()
            listening.record_audio_locked(call, wait, text_or_audio, duration, at)
            if call.wait is wait:  # not already cut off by maxLength
                if finish_key == "hangup":
                    self._hang_up_locked(call, at)
                elif finish_key is not None:
                    listening.key_locked(call, finish_key, at)
        self._done(call_sid)

    def hang_up(self, call_sid: str) -> None:
        """The handset hangs up (a ringing outbound call is declined)."""
        state = self._state
        with state.lock:
            call = state.call_locked(call_sid)
            if call.ended_at is None:
                self._hang_up_locked(call, state.clock.now())
        self._done(call_sid)

    def _hang_up_locked(self, call: CallState, at: datetime) -> None:
        self._state.event_locked("hangup", at, "the handset hung up", call=call)
        if call.direction == "outbound-api" and call.answered_at is None:
            self._lifecycle.end_locked(call, "busy", at)
            return
        self._voice.listening.caller_hung_up_locked(call, at)
        self._lifecycle.end_locked(call, "completed" if call.answered_at else "canceled", at)

    # --- a call from the hotline -----------------------------------------------------------------

    def answer(
        self, call_sid: str, *, by: str = "human", detection_seconds: float | None = None
    ) -> None:
        """Answer a ringing outbound call as a person or an answering machine.

        ``by``: ``human``, ``machine`` (the verdict Twilio's detection mode gives a machine),
        or any AnsweredBy value. With machine detection the verdict comes after
        ``detection_seconds`` of the clock (defaults per verdict), at the next ``tick()``.
        """
        state = self._state
        with state.lock:
            call = self._ringing_outbound_locked(call_sid, "answered")
            request = call.request
            assert request is not None
            at = state.clock.now()
            verdict = _verdict(by, request.machine_detection)
            call.answered_at = at
            state.event_locked("answer", at, f"answered by {verdict}", call=call)
            self._lifecycle.status_locked(call, "in-progress", at)
            if request.send_digits:
                state.event_locked("play", at, f"DTMF {request.send_digits}", call=call)
            if request.time_limit:
                self._timers.arm_locked(
                    call, at + timedelta(seconds=request.time_limit), "time_limit"
                )
            if request.machine_detection:
                call.amd_verdict = verdict
                seconds = (
                    detection_seconds
                    if detection_seconds is not None
                    else DEFAULT_DETECTION_SECONDS[verdict]
                )
                self._timers.arm_locked(call, at + timedelta(seconds=seconds), "amd")
            if not request.machine_detection or request.async_amd:
                # Async detection: the TwiML starts at once, the verdict is posted later.
                self._voice.start_outbound_twiml_locked(call, at)
        self._done(call_sid)

    def let_ring(self, call_sid: str) -> datetime:
        """Leave a ringing outbound call unanswered; returns when it becomes no-answer."""
        state = self._state
        with state.lock:
            call = self._ringing_outbound_locked(call_sid, "left ringing")
            assert call.ring_due is not None
            state.event_locked("call", state.clock.now(), "left ringing", call=call)
            return call.ring_due

    def decline(self, call_sid: str) -> None:
        """Reject a ringing outbound call (the caller gets busy)."""
        state = self._state
        with state.lock:
            call = self._ringing_outbound_locked(call_sid, "declined")
            at = state.clock.now()
            state.event_locked("hangup", at, "declined", call=call)
            self._lifecycle.end_locked(call, "busy", at)
        self._done(call_sid)

    def _ringing_outbound_locked(self, call_sid: str, action: str) -> CallState:
        call = self._state.live_call_locked(call_sid)
        if call.direction != "outbound-api" or call.answered_at is not None:
            raise HandsetError(f"only a ringing outbound call can be {action}")
        return call

    # --- texts -----------------------------------------------------------------------------------

    def text_hotline(
        self,
        from_number: str,
        body: str,
        media: Sequence[tuple[bytes, str]] = (),
    ) -> str:
        """Text the hotline; ``media`` pictures as (content, content type). Returns the sid."""
        if not body and not media:
            raise ValueError("a text needs a body or media")
        state = self._state
        with state.lock:
            sid = self._messaging.text_hotline_locked(from_number, body, media, state.clock.now())
        self._lanes.drain()
        return sid

    def set_reachable(self, number: str, reachable: bool) -> None:
        """An unreachable handset (switched off, no signal): texts to it end undelivered."""
        with self._state.lock:
            self._state.handset_locked(number).reachable = reachable


def _verdict(by: str, machine_detection: str | None) -> str:
    if by == "machine":
        return "machine_start" if machine_detection == "Enable" else "machine_end_beep"
    if by not in ANSWERED_BY_VALUES:
        raise ValueError(f"by is 'human', 'machine' or one of {sorted(ANSWERED_BY_VALUES)}")
    return by

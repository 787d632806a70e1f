"""<Gather> and <Record>: what a call listens for from the caller (keys, speech, a recording) and
what comes of it when it arrives, when it times out and when the caller hangs up.

The <Gather> timeout and a <Record>'s silence timeout are armed through
:meth:`Timers.arm_listening_locked`, which stretches them by the network's patience. A speech
timeout needs no timer: a handset's speech arrives whole, at once.
"""

from __future__ import annotations

import io
import math
import wave
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Protocol

from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.lifecycle import CallLifecycle
from hotline.telephony.simulated.records import SimRecording
from hotline.telephony.simulated.state import (
    CallState,
    Fetch,
    GatherWait,
    RecordWait,
    SimState,
    Step,
    StoredRecording,
)
from hotline.telephony.simulated.timers import Timers
from hotline.telephony.simulated.wire import new_sid

#: How fast a handset "speaks" text into a <Record>, to estimate the recording's length.
WORDS_PER_SECOND = 2.5


class DocumentRunner(Protocol):
    """What listening needs of the voice engine that runs the call's document."""

    def start_chain_locked(self, call: CallState, step: Step, at: datetime) -> None:
        """Fetch (or load) ``step`` and run the documents it leads to, in the call's lane."""

    def resume_locked(self, call: CallState, at: datetime) -> None:
        """Go on with the current document at its next verb."""

    def prompt_locked(self, call: CallState, verb: tw.Say | tw.Play, at: datetime) -> None:
        """Play a <Say> or <Play> to the caller."""


class Listening:
    """The <Gather> and <Record> waits of calls. Every method is called with the lock held."""

    def __init__(
        self, state: SimState, lifecycle: CallLifecycle, timers: Timers, runner: DocumentRunner
    ) -> None:
        self._state = state
        self._lifecycle = lifecycle
        self._timers = timers
        self._runner = runner

    # --- Gather ----------------------------------------------------------------------------------

    def start_gather_locked(self, call: CallState, verb: tw.Gather, at: datetime) -> None:
        action = call.resolve(verb.action) if verb.action else call.doc_url
        if action is None:
            self._lifecycle.application_error_locked(
                call, tw.INVALID_URL, "<Gather> has no action and the TwiML has no URL", at
            )
            return
        wait = GatherWait(verb=verb, action=action, prompts=list(verb.prompts))
        detail = {
            "input": " ".join(sorted(verb.inputs)),
            "timeout": str(verb.timeout),
            "finishOnKey": verb.finish_on_key,
            "actionOnEmptyResult": str(verb.action_on_empty_result).lower(),
            "action": action,
        }
        if verb.num_digits is not None:
            detail["numDigits"] = str(verb.num_digits)
        if verb.hints:
            detail["hints"] = verb.hints
        if verb.speech_timeout:
            # Kept for the record only: a handset's speech arrives whole, at once.
            detail["speechTimeout"] = verb.speech_timeout
        if self._state.patience != 1:
            detail["patience"] = format(self._state.patience, "g")
        self._state.event_locked(
            "gather",
            at,
            "listening for " + detail["input"],
            call=call,
            language=verb.language,
            detail=detail,
        )
        self._timers.set_wait_locked(call, wait)
        self._play_gather_prompts_locked(call, wait, at)

    def _play_gather_prompts_locked(self, call: CallState, wait: GatherWait, at: datetime) -> None:
        while wait.prompts:
            prompt = wait.prompts.pop(0)
            if isinstance(prompt, tw.Pause):
                self._state.event_locked("pause", at, f"{prompt.length} s", call=call)
                if prompt.length > 0:
                    self._timers.arm_wait_locked(call, at + timedelta(seconds=prompt.length))
                    return
            else:
                self._runner.prompt_locked(call, prompt, at)
        # The input timeout counts from the end of the prompts.
        wait.listening = True
        self._timers.arm_listening_locked(call, at, wait.verb.timeout)

    def key_locked(self, call: CallState, key: str, at: datetime) -> bool:
        """A key pressed on the handset; False when nothing on the call listens for keys."""
        wait = call.wait
        if isinstance(wait, GatherWait) and "dtmf" in wait.verb.inputs:
            self._state.event_locked("dtmf", at, key, call=call)
            if not wait.listening:
                if wait.prompts and wait.verb.barge_in:
                    self._state.event_locked("warning", at, "prompts cut off (barge-in)", call=call)
                    wait.prompts.clear()
                wait.listening = True
            finish = wait.verb.finish_on_key
            if finish and key == finish:
                if wait.digits:
                    self._submit_gather_locked(
                        call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", key)]
                    )
                else:
                    # Twilio: the finish key before any digit is no input at all.
                    self._gather_empty_locked(call, wait, at)
                return True
            wait.digits += key
            if wait.verb.num_digits is not None and len(wait.digits) >= wait.verb.num_digits:
                self._submit_gather_locked(
                    call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", "")]
                )
            else:
                self._timers.arm_listening_locked(call, at, wait.verb.timeout)
            return True
        if isinstance(wait, RecordWait):
            self._state.event_locked("dtmf", at, key, call=call)
            if key in wait.verb.finish_on_key:
                if wait.chunks:
                    fetch = self._finish_record_locked(call, wait, at, digits=key)
                    self._runner.start_chain_locked(call, fetch, at)
                else:
                    self._record_empty_locked(call, wait, at, resume=True)
            return True
        return False

    def speech_locked(self, call: CallState, text: str, confidence: float, at: datetime) -> bool:
        """The caller says ``text``: a speech <Gather> hears it, a <Record> records it; False
        when nothing on the call listens."""
        wait = call.wait
        if isinstance(wait, GatherWait) and "speech" in wait.verb.inputs and text.strip():
            self._state.event_locked("speech", at, text, call=call)
            wait.listening = True
            self._submit_gather_locked(
                call,
                wait,
                at,
                [("SpeechResult", text), ("Confidence", format(confidence, ".8g"))],
            )
            return True
        if isinstance(wait, RecordWait):
            self._state.event_locked("speech", at, text, call=call)
            self.record_audio_locked(call, wait, text, None, at)
            return True
        return False

    def _submit_gather_locked(
        self, call: CallState, wait: GatherWait, at: datetime, result: list[tuple[str, str]]
    ) -> None:
        self._timers.set_wait_locked(call, None)
        params = self._lifecycle.call_params_locked(call) + result
        self._runner.start_chain_locked(
            call, Fetch(wait.action, wait.verb.method, params, "action"), at
        )

    def _gather_empty_locked(self, call: CallState, wait: GatherWait, at: datetime) -> None:
        if wait.verb.action_on_empty_result:
            self._state.event_locked("gather", at, "no input: posting the action anyway", call=call)
            self._submit_gather_locked(call, wait, at, [])
        else:
            # Twilio does not call the action; the next verb runs.
            self._state.event_locked("gather", at, "no input: next verb", call=call)
            self._runner.resume_locked(call, at)

    def gather_timed_out_locked(self, call: CallState, wait: GatherWait, at: datetime) -> None:
        """The gather's timer fired: a nested pause is over, or the caller stopped pressing."""
        if not wait.listening:
            self._play_gather_prompts_locked(call, wait, at)
        elif wait.digits:
            self._submit_gather_locked(
                call, wait, at, [("Digits", wait.digits), ("FinishedOnKey", "")]
            )
        else:
            self._gather_empty_locked(call, wait, at)

    # --- Record ----------------------------------------------------------------------------------

    def start_record_locked(self, call: CallState, verb: tw.Record, at: datetime) -> None:
        action = call.resolve(verb.action) if verb.action else call.doc_url
        if action is None:
            self._lifecycle.application_error_locked(
                call, tw.INVALID_URL, "<Record> has no action and the TwiML has no URL", at
            )
            return
        status_callback = None
        if verb.status_callback:
            status_callback = call.resolve(verb.status_callback)
        wait = RecordWait(
            verb=verb,
            action=action,
            status_callback=status_callback,
            recording_sid=new_sid("RE"),
            started_at=at,
        )
        self._state.event_locked(
            "record",
            at,
            "beep" if verb.play_beep else "recording (no beep)",
            call=call,
            detail={
                "timeout": str(verb.timeout),
                "maxLength": str(verb.max_length),
                "finishOnKey": verb.finish_on_key,
                "action": action,
                **(
                    {"patience": format(self._state.patience, "g")}
                    if self._state.patience != 1
                    else {}
                ),
            },
        )
        self._timers.set_wait_locked(call, wait)
        # Silence from the start: nothing recorded after `timeout` (0 disables it: maxLength,
        # the hotline's own limit, which patience does not stretch).
        if verb.timeout:
            self._timers.arm_listening_locked(call, at, verb.timeout)
        else:
            self._timers.arm_wait_locked(call, at + timedelta(seconds=verb.max_length))

    def record_audio_locked(
        self,
        call: CallState,
        wait: RecordWait,
        audio: str | bytes,
        duration: float | None,
        at: datetime,
    ) -> None:
        """The caller talks into the <Record> (text or WAV bytes); ``duration`` in seconds
        overrides the estimate."""
        if not audio:
            return
        first = not wait.chunks
        wait.chunks.append(audio)
        wait.seconds += duration if duration is not None else _speaking_seconds(audio)
        if first and wait.status_callback and "in-progress" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "in-progress", 0)
        if wait.seconds >= wait.verb.max_length:
            wait.seconds = float(wait.verb.max_length)
            self._runner.start_chain_locked(call, self._finish_record_locked(call, wait, at), at)
        elif wait.verb.timeout:
            # The recording ends after `timeout` seconds of silence unless a key ends it first.
            self._timers.arm_listening_locked(call, at, wait.verb.timeout)

    def record_timed_out_locked(self, call: CallState, wait: RecordWait, at: datetime) -> None:
        """Silence (or maxLength) ended the <Record>."""
        if wait.chunks:
            self._runner.start_chain_locked(call, self._finish_record_locked(call, wait, at), at)
        else:
            self._record_empty_locked(call, wait, at, resume=True)

    def caller_hung_up_locked(self, call: CallState, at: datetime) -> None:
        """What a hang-up does to the wait: a <Record> with audio still posts its action
        (Digits=hangup), and nothing it answers can run. The call itself is ended by the caller.
        Twilio does not call a <Gather> action on hang-up: the status callback tells the app."""
        wait = call.wait
        if isinstance(wait, RecordWait):
            if wait.chunks:
                fetch = self._finish_record_locked(
                    call, wait, at, digits="hangup", ignore_reply=True
                )
                self._runner.start_chain_locked(call, fetch, at)
            else:
                self._record_empty_locked(call, wait, at, resume=False)

    def _finish_record_locked(
        self,
        call: CallState,
        wait: RecordWait,
        at: datetime,
        *,
        digits: str | None = None,
        ignore_reply: bool = False,
    ) -> Fetch:
        self._timers.set_wait_locked(call, None)
        duration = max(1, math.ceil(wait.seconds))
        url = f"{self._state.media_base}/Recordings/{wait.recording_sid}"
        text = " ".join(chunk for chunk in wait.chunks if isinstance(chunk, str))
        audio = [chunk for chunk in wait.chunks if isinstance(chunk, bytes)]
        content = audio[0] if len(wait.chunks) == 1 and audio else _silent_wav(duration)
        info = SimRecording(
            sid=wait.recording_sid,
            call_sid=call.sid,
            url=url,
            duration=duration,
            content_type="audio/x-wav",
            text=text,
            created_at=at,
        )
        self._state.recordings[info.sid] = StoredRecording(info, content)
        self._state.event_locked(
            "recording",
            at,
            text or f"{len(content)} bytes of audio",
            call=call,
            detail={"url": url, "duration": str(duration), "digits": digits or ""},
        )
        if wait.status_callback and "completed" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "completed", duration)
        status = "completed" if digits == "hangup" else None
        params = [
            *self._lifecycle.call_params_locked(call, status),
            ("RecordingUrl", url),
            ("RecordingSid", info.sid),
            ("RecordingDuration", str(duration)),
        ]
        if digits is not None:
            params.append(("Digits", digits))
        return Fetch(wait.action, wait.verb.method, params, "action", ignore_reply=ignore_reply)

    def _record_empty_locked(
        self, call: CallState, wait: RecordWait, at: datetime, *, resume: bool
    ) -> None:
        """Nothing was recorded: Twilio skips the action and runs the next verb."""
        self._state.event_locked("record", at, "nothing recorded", call=call)
        if wait.status_callback and "absent" in wait.verb.status_callback_events:
            self._recording_callback_locked(call, wait, "absent", 0)
        self._timers.set_wait_locked(call, None)
        if resume:
            self._runner.resume_locked(call, at)

    def _recording_callback_locked(
        self, call: CallState, wait: RecordWait, status: str, duration: int
    ) -> None:
        assert wait.status_callback is not None
        params = [
            ("AccountSid", self._state.account_sid),
            ("CallSid", call.sid),
            ("RecordingSid", wait.recording_sid),
            ("RecordingUrl", f"{self._state.media_base}/Recordings/{wait.recording_sid}"),
            ("RecordingStatus", status),
            ("RecordingDuration", str(duration)),
            ("RecordingChannels", "1"),
            ("RecordingSource", "RecordVerb"),
            ("RecordingStartTime", format_datetime(wait.started_at)),
            ("ErrorCode", "0"),
        ]
        self._lifecycle.callback_locked(
            call, wait.status_callback, params, "recording-status", wait.verb.status_callback_method
        )


def _speaking_seconds(audio: str | bytes) -> float:
    if isinstance(audio, str):
        return max(1.0, len(audio.split()) / WORDS_PER_SECOND)
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            frames: int = wav.getnframes()
            rate: int = wav.getframerate()
            return frames / float(rate)
    except (wave.Error, EOFError):
        return max(1.0, len(audio) / 16_000)  # 8 kHz, 16-bit


def _silent_wav(seconds: int) -> bytes:
    """A real WAV file of the recording's length, so a UI can play it and tools can read it."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * (8000 * seconds))
    return buffer.getvalue()

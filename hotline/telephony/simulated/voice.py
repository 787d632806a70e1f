"""The voice engine: fetching a call's TwiML and running its verbs with Twilio's semantics until
the call waits (a pause, a <Gather>, a <Record>, a <Dial>), needs its next document or ends;
and what each of its timers means when it fires (ring, time limit, machine detection, the wait).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from hotline.telephony.simulated import twiml as tw
from hotline.telephony.simulated.delivery import Outcome, WebhookPoster
from hotline.telephony.simulated.lanes import Lanes
from hotline.telephony.simulated.lifecycle import CallLifecycle
from hotline.telephony.simulated.listening import Listening
from hotline.telephony.simulated.state import (
    CallState,
    DialWait,
    Fetch,
    GatherWait,
    InlineTwiml,
    PauseWait,
    RecordWait,
    SimState,
    Step,
)
from hotline.telephony.simulated.timers import Timer, Timers
from hotline.telephony.simulated.transport import HTTP_RETRIEVAL_FAILURE

#: Documents fetched in a row without waiting for the caller: beyond this a <Redirect> loop is
#: assumed (Twilio would loop until the call's time limit; the simulator would spin a thread).
MAX_FETCHES_WITHOUT_WAITING = 50


class VoiceEngine:
    """Runs calls' documents. ``*_locked`` methods are called with the shared lock held;
    ``_run_chain`` runs as a job in the call's lane, without it, and takes it between posts."""

    def __init__(
        self,
        state: SimState,
        lanes: Lanes,
        poster: WebhookPoster,
        timers: Timers,
        lifecycle: CallLifecycle,
    ) -> None:
        self._state = state
        self._lanes = lanes
        self._poster = poster
        self._timers = timers
        self._lifecycle = lifecycle
        #: <Gather> and <Record>, which call back here to go on with the document.
        self.listening = Listening(state, lifecycle, timers, runner=self)

    # --- the chain of documents ------------------------------------------------------------------

    def start_chain_locked(self, call: CallState, step: Step, at: datetime) -> None:
        """Fetch (or load) ``step`` and run the documents it leads to, in the call's lane."""
        call.pending_chains += 1
        self._lanes.enqueue_locked(
            call.sid, functools.partial(self._run_chain, call.sid, call.epoch, step, at)
        )

    def _run_chain(self, call_sid: str, epoch: int, first: Step, at: datetime) -> None:
        """Fetch and run documents until the call waits for the caller, a timer, or ends."""
        state = self._state
        step: Step | None = first
        fetches = 0
        try:
            while step is not None:
                with state.lock:
                    call = state.calls[call_sid]
                    stale = call.epoch != epoch or call.ended_at is not None
                    if isinstance(step, InlineTwiml):
                        step = None if stale else self._load_inline_locked(call, step.twiml, at)
                        continue
                    if stale and not step.ignore_reply:
                        return
                    fetches += 1
                    if fetches > MAX_FETCHES_WITHOUT_WAITING:
                        self._lifecycle.application_error_locked(
                            call, 11215, "too many documents without waiting (redirect loop?)", at
                        )
                        return
                fetch = step
                outcome = self._poster.send(
                    fetch.method,
                    fetch.url,
                    fetch.params,
                    purpose=fetch.purpose,
                    call_sid=call_sid,
                )
                if fetch.ignore_reply:
                    return
                with state.lock:
                    call = state.calls[call_sid]
                    if call.epoch != epoch or call.ended_at is not None:
                        state.event_locked(
                            "warning",
                            at,
                            "answer dropped: the call was redirected or ended",
                            call=call,
                        )
                        return
                    step = self._apply_reply_locked(call, fetch, outcome, at)
        finally:
            with state.lock:
                state.calls[call_sid].pending_chains -= 1

    def _apply_reply_locked(
        self, call: CallState, fetch: Fetch, outcome: Outcome, at: datetime
    ) -> Fetch | None:
        if outcome.error_code is not None or outcome.reply is None:
            self._lifecycle.application_error_locked(
                call, outcome.error_code or HTTP_RETRIEVAL_FAILURE, outcome.error or "no answer", at
            )
            return None
        content_type = outcome.reply.content_type.split(";")[0].strip().lower()
        if content_type.startswith("audio/"):
            # Twilio plays an audio answer, then there is nothing more to run.
            self._lifecycle.answer_inbound_locked(call, at)
            self._state.event_locked("play", at, fetch.url, call=call)
            self._lifecycle.end_locked(call, "completed", at)
            return None
        if content_type not in tw.TWIML_CONTENT_TYPES:
            self._lifecycle.application_error_locked(
                call,
                tw.INVALID_CONTENT_TYPE,
                f"Content-Type {content_type or '(none)'} is not TwiML (answer text/xml)",
                at,
            )
            return None
        try:
            verbs = tw.compile_voice(outcome.reply.body)
        except tw.TwimlError as exc:
            self._lifecycle.application_error_locked(call, exc.code, exc.reason, at)
            return None
        return self._load_locked(call, fetch.url, verbs, at)

    def _load_inline_locked(self, call: CallState, twiml: str, at: datetime) -> Fetch | None:
        try:
            verbs = tw.compile_voice(twiml)
        except tw.TwimlError as exc:
            self._lifecycle.application_error_locked(call, exc.code, exc.reason, at)
            return None
        return self._load_locked(call, None, verbs, at)

    def _load_locked(
        self, call: CallState, url: str | None, verbs: tuple[tw.VoiceVerb, ...], at: datetime
    ) -> Fetch | None:
        call.doc_url = url
        call.verbs = verbs
        call.pc = 0
        self._timers.set_wait_locked(call, None)
        return self._continue_locked(call, at)

    def redirect_locked(
        self, call: CallState, url: str | None, twiml: str | None, at: datetime
    ) -> None:
        """The app redirected a live call (``update_call`` with a URL or TwiML)."""
        if not call.twiml_started and call.direction == "outbound-api":
            # Not answered yet (or machine detection still listening): this is what runs
            # once it is.
            call.answer_url, call.answer_twiml = url, twiml
            return
        # Whatever the call was doing stops; an answer still in flight is dropped.
        call.epoch += 1
        self._timers.set_wait_locked(call, None)
        step: Step
        if twiml is not None:
            step = InlineTwiml(twiml)
        else:
            assert url is not None
            step = Fetch(url, "POST", self._lifecycle.call_params_locked(call), "redirect")
        self.start_chain_locked(call, step, at)

    def resume_locked(self, call: CallState, at: datetime) -> None:
        """Go on with the current document outside a chain (after a timeout or a keypress)."""
        self._timers.set_wait_locked(call, None)
        fetch = self._continue_locked(call, at)
        if fetch is not None:
            self.start_chain_locked(call, fetch, at)

    # --- the verbs -------------------------------------------------------------------------------

    def _continue_locked(self, call: CallState, at: datetime) -> Fetch | None:
        """Run verbs until one waits (None) or needs a document (the fetch to make)."""
        state = self._state
        while call.pc < len(call.verbs):
            verb = call.verbs[call.pc]
            call.pc += 1
            if isinstance(verb, tw.Reject):
                self._reject_locked(call, verb, at)
                return None
            self._lifecycle.answer_inbound_locked(call, at)
            if isinstance(verb, tw.Say | tw.Play):
                self.prompt_locked(call, verb, at)
            elif isinstance(verb, tw.Pause):
                state.event_locked("pause", at, f"{verb.length} s", call=call)
                if verb.length > 0:
                    self._timers.set_wait_locked(call, PauseWait())
                    self._timers.arm_wait_locked(call, at + timedelta(seconds=verb.length))
                    return None
            elif isinstance(verb, tw.Gather):
                self.listening.start_gather_locked(call, verb, at)
                return None
            elif isinstance(verb, tw.Record):
                self.listening.start_record_locked(call, verb, at)
                return None
            elif isinstance(verb, tw.Redirect):
                url = call.resolve(verb.url)
                if url is None:
                    self._lifecycle.application_error_locked(
                        call,
                        tw.INVALID_URL,
                        f"relative <Redirect> {verb.url!r} without a "
                        "document URL to resolve it against",
                        at,
                    )
                    return None
                state.event_locked("redirect", at, url, call=call)
                return Fetch(url, verb.method, self._lifecycle.call_params_locked(call), "redirect")
            elif isinstance(verb, tw.Hangup):
                state.event_locked("hangup", at, "<Hangup>", call=call)
                self._lifecycle.end_locked(call, "completed", at)
                return None
            elif isinstance(verb, tw.Dial):
                self._start_dial_locked(call, verb, at)
                return None
            else:
                state.event_locked(
                    "warning", at, f"<{verb.name}> is not simulated; skipped", call=call
                )
        state.event_locked("hangup", at, "end of the document", call=call)
        self._lifecycle.end_locked(call, "completed", at)
        return None

    def prompt_locked(self, call: CallState, verb: tw.Say | tw.Play, at: datetime) -> None:
        """Play a <Say> or <Play> to the caller (an event with what is said, in which voice)."""
        if isinstance(verb, tw.Say):
            self._state.event_locked(
                "say",
                at,
                verb.text,
                call=call,
                language=verb.language,
                voice=verb.voice,
                detail={"loop": str(verb.loop)},
            )
        else:
            text = verb.url or f"DTMF {verb.digits}"
            self._state.event_locked("play", at, text, call=call, detail={"loop": str(verb.loop)})

    def _start_dial_locked(self, call: CallState, verb: tw.Dial, at: datetime) -> None:
        action = call.resolve(verb.action) if verb.action else None
        if verb.action and action is None:
            self._lifecycle.application_error_locked(
                call, tw.INVALID_URL, "relative <Dial action> without URL", at
            )
            return
        self._timers.set_wait_locked(call, DialWait(verb, action))
        if verb.conference:
            # A lone participant waits until someone joins; nobody ever does here.
            self._state.event_locked("dial", at, f"{verb.target}: waiting alone", call=call)
        else:
            self._state.event_locked(
                "dial", at, f"{verb.target}: no answer (not simulated)", call=call
            )
            self._timers.arm_wait_locked(call, at + timedelta(seconds=verb.timeout))

    def _reject_locked(self, call: CallState, verb: tw.Reject, at: datetime) -> None:
        self._state.event_locked("reject", at, verb.reason, call=call)
        if call.answered_at is None:
            # Rejected before answering: never billed, ends busy or no-answer.
            self._lifecycle.end_locked(call, "busy" if verb.reason == "busy" else "no-answer", at)
        else:
            self._lifecycle.end_locked(call, "completed", at)

    # --- outbound calls: the answer URL and machine detection ----------------------------------

    def start_outbound_twiml_locked(self, call: CallState, at: datetime) -> None:
        """An outbound call was answered (and detection, unless asynchronous, is done): its
        answer TwiML or URL runs."""
        call.twiml_started = True
        step: Step
        if call.answer_twiml is not None:
            step = InlineTwiml(call.answer_twiml)
        else:
            assert call.answer_url is not None
            params = self._lifecycle.call_params_locked(call)
            if call.answered_by is not None:
                params.append(("AnsweredBy", call.answered_by))
            step = Fetch(call.answer_url, "POST", params, "voice")
        self.start_chain_locked(call, step, at)

    def _amd_verdict_locked(self, call: CallState, at: datetime) -> None:
        request = call.request
        assert request is not None
        assert call.answered_at is not None
        call.answered_by = call.amd_verdict
        self._state.event_locked("amd", at, call.answered_by or "unknown", call=call)
        duration_ms = int((at - call.answered_at).total_seconds() * 1000)
        if not request.async_amd:
            self.start_outbound_twiml_locked(call, at)
        elif request.async_amd_status_callback:
            params = [
                ("AccountSid", self._state.account_sid),
                ("CallSid", call.sid),
                ("AnsweredBy", call.answered_by or "unknown"),
                ("MachineDetectionDuration", str(duration_ms)),
            ]
            self._lifecycle.callback_locked(call, request.async_amd_status_callback, params, "amd")

    # --- timers ----------------------------------------------------------------------------------

    def timer_fired_locked(self, timer: Timer) -> None:
        """What a due timer does to its call (nothing once the call has ended)."""
        call = self._state.calls.get(timer.call_sid)
        if call is None or call.ended_at is not None:
            return
        at = timer.due
        if timer.kind == "ring":
            if call.answered_at is None:
                self._state.event_locked("call", at, "nobody answered", call=call)
                self._lifecycle.end_locked(call, "no-answer", at)
        elif timer.kind == "time_limit":
            self._state.event_locked("hangup", at, "time limit reached", call=call)
            self._lifecycle.end_locked(call, "completed", at)
        elif timer.kind == "amd":
            self._amd_verdict_locked(call, at)
        elif timer.kind == "wait" and timer.token == call.wait_token:
            self._wait_expired_locked(call, at)

    def _wait_expired_locked(self, call: CallState, at: datetime) -> None:
        wait = call.wait
        if isinstance(wait, PauseWait):
            self.resume_locked(call, at)
        elif isinstance(wait, GatherWait):
            self.listening.gather_timed_out_locked(call, wait, at)
        elif isinstance(wait, RecordWait):
            self.listening.record_timed_out_locked(call, wait, at)
        elif isinstance(wait, DialWait):
            if wait.action is None:
                self.resume_locked(call, at)
            else:
                self._timers.set_wait_locked(call, None)
                params = [
                    *self._lifecycle.call_params_locked(call),
                    ("DialCallStatus", "no-answer"),
                    ("DialCallDuration", "0"),
                ]
                self.start_chain_locked(
                    call, Fetch(wait.action, wait.verb.method, params, "action"), at
                )

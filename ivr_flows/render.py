"""Turning the menu's script into TwiML with the twilio library's builders.

Every ``<Say>`` carries its catalogue's language and voice, so a Spanish caller hears numbers and
school names in the Spanish voice too. Each action URL carries the step counter ``n`` and the
kind of event it reports, so silence and "nothing recorded" reach the app as explicit requests
(Twilio runs the next verb when a ``<Gather>`` gets no input: a ``<Redirect>`` there tells us).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from hotline.wording import Catalogue, PromptKey, catalogue
from ivr_flows import flow


def spell_digits(value: str) -> str:
    """ "4815" → "4, 8, 1, 5": read one digit at a time, with a short pause between."""
    return ", ".join(ch for ch in value if ch.isdigit())


def say_text(say: flow.Say, cat: Catalogue) -> str:
    params = {
        name: spell_digits(value.value) if isinstance(value, flow.Digits) else value
        for name, value in say.params.items()
    }
    return cat.text(say.key, **params)


class Renderer:
    def __init__(self, base_url: str, language: str, hints: Callable[[], str]) -> None:
        self.base_url = base_url
        self.language = language
        self._hints = hints

    def step_url(self, n: int, event: str) -> str:
        return f"{self.base_url}/twilio/voice/step?{urlencode({'n': n, 'e': event})}"

    def _say(self, parent: VoiceResponse | Gather, says: Iterable[flow.Say]) -> None:
        for say in says:
            cat = catalogue(say.language or self.language)
            parent.say(say_text(say, cat), language=cat.say_language, voice=cat.voice)

    def render(self, n: int, preface: Iterable[flow.Say], script: flow.Script) -> str:
        response = VoiceResponse()
        self._say(response, preface)
        if isinstance(script, flow.Ask):
            cat = catalogue(self.language)
            options: dict[str, object] = {
                "action": self.step_url(n, "input"),
                "method": "POST",
                "input": "dtmf speech" if script.speech else "dtmf",
                "timeout": script.timeout,
                "finish_on_key": script.finish_on_key,
                "action_on_empty_result": False,
            }
            if script.num_digits is not None:
                options["num_digits"] = script.num_digits
            if script.speech:
                options["language"] = cat.speech_language
                options["speech_timeout"] = "auto"
                hints = self._hints()
                if hints:
                    options["hints"] = hints
            gather = response.gather(**options)
            self._say(gather, script.prompts)
            # Reached only when the caller gave no input.
            response.redirect(self.step_url(n, "timeout"), method="POST")
        elif isinstance(script, flow.RecordMessage):
            self._say(response, script.prompts)
            response.record(
                action=self.step_url(n, "recorded"),
                method="POST",
                max_length=script.max_length,
                # A frightened caller pauses; end the recording only after a long silence.
                timeout=10,
                finish_on_key="#",
                play_beep=True,
                recording_status_callback=f"{self.base_url}/twilio/recording/status",
                recording_status_callback_method="POST",
            )
            # Verbs after <Record> run only when nothing was recorded.
            response.redirect(self.step_url(n, "norecording"), method="POST")
        else:
            self._say(response, script.prompts)
            response.hangup()
        return str(response)


def apology(base_url: str, language: str) -> str:
    """The answer when anything in the menu failed: still a chance to leave the tip."""
    cat = catalogue(language)
    response = VoiceResponse()
    response.say(cat.text(PromptKey.ERROR_APOLOGY), language=cat.say_language, voice=cat.voice)
    response.record(
        action=f"{base_url}/twilio/voice/rescue?{urlencode({'lang': cat.code})}",
        method="POST",
        max_length=flow.MAX_RECORDING_SECONDS,
        timeout=10,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=f"{base_url}/twilio/recording/status",
        recording_status_callback_method="POST",
    )
    response.say(cat.text(PromptKey.ERROR_THANKS), language=cat.say_language, voice=cat.voice)
    response.hangup()
    return str(response)


def thanks_and_goodbye(language: str) -> str:
    cat = catalogue(language)
    response = VoiceResponse()
    response.say(cat.text(PromptKey.ERROR_THANKS), language=cat.say_language, voice=cat.voice)
    response.hangup()
    return str(response)

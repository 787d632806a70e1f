"""Incoming texts: keywords, confirmations by contacts, and tips that are never dropped."""

from __future__ import annotations

import pytest

from sms import commands
from sms.commands import (
    ConfirmLatest,
    ConfirmReport,
    Keyword,
    KeywordCommand,
    Media,
    Text,
    clean_body,
    guess_language,
    parse_command,
    parse_media,
)

# The pure part ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1", ConfirmLatest()),
        (" 1 ", ConfirmLatest()),
        ("1.", ConfirmLatest()),
        ("\uff11", ConfirmLatest()),  # a full-width digit from a phone's keyboard
        ("1 1234567", ConfirmReport("1234567")),
        ("1, 1234567", ConfirmReport("1234567")),
        ("1 #1234567", ConfirmReport("1234567")),
        ("1#1234567", ConfirmReport("1234567")),
        ("  1   1234567  ", ConfirmReport("1234567")),
        ("1: 123-4567", ConfirmReport("1234567")),
        ("1 1234567!", ConfirmReport("1234567")),
        ("1 12345", ConfirmReport("12345")),  # checked (and refused) by the service
        ("1\u200b 1234567", ConfirmReport("1234567")),  # a zero-width space
        ("YES", KeywordCommand(Keyword.OPT_IN)),
        ("yes", KeywordCommand(Keyword.OPT_IN)),
        ("Start", KeywordCommand(Keyword.OPT_IN)),
        ("unstop", KeywordCommand(Keyword.OPT_IN)),
        ("stop", KeywordCommand(Keyword.OPT_OUT)),
        ("Stop ", KeywordCommand(Keyword.OPT_OUT)),
        ("STOPALL", KeywordCommand(Keyword.OPT_OUT)),
        ("unsubscribe", KeywordCommand(Keyword.OPT_OUT)),
        ("Cancel", KeywordCommand(Keyword.OPT_OUT)),
        ("end", KeywordCommand(Keyword.OPT_OUT)),
        ("QUIT", KeywordCommand(Keyword.OPT_OUT)),
        ("revoke", KeywordCommand(Keyword.OPT_OUT)),
        ("OptOut", KeywordCommand(Keyword.OPT_OUT)),
        ("help", KeywordCommand(Keyword.HELP)),
        ("  INFO\n", KeywordCommand(Keyword.HELP)),
        # Not the whole message: words for the agents.
        ("stop it", Text("stop it")),
        ("yes 1234567", Text("yes 1234567")),
        ("please help", Text("please help")),
        ("1234567", Text("1234567")),  # a report number alone is not a confirmation
        ("11234567", Text("11234567")),
        ("sí", Text("sí")),
        ("1 abc", Text("1 abc")),
        ("1 12", Text("1 12")),
        ("1 911", Text("1 911")),
        ("2", Text("2")),
        ("👍", Text("👍")),
        ("1 👍", Text("1 👍")),
        ("1👍", Text("1👍")),
        ("stop 🙏", Text("stop 🙏")),
        ("", Text("")),
    ],
)
def test_parse_command(body: str, expected: commands.Command) -> None:
    assert parse_command(body) == expected


@pytest.mark.parametrize(
    ("opt_out_type", "body", "expected"),
    [
        ("STOP", "arret", KeywordCommand(Keyword.OPT_OUT)),  # an Advanced Opt-Out custom word
        ("START", "whatever", KeywordCommand(Keyword.OPT_IN)),
        ("HELP", "aide", KeywordCommand(Keyword.HELP)),
        ("", "1", ConfirmLatest()),
        ("bogus", "1", ConfirmLatest()),
    ],
)
def test_twilios_opt_out_type_wins(
    opt_out_type: str, body: str, expected: commands.Command
) -> None:
    assert parse_command(body, opt_out_type) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("sí", "es"),
        ("Hola, hay un chico con una pistola en la escuela", "es"),
        ("mañana va a pasar algo en el colegio, tengo miedo", "es"),
        ("There is a kid with a gun at school", "en"),
        ("someone said they will bring a knife tomorrow", "en"),
        ("ok", "en"),
        ("1234567", "en"),
        ("café", "en"),
        ("👍", "en"),
        ("", "en"),
    ],
)
def test_guess_language(text: str, language: str) -> None:
    assert guess_language(text) == language


def test_clean_body_keeps_the_words_and_drops_control_characters() -> None:
    assert clean_body("  he has\x00 a gun\r\nroom 12\x07\t ok \x1b[2J ") == (
        "he has  a gun\nroom 12 \t ok  [2J"
    )
    assert clean_body("\ud800 lone surrogate") == "? lone surrogate"
    long = "word " * 4000
    assert clean_body(long) == long.strip()


def test_parse_media_keeps_well_formed_urls_only() -> None:
    params = {
        "NumMedia": "lots",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/JPEG",
        "MediaUrl1": "javascript:alert(1)",
        "MediaUrl2": "https://example.org/x.png",
        "MediaContentType2": "<script>",
    }
    assert parse_media(params) == (
        Media(params["MediaUrl0"], "image/jpeg"),
        Media("https://example.org/x.png", None),
    )


def test_replies_carry_the_safety_lines() -> None:
    for language in ("en", "es", "fr"):
        for text in (
            commands.new_tip_reply("1234567", "4821", language),
            commands.added_reply("1234567", language),
            commands.empty_reply(language),
        ):
            assert "911" in text
            assert "988" in text
            assert len(text) <= 1600
    assert "Llame" in commands.added_reply("1234567", "es")
    assert "PIN" not in commands.new_tip_reply("1234567", None, "en")
    help_reply = commands.help_reply()
    assert "911" in help_reply
    assert "988" in help_reply
    assert "anonymous" in help_reply
    assert "text 1" in help_reply


# Through the webhook -----------------------------------------------------------------------------

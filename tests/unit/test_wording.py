"""The wording catalogue: every language complete, every key used, placeholders the code fills,
English-only areas declared and enforced, and a checker that finds each kind of problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hotline.wording import (
    AREAS,
    ENGLISH_ONLY,
    LANGUAGE_MENU,
    LANGUAGES,
    REPORTER_LANGUAGES,
    AlertCallKey,
    EmailKey,
    PromptKey,
    SmsContactKey,
    SmsKey,
    WordingError,
    all_catalogues,
    catalogue,
    staff_catalogue,
    staff_text,
)
from hotline.wording import check as wording_check
from hotline.wording.catalogue import check_language, placeholders_of, read_source

REPO = Path(__file__).resolve().parents[2]


def test_every_language_is_complete_and_every_key_is_used() -> None:
    reports = wording_check.check_all()
    assert {r.code for r in reports} == set(LANGUAGES)
    listing = {
        r.code: {"missing": r.missing, "unused": r.unused, "placeholders": r.placeholders}
        for r in reports
    }
    assert all(not any(found.values()) for found in listing.values()), listing
    assert all(not r.other for r in reports), {r.code: r.other for r in reports}
    assert wording_check.stray_files() == []


def test_reporter_areas_exist_in_every_reporter_language_the_others_are_english_only() -> None:
    assert set(REPORTER_LANGUAGES) == set(LANGUAGE_MENU.values()) >= {"en", "es"}
    offered = {a.table for a in AREAS if a.languages == REPORTER_LANGUAGES}
    assert offered == {"ivr", "sms"}
    assert all(a.languages == ENGLISH_ONLY for a in AREAS if a.table not in offered)
    for cat in all_catalogues():
        assert set(cat.texts) == {a.table for a in AREAS if cat.code in a.languages}


def test_an_english_only_area_is_refused_in_another_language_not_replaced_by_english() -> None:
    with pytest.raises(WordingError, match=r"\[alert_call\] is declared for en only"):
        catalogue("es").text(AlertCallKey.FALLBACK)
    with pytest.raises(WordingError, match=r"\[sms_contact\]"):
        catalogue("es").text(SmsContactKey.CONFIRMED, report_number="1234567")
    # A reporter area must be asked for in a language: staff_text does not guess one.
    with pytest.raises(WordingError, match=r"\[sms\] is offered in en, es"):
        staff_text(SmsKey.HELP)
    assert staff_text(AlertCallKey.FALLBACK) == catalogue("en").text(AlertCallKey.FALLBACK)


def test_a_lookup_must_fill_exactly_the_keys_placeholders() -> None:
    en = catalogue("en")
    assert en.text(PromptKey.READBACK, report_number="1, 2", pin="3, 4") == (
        "Your report number is 1, 2. Your PIN is 3, 4."
    )
    with pytest.raises(WordingError, match="readback is filled with"):
        en.text(PromptKey.READBACK, report_number="1, 2")
    with pytest.raises(WordingError, match="greeting is filled with"):
        en.text(PromptKey.GREETING, school="Bravo")


def test_voice_settings_are_the_catalogues() -> None:
    from dispatcher.alert_routes import SAY

    en, es = catalogue("en"), catalogue("es")
    assert (es.say_language, es.voice, es.speech_language) == (
        "es-US",
        "Polly.Lupe-Neural",
        "es-US",
    )
    assert "no sé" in es.dont_know
    assert "i don't know" in en.dont_know
    # Alert calls are said in the voice of their wording's language.
    assert SAY == staff_catalogue().say_options() == {"language": "en-US", "voice": en.voice}


# The checker finds each kind of problem -------------------------------------------------------


def _spanish_with(*edits: tuple[str, str]) -> str:
    source = read_source("es")
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new, 1)
    return source


def test_the_checker_lists_missing_unknown_and_mismatched_keys() -> None:
    source = _spanish_with(
        ('goodbye = "', 'farewell = "'),
        ("Su PIN es {pin}.", "Su PIN es {clave}."),
        ("Mensaje {number}: {text}", "Mensaje {number}: {text} {{ok}}"),
        ('empty = "Su mensaje', 'empty = "{0} Su mensaje'),
        ("Para español, oprima {digit}.", "Para español, oprima {digit"),
    )
    report, loaded = check_language("es", source)
    assert loaded is None
    assert report.missing == ("[ivr] goodbye",)
    assert report.unused == ("[ivr] farewell (no PromptKey has it)",)
    assert (
        "[ivr] readback: uses {clave}, {report_number}; the code fills {pin}, {report_number}"
        in (report.placeholders)
    )
    assert any(p.startswith("[ivr] language_option: ") for p in report.placeholders)
    assert "[sms] empty: {0} is not a plain {name} placeholder" in report.placeholders
    # Doubled braces are literal braces, not placeholders.
    assert not any("message_item" in p for p in report.placeholders)
    with pytest.raises(WordingError, match="missing: \\[ivr\\] goodbye"):
        _load_broken(source)


def _load_broken(source: str) -> None:
    report, loaded = check_language("es", source)
    if loaded is None:
        raise WordingError("\n".join(report.problems))


def test_the_checker_refuses_an_english_only_area_in_spanish_and_a_missing_area() -> None:
    source = read_source("es").split("\n[sms]\n")[0]
    source += '\n[email]\nfooter = "No reenvíe este correo."\n[voice_mail]\nx = "y"\n'
    report, loaded = check_language("es", source)
    assert loaded is None
    assert "[sms] safety" in report.missing
    assert len(report.missing) == len(SmsKey)
    assert any(o.startswith("[sms] is missing") for o in report.other)
    assert any(o.startswith("[email] is declared for en only") for o in report.other)
    assert any(o.startswith("[voice_mail]: not an area") for o in report.other)


def test_the_checker_needs_the_voice_settings_and_valid_toml() -> None:
    source = _spanish_with(
        ('voice = "Polly.Lupe-Neural"\n', ""), ("dont_know = [", "dont_know = [1, ")
    )
    report, _ = check_language("es", source)
    assert "[voice] voice is required (a non-empty string)" in report.other
    assert "[voice] dont_know is a list of phrases in quotes" in report.other
    report, loaded = check_language("es", 'greeting = "unterminated\n')
    assert loaded is None
    assert report.other[0].startswith("not valid TOML")


def test_placeholders_are_plain_names() -> None:
    assert placeholders_of("Report {report_number}, {{literal}}") == (
        frozenset({"report_number"}),
        [],
    )
    for bad in ("{}", "{0}", "{a.b}", "{a[0]}", "{a!r}", "{a:>5}"):
        assert placeholders_of(bad)[1], bad
    assert "literal brace" in placeholders_of("{oops")[1][0]


def test_a_key_no_code_uses_is_reported_in_each_language_that_has_it(tmp_path: Path) -> None:
    # The application's source without sms/commands.py: the SMS replies' keys are left behind.
    sources = [p for p in wording_check.package_sources() if p.name != "commands.py"]
    reports = {r.code: r for r in wording_check.check_all(sources)}
    for code in ("en", "es"):
        assert "[sms] help (SmsKey.HELP: no code uses it)" in reports[code].unused
    assert "[sms_contact] confirmed (SmsContactKey.CONFIRMED: no code uses it)" in (
        reports["en"].unused
    )
    assert not any("sms_contact" in u for u in reports["es"].unused)
    # One reference, spelled as the code spells keys, is a use.
    used = tmp_path / "uses.py"
    used.write_text(
        "from hotline import wording\nx = EmailKey.FOOTER\ny = wording.SmsKey.HELP\n",
        encoding="utf-8",
    )
    unused = wording_check.unused_members(wording_check.key_references([used]))
    assert EmailKey.FOOTER not in unused
    assert SmsKey.HELP not in unused
    assert EmailKey.SUBJECT_ALERT in unused
    assert PromptKey.GREETING in unused


def test_the_source_scan_sees_the_application_and_not_the_wording_package() -> None:
    sources = wording_check.package_sources()
    names = {p.relative_to(REPO).as_posix() for p in sources}
    assert {"sms/commands.py", "dispatcher/alert_routes.py", "ivr_flows/flow.py"} <= names
    assert not any(n.startswith("hotline/wording/") for n in names)


def test_the_operators_check_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.wording"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"{code}.toml: ok" for code in LANGUAGES]
    broken = _spanish_with(("Su PIN es {pin}.", "Su PIN es."))
    monkeypatch.setattr(
        wording_check, "read_source", lambda code: broken if code == "es" else read_source(code)
    )
    assert wording_check.main() == 1
    out = capsys.readouterr().out
    assert "en.toml: ok" in out
    assert (
        "es.toml:\n  placeholders: [ivr] readback: uses {report_number}; the code fills {pin}, "
        "{report_number}"
    ) in out

"""The wording catalogue: every language complete, every key used, placeholders the code fills,
and a checker that finds each kind of problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hotline.wording import (
    AREAS,
    LANGUAGE_MENU,
    LANGUAGES,
    REPORTER_LANGUAGES,
    PromptKey,
    WordingError,
    all_catalogues,
    catalogue,
)
from hotline.wording import check as wording_check
from hotline.wording.catalogue import check_language, placeholders_of, read_source

REPO = Path(__file__).resolve().parent.parent


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


def test_reporter_areas_exist_in_every_reporter_language() -> None:
    assert set(REPORTER_LANGUAGES) == set(LANGUAGE_MENU.values()) >= {"en", "es"}
    assert {a.table for a in AREAS if a.languages == REPORTER_LANGUAGES} == {"ivr"}
    for cat in all_catalogues():
        assert set(cat.texts) == {a.table for a in AREAS if cat.code in a.languages}


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
    en, es = catalogue("en"), catalogue("es")
    assert (es.say_language, es.voice, es.speech_language) == (
        "es-US",
        "Polly.Lupe-Neural",
        "es-US",
    )
    assert (en.say_language, en.voice) == ("en-US", "Polly.Joanna-Neural")
    assert "no sé" in es.dont_know and "i don't know" in en.dont_know


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
        ('messages_none = "', 'messages_none = "{0} '),
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
    assert "[ivr] messages_none: {0} is not a plain {name} placeholder" in report.placeholders
    # Doubled braces are literal braces, not placeholders.
    assert not any("message_item" in p for p in report.placeholders)
    with pytest.raises(WordingError, match="missing: \\[ivr\\] goodbye"):
        _load_broken(source)


def _load_broken(source: str) -> None:
    report, loaded = check_language("es", source)
    if loaded is None:
        raise WordingError("\n".join(report.problems))


def test_the_checker_refuses_a_missing_area_and_an_unknown_table() -> None:
    source = read_source("es").split("\n[ivr]\n")[0]
    source += '\n[voice_mail]\nx = "y"\n'
    report, loaded = check_language("es", source)
    assert loaded is None
    assert "[ivr] greeting" in report.missing and len(report.missing) == len(PromptKey)
    assert any(o.startswith("[ivr] is missing") for o in report.other)
    assert any(o.startswith("[voice_mail]: not an area") for o in report.other)


def test_the_checker_needs_the_voice_settings_and_valid_toml() -> None:
    source = _spanish_with(
        ('voice = "Polly.Lupe-Neural"\n', ""), ("dont_know = [", "dont_know = [1, ")
    )
    report, _ = check_language("es", source)
    assert "[voice] voice is required (a non-empty string)" in report.other
    assert "[voice] dont_know is a list of phrases in quotes" in report.other
    report, loaded = check_language("es", 'greeting = "unterminated\n')
    assert loaded is None and report.other[0].startswith("not valid TOML")


def test_placeholders_are_plain_names() -> None:
    assert placeholders_of("Report {report_number}, {{literal}}") == (
        frozenset({"report_number"}),
        [],
    )
    for bad in ("{}", "{0}", "{a.b}", "{a[0]}", "{a!r}", "{a:>5}"):
        assert placeholders_of(bad)[1], bad
    assert "literal brace" in placeholders_of("{oops")[1][0]


def test_a_key_no_code_uses_is_reported_in_each_language_that_has_it(tmp_path: Path) -> None:
    # The application's source without the menu's flow: most prompts are left behind.
    sources = [p for p in wording_check.package_sources() if p.name != "flow.py"]
    reports = {r.code: r for r in wording_check.check_all(sources)}
    for code in ("en", "es"):
        assert "[ivr] greeting (PromptKey.GREETING: no code uses it)" in reports[code].unused
    # One reference, spelled as the code spells keys, is a use.
    used = tmp_path / "uses.py"
    used.write_text(
        "from hotline import wording\nx = PromptKey.GREETING\ny = wording.PromptKey.GOODBYE\n",
        encoding="utf-8",
    )
    unused = wording_check.unused_members(wording_check.key_references([used]))
    assert PromptKey.GREETING not in unused and PromptKey.GOODBYE not in unused
    assert PromptKey.READBACK in unused


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

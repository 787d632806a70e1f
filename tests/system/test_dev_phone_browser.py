"""The dev phone: its JSON API (Flask test client) and the page in a real headless Chromium.

The API tests drive a simulator whose webhooks go into the same app, to a small voice menu
defined here (``/test-ivr/...``, signature checked), so they do not depend on the real voice
menu. The incoming-call tests use the real thing instead: a Critical tip for the sample
directory's Lakeview High School, the dispatcher placing its alert calls through the app's
telephony port (the simulator), and the real alert call's webhooks. The browser tests serve the
app over real HTTP, as ``make run`` does.
"""

from __future__ import annotations

import base64
import io
import re
import wave
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from hotline.dev import phone as dev_phone
from hotline.models import (
    MessageMedia,
    Tip,
)
from hotline.services import hotline
from hotline.telephony.ports import SmsRequest, TelephonyError
from sms.media import open_media
from tests.support.dev_phone import (
    API,
    ASSISTANT,
    CALLER,
    CHROMIUM,
    CHROMIUM_ARGS,
    HOLD_TWIML,
    PRINCIPAL,
    SCREENSHOT_DIR,
    Served,
    max_seq,
    open_phone,
    place,
    press_keys,
    read_back,
    say_lines,
    stub_calls,
    wait_listening,
)
from tests.support.waiting import wait_until

# --- a small voice menu the API tests call through the simulator --------------------------------


# --- the API ------------------------------------------------------------------------------------


# --- incoming calls: the alert calls the app places ----------------------------------------------


# --- in a real browser --------------------------------------------------------------------------


def test_browser_dials_the_hotline_and_shows_what_it_says(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve()
    open_phone(page, served)
    caller = page.get_by_label("Your number (caller ID)")
    expect(caller).to_have_value(CALLER)
    expect(page.get_by_role("button", name="Hang up")).to_be_disabled()
    page.get_by_role("button", name="Call the hotline").click()

    # Whatever the voice menu does (or an application error while it is missing), the caller
    # sees it: a spoken line with its language, or an error line.
    first = page.locator("#transcript li[data-kind='say'], #transcript li[data-kind='error']").first
    expect(first).to_be_visible()
    if page.locator("#transcript li[data-kind='error']").count():
        expect(page.locator("#transcript li.error").first).to_contain_text("Application error")
        expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    else:
        tag = page.locator("#transcript li[data-kind='say'] .lang").first.inner_text()
        assert re.fullmatch(r"[a-z]{2}-[A-Z]{2}", tag), tag
        hang_up = page.get_by_role("button", name="Hang up")
        expect(hang_up).to_be_enabled()
        hang_up.click()
        expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.locator("#calls tbody tr")).to_have_count(1)
    expect(page.locator("#calls tbody tr").first).to_contain_text(f"{CALLER} called the hotline")
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone.png"), full_page=True)


def test_browser_keypad_speech_recording_and_errors(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True)
    open_phone(page, served)
    caller = page.get_by_label("Your number (caller ID)")
    caller.fill("+15555550188")  # play another caller
    caller.press("Enter")  # Enter in the field dials

    spanish = page.locator("#transcript li[data-kind='say']", has_text="Marque uno")
    expect(spanish).to_be_visible()
    expect(spanish.locator(".lang")).to_have_text("es-US")
    assert spanish.locator(".text").get_attribute("lang") == "es-US"
    expect(page.locator("#status")).to_have_text(re.compile("listening for keypad or speech"))
    assert stub_calls(served.app)[0][1]["From"] == "+15555550188"

    # A recording while nothing records: the simulator's refusal is shown, the call goes on.
    page.get_by_label("What you say after the beep").fill("too early")
    page.get_by_role("button", name="Send recording, then #").click()
    expect(page.get_by_role("alert")).to_contain_text("no <Record> is listening")

    # A reloaded page picks the live call up where it was.
    page.reload()
    page.wait_for_selector("#devphone[data-ready='true']")
    expect(page.locator("#transcript li[data-kind='say']", has_text="Marque uno")).to_be_visible()
    expect(page.locator("#status")).to_have_text(re.compile("listening for keypad or speech"))
    expect(page.locator("#calls tbody tr")).to_have_count(1)

    # Keys typed on the keyboard outside the text fields reach the keypad.
    before = max_seq(page)
    page.locator("#transcript-heading").focus()
    page.keyboard.press("1")
    expect(page.locator("#transcript li[data-kind='dtmf']")).to_contain_text("pressed 1")
    wait_listening(page, before)
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    expect(page.get_by_role("alert")).to_be_hidden()
    page.get_by_label("What you say after the beep").fill("A fight is planned at lunch.")
    page.get_by_role("button", name="Send recording, then #").click()
    expect(page.locator("#transcript li[data-kind='recording']")).to_contain_text(
        "A fight is planned at lunch."
    )
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
        "Got your recording"
    )
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.get_by_role("button", name="Call the hotline")).to_be_enabled()

    # Second call: speech, then the hang-up button.
    page.get_by_role("button", name="Call the hotline").click()
    expect(page.locator("#transcript li[data-kind='say']", has_text="Marque uno")).to_be_visible()
    expect(page.locator("#transcript li")).not_to_contain_text(["Got your recording"])
    page.get_by_label("What you say when the hotline listens for speech").fill("Lakeview High")
    page.get_by_role("button", name="Say it").click()
    expect(page.locator("#transcript li[data-kind='speech']")).to_contain_text("Lakeview High")
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text("Press 9 to end")
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended \(completed"))
    expect(page.get_by_role("button", name="5")).to_be_disabled()
    expect(page.locator("#calls tbody tr")).to_have_count(2)
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-keypad.png"), full_page=True)


def test_browser_records_with_the_microphone(browser: Any, serve: Callable[..., Served]) -> None:
    """MediaRecorder on Chromium's fake microphone (a beep), converted to a WAV in the page."""
    from playwright.sync_api import expect

    served = serve(stub=True)
    mic_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    try:
        context = mic_browser.new_context()
        context.grant_permissions(["microphone"], origin=served.url)
        page = context.new_page()
        page.set_default_timeout(20_000)
        open_phone(page, served)
        page.get_by_role("button", name="Call the hotline").click()
        expect(page.locator("#status")).to_have_text(re.compile("listening"))
        page.get_by_role("button", name="1").click()
        expect(page.locator("#status")).to_have_text(re.compile("recording"))
        mic = page.get_by_role("button", name="Record with microphone")
        mic.click()
        stop = page.get_by_role("button", name="Stop and send recording")
        expect(stop).to_have_attribute("aria-pressed", "true")
        page.wait_for_timeout(1500)
        stop.click()
        expect(page.locator("#transcript li[data-kind='recording']")).to_contain_text(
            "bytes of audio"
        )
        expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
            "Got your recording"
        )
        path, params = stub_calls(served.app)[-1]
        assert path == "/test-ivr/recorded"
        assert int(params["RecordingDuration"]) >= 1
        sim = hotline(served.app).simulator
        assert sim is not None
        (recording,) = sim.recordings()
        audio = sim.fetch_media(recording.url).content
        with wave.open(io.BytesIO(audio)) as wav:
            assert wav.getframerate() == 8000
            assert wav.getnchannels() == 1
            assert wav.getnframes() >= 8000
        context.close()
    finally:
        mic_browser.close()


def test_browser_makes_a_report_and_follows_it_up(page: Any, serve: Callable[..., Served]) -> None:
    from playwright.sync_api import expect

    served = serve(sample=True)
    assert any(r.rule == "/twilio/voice" for r in served.app.url_map.iter_rules())
    open_phone(page, served)
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    greeting = " ".join(say_lines(page))
    assert re.search(r"9[\s,]*1[\s,]*1", greeting)
    assert re.search(r"9[\s,]*8[\s,]*8", greeting)
    expect(page.locator("#transcript li[data-kind='say'] .lang").first).to_have_text("en-US")

    press_keys(page, "1")  # English
    press_keys(page, "1")  # a new report
    press_keys(page, "3")  # bullying
    press_keys(page, "1101#")  # Lakeview High School
    assert "Lakeview High School" in " ".join(say_lines(page)[-3:])
    press_keys(page, "1")  # that is right
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    page.get_by_label("What you say after the beep").fill(
        "Kids keep pushing a boy into the lockers before first period."
    )
    page.get_by_role("button", name="Send recording, then #").click()
    number, pin = read_back(page)
    assert "application error" not in " ".join(say_lines(page)).lower()
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    with hotline(served.app).db.session() as session:
        tip = session.scalar(select(Tip).where(Tip.report_number == number))
        assert tip is not None

    # Follow up with the report number and PIN read off the page.
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    press_keys(page, "1")  # English
    press_keys(page, "2")  # follow up
    press_keys(page, number + "#")
    before = max_seq(page)
    press_keys(page, pin + "#")
    after_pin = page.locator("#transcript li[data-kind='say']").evaluate_all(
        "(lines, after) => lines.filter((l) => Number(l.dataset.seq) > after)"
        ".map((l) => l.querySelector('.text').textContent)",
        before,
    )
    assert after_pin, "the hotline said nothing after the PIN"
    joined = " ".join(after_pin).lower()
    assert "do not match" not in joined, after_pin
    assert "application error" not in joined, after_pin
    assert re.search(r"message|more information", joined), after_pin
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-report.png"), full_page=True)


def test_browser_answers_the_alert_call_of_its_own_report_and_reads_the_email(
    page: Any, serve: Callable[..., Served]
) -> None:
    """A Critical report made on the page's keypad: the dispatcher in the embedded worker calls
    the school's principal, whose call rings on the same page; answered, it reads the alert and
    takes the confirmation. The report's e-mails land in the E-mails panel."""
    from playwright.sync_api import expect

    served = serve(sample=True)
    open_phone(page, served)
    expect(page.locator("#no-incoming")).to_be_visible()
    expect(page.locator("#no-emails")).to_be_visible()
    page.get_by_role("button", name="Call the hotline").click()
    wait_listening(page, 0)
    press_keys(page, "1")  # English
    press_keys(page, "1")  # a new report
    press_keys(page, "1")  # a threat of violence, a weapon or a planned attack: Critical
    press_keys(page, "1101#")  # Lakeview High School
    press_keys(page, "1")  # that is right: the tip exists, the dispatcher sends it out
    expect(page.locator("#status")).to_have_text(re.compile("recording"))
    page.get_by_label("What you say after the beep").fill("A student showed a gun in the gym.")
    page.get_by_role("button", name="Send recording, then #").click()
    number, _ = read_back(page)

    # Ringing or answered cards are under #incoming; ended ones fold into #ended.
    card = page.locator("li.ring-card", has_text="Angela Brooks")
    expect(card.locator("h3")).to_have_text(
        f"Incoming call to Angela Brooks (Principal) ({PRINCIPAL}) from the hotline"
    )
    expect(card).to_contain_text("school contact, Lakeview High School")
    expect(card.locator(".ring-state")).to_contain_text("Ringing")
    assert card.get_attribute("data-state") == "ringing"
    for name in ("Answer", "Let voicemail answer", "Let it ring", "Decline"):
        expect(card.get_by_role("button", name=name, exact=True)).to_be_visible()
    # A second call at the same moment (as a parallel escalation places): it rings on its own.
    place(served.app, ASSISTANT, HOLD_TWIML)
    second = page.locator("li.ring-card", has_text="Daniel Kim")
    expect(second.locator(".ring-state")).to_contain_text("Ringing")

    card.get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("#transcript-call")).to_contain_text("Angela Brooks")
    alert = page.locator("#transcript li[data-kind='say']", has_text="critical safety report")
    expect(alert).to_contain_text("Lakeview High School")
    expect(alert).to_contain_text(", ".join(number))
    expect(card.locator(".ring-state")).to_contain_text("Connected: you answered")
    expect(second.locator(".ring-state")).to_contain_text("Ringing")
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-incoming.png"), full_page=True)

    # The second call answered moves the keypad to it; the switch brings it back.
    second.get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("#transcript li[data-kind='say']").first).to_have_text(
        re.compile("Please hold")
    )
    switch = page.get_by_label("The keypad and transcript follow")
    expect(switch).to_be_visible()
    expect(card.get_by_role("button", name="Use the keypad on this call")).to_be_visible()
    switch.select_option(card.get_attribute("data-sid"))
    expect(alert).to_be_visible()
    page.locator("#keypad button[data-key='1']").click()
    expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text(
        f"Your confirmation of report {', '.join(number)} is recorded"
    )
    expect(card.locator(".ring-state")).to_contain_text("Call ended: completed")
    expect(card.get_by_role("button", name="Dismiss")).to_be_visible()
    second.get_by_role("button", name="Hang up").click()
    expect(second.locator(".ring-state")).to_contain_text("Call ended: completed")
    # Not the keypad's call: folded away under "Ended calls".
    expect(page.locator("#ended li.ring-card", has_text="Daniel Kim")).to_be_hidden()

    # The report's e-mails: the CRITICAL one to each point of contact (then, as the recording
    # came in, an update).
    critical = page.locator(".mail-subject", has_text=re.compile(rf"^\[CRITICAL\] .*{number}"))
    mail = page.locator("#emails button", has=critical, has_text="a.brooks@lakeview.example.org")
    expect(mail).to_be_visible()
    mail.click()
    view = page.locator("#mail-view")
    expect(view).to_be_visible()
    expect(page.locator("#mail-subject")).to_contain_text(f"[CRITICAL] Safety tip {number}")
    expect(page.locator("#mail-text")).to_contain_text(number)
    page.get_by_text("HTML version").click()
    html = page.frame_locator("#mail-html")
    expect(html.locator("body")).to_contain_text(number)
    assert page.locator("#mail-html").get_attribute("sandbox") == ""
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-emails.png"), full_page=True)
    page.get_by_role("button", name="Close").click()
    expect(view).to_be_hidden()


# --- texts, the patient caller, a phone-sized screen --------------------------------------------

#: The smallest PNG there is (1x1, transparent).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def _send_text(page: Any, body: str) -> None:
    """Type a text in the Texts pane and send it; returns once it is in the conversation."""
    from playwright.sync_api import expect

    page.get_by_label("Message").fill(body)
    page.get_by_role("button", name="Send text").click()
    mine = page.locator("#thread li[data-sender='handset'] .body", has_text=body)
    expect(mine.last).to_be_visible()


def test_browser_texts_the_hotline_and_sees_the_reply_and_later_texts_with_their_state(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(sample=True)
    open_phone(page, served)
    page.wait_for_selector("#devphone[data-texts-ready='true']")
    expect(page.get_by_label("Text from (your number)")).to_have_value(CALLER)
    _send_text(page, "A boy has a knife at Lakeview High")

    reply = page.locator("#thread li[data-sender='hotline']").first
    expect(reply).to_contain_text("Report ")
    with hotline(served.app).db.session() as session:
        number = session.scalars(select(Tip.report_number)).one()
    expect(reply.locator(".body")).to_contain_text(f"Report {number}, PIN ")
    expect(reply.locator(".state")).to_have_text("delivered")
    expect(reply).to_contain_text("its answer to your text")

    # A picture: the bytes go to the network's media, which hands them to the hotline.
    page.get_by_label("Pictures (optional)").set_input_files(
        [{"name": "hallway.png", "mimeType": "image/png", "buffer": PNG}]
    )
    expect(page.locator("#text-pictures-chosen")).to_contain_text("1 picture")
    page.get_by_role("button", name="Send text").click()
    picture = page.locator("#thread li[data-sender='handset'] img.picture")
    expect(picture).to_have_count(1)
    page.wait_for_function("() => document.querySelector('#thread img.picture').naturalWidth > 0")
    sim = hotline(served.app).simulator
    assert sim is not None
    sid = page.locator("#thread li[data-sender='handset']").last.get_attribute("data-sid")
    (webhook,) = sim.deliveries(message_sid=sid)
    assert webhook.param("MediaUrl0") is not None
    # The hotline's worker fetched the picture from the network, kept it and deleted it there.
    with served.app.app_context():

        def kept() -> bytes | None:
            with hotline(served.app).db.session() as session:
                row = session.scalars(
                    select(MessageMedia).where(MessageMedia.message_sid == sid)
                ).one_or_none()
                opened = None if row is None else open_media(session, row.id)
                return None if opened is None else opened[0]

        assert wait_until("the picture kept by the hotline", kept) == PNG

    # A later text from the hotline (an agent's reply takes the REST API): it shows up by
    # itself with its state, and a phone switched off gets it undelivered.
    services = hotline(served.app)
    services.telephony.send_sms(
        SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="Are you safe now?")
    )
    later = page.locator("#thread li[data-sender='hotline']", has_text="Are you safe now?")
    expect(later.locator(".state")).to_have_text("delivered")
    expect(later).to_contain_text("sent by the hotline later")
    page.get_by_role("switch", name="Phone on").uncheck()
    expect(page.get_by_role("switch", name="Phone on")).not_to_be_checked()
    services.telephony.send_sms(
        SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="Hello?")
    )
    lost = page.locator("#thread li[data-sender='hotline']", has_text="Hello?")
    expect(lost).to_have_attribute("data-status", "undelivered")
    expect(lost.locator(".state")).to_contain_text("30003")
    page.screenshot(path=str(SCREENSHOT_DIR / "devphone-texts.png"), full_page=True)


def test_browser_stop_then_a_text_gets_no_reply_until_start(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(sample=True)
    open_phone(page, served)
    page.wait_for_selector("#devphone[data-texts-ready='true']")
    _send_text(page, "STOP")
    network = page.locator("#thread li[data-sender='network']")
    expect(network.first).to_contain_text("You have successfully been unsubscribed")
    expect(page.locator("#optout-note")).to_be_visible()
    expect(page.locator("#thread li[data-sender='handset']").first).to_contain_text(
        "the network unsubscribed this phone"
    )

    _send_text(page, "Is anyone reading this?")
    # The conversation as the send answered it: nothing came back after the text.
    last = page.locator("#thread li").last
    expect(last).to_contain_text("Is anyone reading this?")
    services = hotline(served.app)
    with pytest.raises(TelephonyError):
        services.telephony.send_sms(
            SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="We are here.")
        )
    blocked = page.locator("#thread li[data-sender='hotline']", has_text="We are here.")
    expect(blocked).to_have_attribute("data-status", "failed")
    expect(blocked.locator(".state")).to_contain_text("blocked")
    expect(blocked.locator(".state")).to_contain_text("21610")

    _send_text(page, "START")
    expect(network.last).to_contain_text("re-subscribed")
    expect(page.locator("#optout-note")).to_be_hidden()
    services.telephony.send_sms(
        SmsRequest(to=CALLER, from_=services.settings.hotline_number, body="Welcome back.")
    )
    back = page.locator("#thread li[data-sender='hotline']", has_text="Welcome back.")
    expect(back.locator(".state")).to_have_text("delivered")


def test_browser_on_a_phone_sized_screen_keypad_and_transcript_share_the_view(
    browser: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True, sample=True)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        open_phone(page, served)
        page.wait_for_selector("#devphone[data-texts-ready='true']")
        width = "document.documentElement.scrollWidth"
        assert page.evaluate(width) <= 390
        page.get_by_role("button", name="Call the hotline").click()
        expect(page.locator("#transcript li[data-kind='say']").last).to_contain_text("Marque uno")
        expect(page.locator("#keypad")).to_be_in_viewport()
        expect(page.locator("#transcript")).to_be_in_viewport()
        expect(page.locator("#status")).to_be_in_viewport()
        press_keys(page, "1")
        expect(page.locator("#status")).to_have_text(re.compile("recording"))
        expect(page.locator("#keypad")).to_be_in_viewport()
        expect(page.locator("#transcript li").last).to_be_in_viewport()

        # Everything else on the page at that width: ringing cards, texts, the call log.
        place(served.app, PRINCIPAL, HOLD_TWIML)
        expect(page.locator("#incoming li.ring-card")).to_have_count(1)
        _send_text(page, "A fight is planned at Lakeview High after school")
        expect(page.locator("#thread li[data-sender='hotline']").first).to_be_visible()
        assert page.evaluate(width) <= 390
        page.screenshot(path=str(SCREENSHOT_DIR / "devphone-phone.png"), full_page=True)
    finally:
        context.close()


def test_browser_ringing_calls_come_first_and_in_view_and_ended_calls_fold_away(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True, sample=True)
    open_phone(page, served)
    bar = page.locator("#ring-bar")
    first = place(served.app, ASSISTANT, HOLD_TWIML)
    first_card = page.locator(f"#incoming li[data-sid='{first}']")
    first_card.get_by_role("button", name="Answer", exact=True).click()
    expect(first_card).to_have_attribute("data-state", "connected")

    # Read down the page: a call that rings now is said at the top of the window.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    ringing = place(served.app, PRINCIPAL, HOLD_TWIML)
    card = page.locator(f"#incoming li[data-sid='{ringing}']")
    expect(bar).to_be_visible()
    expect(bar).to_be_in_viewport()
    expect(bar).to_contain_text("Angela Brooks")
    # Ringing cards first: the new one goes before the call already answered.
    order = page.locator("#incoming li.ring-card").evaluate_all(
        "(cards) => cards.map((c) => c.dataset.sid)"
    )
    assert order == [ringing, first]
    bar.get_by_role("button", name="Show the call").click()
    expect(card).to_be_in_viewport()
    expect(bar).to_be_hidden()

    # Declined, it folds into "Ended calls" (the keypad is on the other call).
    card.get_by_role("button", name="Decline").click()
    folded = page.locator("#ended-calls")
    expect(folded).to_be_visible()
    expect(folded.locator("summary")).to_have_text("Ended calls from the hotline (1)")
    expect(page.locator(f"#ended li[data-sid='{ringing}']")).to_be_hidden()
    expect(page.locator("#incoming li.ring-card")).to_have_count(1)
    folded.locator("summary").click()
    expect(page.locator(f"#ended li[data-sid='{ringing}'] .ring-state")).to_contain_text(
        "Call ended: busy (you declined)"
    )
    # The call on the keypad stays in place when it ends, folds once the keypad moves on.
    first_card.get_by_role("button", name="Hang up").click()
    expect(first_card.locator(".ring-state")).to_contain_text("Call ended: completed")
    expect(page.locator("#incoming li.ring-card")).to_have_count(1)
    page.get_by_role("button", name="Call the hotline").click()
    expect(page.locator("#incoming li.ring-card")).to_have_count(0)
    expect(folded.locator("summary")).to_have_text("Ended calls from the hotline (2)")
    expect(page.locator("#no-incoming")).to_be_visible()


def test_browser_patient_switch_lengthens_the_networks_timeouts(
    page: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True)
    open_phone(page, served)
    client = served.app.test_client()
    switch = page.get_by_role("switch", name="Patient caller")
    expect(switch).not_to_be_checked()
    assert client.get(f"{API}/state").get_json()["patience"]["patient"] is False
    switch.check()
    page.wait_for_function(
        "async (api) => (await (await fetch(api + '/state')).json()).patience.patient", arg=API
    )
    patience = client.get(f"{API}/state").get_json()["patience"]
    assert patience["multiplier"] == dev_phone.PATIENT_MULTIPLIER

    page.get_by_role("button", name="Call the hotline").click()
    expect(page.locator("#status")).to_have_text(re.compile("listening for keypad or speech"))
    sid = page.locator("#calls tbody tr").first.get_attribute("data-sid")
    call = client.get(f"{API}/calls/{sid}").get_json()["call"]
    assert call["listen_seconds"] == 60 * dev_phone.PATIENT_MULTIPLIER  # <Gather timeout="60">
    expect(page.locator("#wait-note")).to_contain_text("it waits 5 min, patient caller")
    expect(page.locator("#transcript li[data-kind='gather']")).to_contain_text(
        "it waits 5 min for you, 5 times its 60 s"
    )
    switch.uncheck()
    page.wait_for_function(
        "async (api) => !(await (await fetch(api + '/state')).json()).patience.patient", arg=API
    )
    page.get_by_role("button", name="Hang up").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"Call ended"))


def test_browser_transcript_in_plain_words_and_clock_times_with_their_zone(
    browser: Any, serve: Callable[..., Served]
) -> None:
    from playwright.sync_api import expect

    served = serve(stub=True, sample=True)
    # A browser far from the district: the page's times still follow the district's zone.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        open_phone(page, served)
        note = page.locator("#time-zone-note")
        expect(note).to_contain_text("America/Chicago")
        expect(note).to_contain_text("Lakeview Unified School District")
        expect(note).to_contain_text("first district in the directory")
        page.get_by_role("button", name="Call the hotline").click()
        expect(page.locator("#status")).to_have_text(re.compile("listening"))
        # "#" before any key is no answer at all: the stub's <Gather> has no fallback action.
        page.locator("#keypad button[data-key='#']").click()
        gave_up = page.locator("#transcript li[data-kind='gather']").last
        expect(gave_up).to_have_text("No answer: the call moves on.")
        expect(page.locator("#transcript li").last).to_have_text("Call ended (completed).")
        lines = " ".join(page.locator("#transcript li").all_inner_texts())
        assert "next verb" not in lines
        assert "<Hangup>" not in lines
        assert "The hotline hung up (it had nothing more to say)." in lines
        zone = r"(CST|CDT)"
        expect(page.locator("#calls tbody tr").first.locator("time")).to_have_text(
            re.compile(rf"^\d{{1,2}}:\d\d:\d\d [AP]M {zone}$")
        )
        expect(page.locator("#transcript-call")).to_contain_text(re.compile(zone))

        place(served.app, PRINCIPAL, HOLD_TWIML)
        card = page.locator("#incoming li.ring-card")
        expect(card.locator(".ring-state")).to_have_text(
            re.compile(rf"^Ringing… \(since \d{{1,2}}:\d\d:\d\d [AP]M {zone}\)$")
        )
    finally:
        context.close()

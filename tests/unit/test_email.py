"""E-mail: the port's checks, the SMTP adapter against real local SMTP servers, the development
outbox, the recording fake, and what notification e-mails say.

The SMTP adapter talks to an aiosmtpd server on 127.0.0.1 (a real SMTP implementation with AUTH,
STARTTLS and implicit TLS), and, where a server must misbehave at one exact step (a 421
greeting, silence before 354, a disconnect after the final dot), to a small scripted server on a
raw socket. Certificates for TLS are made here with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline.core.clock import ManualClock
from hotline.email import (
    EmailError,
    EmailErrorKind,
)
from hotline.email.dev import DevOutbox
from hotline.email.fake import FakeEmail
from hotline.email.smtp import SmtpEmailSender, default_sender
from hotline.email.tip_email import (
    SUMMARY_LIMIT,
    format_local_time,
    render_tip_email,
    shorten_summary,
)
from tests.support.email_servers import DASH, REPORTER_WORDS, SENDER, both, facts, message

# Servers ----------------------------------------------------------------------------------------


# TLS material -----------------------------------------------------------------------------------


# The port -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"to": ()}, "at least one recipient"),
        ({"to": "principal@lakeview.example.org"}, "not one string"),
        ({"to": ("principal@lakeview.example.org\r\nBcc: everyone@example.org",)}, "line break"),
        ({"to": ("a@example.org, b@example.org",)}, "exactly one mailbox"),
        ({"to": ("not an address",)}, "not an e-mail address"),
        ({"subject": "Tip\r\nBcc: everyone@example.org"}, "line break"),
        ({"subject": "Tip\nX-Injected: yes"}, "line break"),
        ({"subject": "Tip\u2028X-Injected: yes"}, "line break"),
        ({"reply_to": "agent@example.org\nBcc: x@example.org"}, "line break"),
        ({"headers": {"X-Note": "a\r\nBcc: x@example.org"}}, "line break"),
        ({"headers": {"Bcc": "x@example.org"}}, "set by the sender"),
        ({"headers": {"Message-ID": "<mine@example.org>"}}, "set by the sender"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
    ],
)
def test_a_message_refuses_missing_recipients_and_header_injection(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        message(**overrides)


def test_a_message_keeps_display_names_and_freezes_its_headers() -> None:
    msg = message(
        to=["Dr. Ana Ruiz <ana@lakeview.example.org>"],
        headers={"Auto-Submitted": "auto-generated"},
    )
    assert msg.to == ("Dr. Ana Ruiz <ana@lakeview.example.org>",)
    with pytest.raises(TypeError):
        msg.headers["X-Later"] = "no"  # type: ignore[index]


# SMTP URL and sender --------------------------------------------------------------------------


def test_smtp_url_parsing_decodes_credentials_and_picks_ports() -> None:
    sender = SmtpEmailSender(
        "smtp://alerts%40district.org:p%40ss%3Aw%2Frd%25@mail.example.org:587", sender=SENDER
    )
    assert (sender.host, sender.port, sender.implicit_tls) == ("mail.example.org", 587, False)
    assert (sender.username, sender._password) == ("alerts@district.org", "p@ss:w/rd%")
    assert "p@ss" not in repr(sender)
    assert "w%2Frd" not in repr(sender)
    assert SmtpEmailSender("smtps://u:p@mail.example.org", sender=SENDER).port == 465
    assert SmtpEmailSender("smtps://u:p@mail.example.org", sender=SENDER).implicit_tls
    assert SmtpEmailSender("smtp://relay.example.org", sender=SENDER).port == 25
    assert SmtpEmailSender("smtp://relay.example.org", sender=SENDER).username is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://mail.example.org", "must start with smtp://"),
        ("smtp://", "no host"),
        # a password in clear to a remote host
        ("smtp://u:p@mail.example.org:587?starttls=false", "would cross the network in clear"),
        ("smtp://mail.example.org?starttls=maybe", "starttls must be true, false or auto"),
        ("smtp://mail.example.org?tls=1", "unknown options: tls"),
        ("smtps://mail.example.org?starttls=false", "starttls does not apply"),
        ("smtp://user@mail.example.org", "user name without a password"),
        ("smtp://mail.example.org:99999", "invalid port"),
    ],
)
def test_bad_smtp_urls_are_refused_at_start(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SmtpEmailSender(url, sender=SENDER)


def test_a_sender_with_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        SmtpEmailSender("smtp://127.0.0.1:25", sender="hotline@example.org\r\nBcc: x@y.org")


def test_default_sender_comes_from_the_public_origin() -> None:
    assert default_sender("https://Hotline.Example.org") == "hotline@hotline.example.org"
    assert default_sender("https://hotline.example.org:8443/") == "hotline@hotline.example.org"
    assert default_sender("http://127.0.0.1:5000") == "hotline@localhost"
    assert default_sender("http://localhost:5000") == "hotline@localhost"
    assert default_sender("https://203.0.113.7") == "hotline@[203.0.113.7]"


# SMTP against a real server -------------------------------------------------------------------


# Development outbox ---------------------------------------------------------------------------


def test_the_dev_outbox_keeps_messages_for_the_dev_ui() -> None:
    clock = ManualClock()
    outbox = DevOutbox(sender="hotline@localhost", clock=clock)
    assert outbox.messages_since(0) == ([], 0)

    first = outbox.send(message(subject="one"))
    clock.advance(60)
    outbox.send(message(subject="two"))
    stored, cursor = outbox.messages_since(0)

    assert [s.message.subject for s in stored] == ["one", "two"]
    assert stored[0].message_id == first
    assert first.endswith("@localhost>")
    assert stored[1].sent_at == clock.now()
    assert outbox.get(first) is stored[0]
    assert outbox.messages_since(cursor) == ([], cursor)
    outbox.send(message(subject="three"))
    newer, cursor = outbox.messages_since(cursor)
    assert [s.message.subject for s in newer] == ["three"]
    assert cursor == 3


def test_the_dev_outbox_is_bounded_and_survives_a_restart_cursor() -> None:
    outbox = DevOutbox(capacity=3)
    for n in range(5):
        outbox.send(message(subject=f"m{n}"))
    stored, cursor = outbox.messages_since(0)
    assert [s.message.subject for s in stored] == ["m2", "m3", "m4"]
    assert cursor == 5
    assert len(outbox) == 3
    # A page that polled a previous process keeps a larger cursor: it sees everything again.
    assert len(DevOutbox().messages_since(1000)[0]) == 0
    fresh = DevOutbox()
    fresh.send(message())
    assert len(fresh.messages_since(1000)[0]) == 1
    outbox.clear()
    outbox.send(message(subject="after clear"))
    assert [s.message.subject for s in outbox.messages_since(cursor)[0]] == ["after clear"]


def test_the_dev_outbox_is_thread_safe() -> None:
    outbox = DevOutbox(capacity=1000)

    def work() -> None:
        for _ in range(100):
            outbox.send(message())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored, cursor = outbox.messages_since(0)
    assert cursor == 800
    assert sorted(s.seq for s in stored) == list(range(1, 801))
    assert len({s.message_id for s in stored}) == 800


# Recording fake -------------------------------------------------------------------------------


def test_the_fake_records_and_fails_on_demand() -> None:
    fake = FakeEmail()
    outage = EmailError(EmailErrorKind.RETRYABLE, "down")
    fake.fail_next(outage, times=2)

    for _ in range(2):
        with pytest.raises(EmailError) as caught:
            fake.send(message())
        assert caught.value is outage
    sent = fake.send(message())

    assert fake.messages == [message()]
    assert fake.message_ids == [sent]
    assert len(fake.attempts) == 3


def test_the_fake_fails_for_an_address_and_refuses_some() -> None:
    fake = FakeEmail()
    bounce = EmailError(
        EmailErrorKind.PERMANENT, "no such user", smtp_code=550, refused={"gone@x.org": 550}
    )
    fake.fail_for("Gone <GONE@x.org>", bounce)
    with pytest.raises(EmailError) as caught:
        fake.send(message(to=("gone@x.org",)))
    assert caught.value is bounce

    fake.refuse("full@x.org", code=450)
    sent = fake.send(message(to=("ok@x.org", "full@x.org")))
    assert sent.refused == ("full@x.org",)
    assert sent.refused_codes == {"full@x.org": 450}
    with pytest.raises(EmailError) as refused:
        fake.send(message(to=("full@x.org",)))
    assert refused.value.kind is EmailErrorKind.RETRYABLE
    assert refused.value.refused == ("full@x.org",)

    assert [m.to for m in fake.sent_to("OK@x.org")] == [("ok@x.org", "full@x.org")]
    fake.clear_failures()
    fake.send(message(to=("gone@x.org",)))
    assert len(fake.sent_to("gone@x.org")) == 1


# Notification content -------------------------------------------------------------------------


def test_an_alert_says_what_it_is_and_how_to_confirm() -> None:
    msg = render_tip_email(facts(), "principal@lakeview.example.org")

    assert msg.to == ("principal@lakeview.example.org",)
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview High School"
    assert msg.headers["Auto-Submitted"] == "auto-generated"
    text = msg.text
    assert "anonymous safety tip about Lakeview High School" in text
    assert "Report number: 4815162" in text
    assert "School: Lakeview High School" in text
    assert "Level: Critical" in text
    assert "20 minutes" in text
    assert "About: weapon" in text
    assert "Received: Tuesday, March 10, 2026 at 1:05 AM CDT" in text
    assert "https://hotline.example.org/portal/tips/4815162" in text
    assert "login required" in text
    assert 'press 1 when the hotline calls you, text "1 4815162" to +1 312-555-0100' in text
    assert (
        "or call +1 312-555-0100, choose your language, press 3 and key in the report number"
        in " ".join(text.split())
    )
    assert "the portal" in text
    assert msg.html is not None
    assert '<a href="https://hotline.example.org/portal/tips/4815162">' in msg.html
    assert "<strong>1 4815162</strong>" in msg.html


@pytest.mark.parametrize(
    ("level", "subject_tag", "line"),
    [
        ("standard", "[STANDARD]", "within 1 hour of business time"),
        ("other", "[OTHER]", "within 4 hours of business time"),
    ],
)
def test_each_level_says_its_deadline(level: str, subject_tag: str, line: str) -> None:
    msg = render_tip_email(facts(level=level, tip_type="bullying"), "p@x.org")
    assert msg.subject.startswith(f"{subject_tag} Safety tip 4815162")
    assert line in msg.text


def test_an_update_says_what_is_new() -> None:
    msg = render_tip_email(
        facts(purpose="update", level="standard", update_note="a new recording was added"),
        ("p@x.org",),
    )
    assert msg.subject == f"[UPDATE] [STANDARD] Safety tip 4815162 {DASH} Lakeview High School"
    assert "new information" in msg.text
    assert "a new recording was added" in msg.text


def test_an_escalation_says_nobody_confirmed() -> None:
    msg = render_tip_email(
        facts(
            purpose="escalation",
            escalation_note="Nobody at Lakeview High School answered within 20 minutes.",
        ),
        ["superintendent@lakeview.example.org"],
    )
    assert (
        msg.subject == f"[NOT CONFIRMED] [CRITICAL] Safety tip 4815162 {DASH} Lakeview High School"
    )
    assert "Nobody has confirmed receipt" in msg.text
    assert "answered within 20 minutes" in msg.text


def test_an_unknown_school() -> None:
    msg = render_tip_email(
        facts(school_name=None, district_name=None, tip_type=None, category="other"), "p@x.org"
    )
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} school unknown"
    assert "School: unknown" in msg.text
    assert "About: something else (as the reporter chose it; not classified yet)" in msg.text


def test_the_type_is_shown_in_plain_words() -> None:
    described = facts(tip_type="self_harm", type_description="threat of suicide or self-harm")
    assert "About: threat of suicide or self-harm" in render_tip_email(described, "p@x.org").text
    bare = facts(tip_type="staff_misconduct")
    assert "About: staff misconduct" in render_tip_email(bare, "p@x.org").text
    # The ZoneInfo the caller may already hold works as well as its name.
    zoned = facts(district_timezone=ZoneInfo("America/Chicago"))
    assert "1:05 AM CDT" in render_tip_email(zoned, "p@x.org").text


def test_no_summary_unless_the_district_opted_in() -> None:
    msg = render_tip_email(facts(), "p@x.org")
    for words in ("Jake", "gun", "locker room", "555-0199", "reporter said"):
        assert words not in both(msg)


def test_an_opted_in_summary_is_short_and_masks_numbers() -> None:
    msg = render_tip_email(facts(summary=REPORTER_WORDS), "p@x.org")
    assert 'What the reporter said (shortened): "Jake in 10th grade said' in msg.text
    assert msg.html is not None
    assert "<blockquote>Jake in 10th grade" in msg.html
    short = shorten_summary(REPORTER_WORDS)
    assert len(REPORTER_WORDS) > SUMMARY_LIMIT
    assert short.endswith("…")
    assert len(short) <= SUMMARY_LIMIT + 1
    assert short in msg.text
    assert "555-0199" not in both(msg)
    # Cut at a word boundary, and numbers are masked before the cut.
    assert shorten_summary("a " * 200).endswith("a…")
    assert shorten_summary("call 312 555 0199 now") == "call [phone] now"
    assert shorten_summary("  line one\n\nline two ") == "line one line two"


def test_school_names_are_escaped_in_html() -> None:
    msg = render_tip_email(
        facts(school_name="St. Mary's <Academy>", summary="<script>alert(1)</script> & more"),
        "p@x.org",
    )
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} St. Mary's <Academy>"
    assert "School: St. Mary's <Academy>" in msg.text
    assert msg.html is not None
    assert "St. Mary&#x27;s &lt;Academy&gt;" in msg.html
    assert "<Academy>" not in msg.html
    assert "<script>" not in msg.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in msg.html


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        # Spring forward in Chicago: 2 AM CST becomes 3 AM CDT on Sunday, March 8, 2026.
        (dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC), "Sunday, March 8, 2026 at 1:30 AM CST"),
        (dt.datetime(2026, 3, 8, 8, 30, tzinfo=dt.UTC), "Sunday, March 8, 2026 at 3:30 AM CDT"),
        # Fall back: 1:30 AM happens twice on Sunday, November 1, 2026.
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC), "Sunday, November 1, 2026 at 1:30 AM CDT"),
        (dt.datetime(2026, 11, 1, 7, 30, tzinfo=dt.UTC), "Sunday, November 1, 2026 at 1:30 AM CST"),
        (dt.datetime(2026, 7, 4, 17, 0, tzinfo=dt.UTC), "Saturday, July 4, 2026 at 12:00 PM CDT"),
    ],
)
def test_received_time_is_shown_in_the_district_time_across_dst(
    utc: dt.datetime, local: str
) -> None:
    assert format_local_time(utc, "America/Chicago") == local
    assert f"Received: {local}" in render_tip_email(facts(received_at=utc), "p@x.org").text


def test_facts_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        facts(received_at=dt.datetime(2026, 3, 10, 6, 5))  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(ValueError, match="not a valid TipLevel"):
        facts(level="urgent")
    with pytest.raises(ValueError, match="not a valid NotificationPurpose"):
        facts(purpose="reminder")
    with pytest.raises(ValueError, match="unknown time zone"):
        facts(district_timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="must be http"):
        facts(portal_url="javascript:alert(1)")
    with pytest.raises(ValueError, match="digits only"):
        facts(report_number="4815162; DROP")


def test_a_line_break_in_a_school_name_cannot_inject_headers() -> None:
    msg = render_tip_email(facts(school_name="Lakeview\r\nBcc: x@y.org"), "p@x.org")
    assert msg.subject == f"[CRITICAL] Safety tip 4815162 {DASH} Lakeview Bcc: x@y.org"

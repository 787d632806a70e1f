"""Pictures (MMS) texted to the hotline: rows made by the webhook, a job after the commit, the
fetch through the telephony port, the policy, the store, the provider's copy deleted, retries
with backoff, failures on the agents' feed, and nothing fetched twice or kept twice."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher import tasks
from hotline.background.embedded import EmbeddedWorker
from hotline.background.jobs import RecordingJobQueue
from hotline.core.clock import ManualClock
from hotline.core.tips import create_tip
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import (
    Alert,
    AlertKind,
    Channel,
    MediaContent,
    MediaState,
    MediaStoreKind,
    MessageMedia,
    Tip,
    TipEvent,
    TipEventKind,
    TipLevel,
)
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from hotline.telephony.ports import FetchedMedia, TelephonyError, TelephonyErrorKind
from sms import commands, media
from tests.support.dispatch_world import SCHOOL_HOURS, World
from tests.support.texting import STRANGER, driver, reply_of, session_of, sms, sms_tips, text

ACCOUNT = "AC" + "0" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"png" * 100


def media_url(message_sid: str, n: int) -> str:
    return (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{message_sid}/Media/"
        f"ME{n:032x}"
    )


def mms(world: World, body: str, *items: tuple[bytes, str]) -> tuple[dict[str, str], list[str]]:
    """An incoming text with ``items`` (content, content type), served by the fake provider."""
    params = sms(STRANGER, body)
    sid = params["MessageSid"]
    urls = [media_url(sid, secrets.randbelow(2**64)) for _ in items]
    params["NumMedia"] = str(len(items))
    for n, ((content, kind), url) in enumerate(zip(items, urls, strict=True)):
        params[f"MediaUrl{n}"] = url
        params[f"MediaContentType{n}"] = kind
        world.phone.media[url] = FetchedMedia(content, kind)
    return params, urls


def send(
    world: World, params: dict[str, str], *, idempotency_token: str | None = None
) -> str | None:
    return reply_of(
        driver(world.app).post("/twilio/sms", params, idempotency_token=idempotency_token)
    )


def new_tip(session: Session) -> Tip:
    """A tip to hang media rows on directly (inside an app context)."""
    return create_tip(
        session,
        hotline().keyring,
        channel=Channel.SMS,
        level=TipLevel.STANDARD,
        received_at=hotline().clock.now(),
    ).tip


def rows(app: Flask) -> list[MessageMedia]:
    with session_of(app) as s:
        return list(s.scalars(select(MessageMedia).order_by(MessageMedia.id)))


def timeline_of(app: Flask, tip_id: int) -> list[TipEvent]:
    with session_of(app) as s:
        return list(s.scalars(select(TipEvent).where(TipEvent.tip_id == tip_id)))


def kinds(app: Flask, tip_id: int) -> list[TipEventKind]:
    return [e.kind for e in timeline_of(app, tip_id)]


def opened(app: Flask, media_id: int) -> tuple[bytes, str] | None:
    with app.app_context(), session_of(app) as s:
        return media.open_media(s, media_id)


def alerts(app: Flask) -> list[Alert]:
    with session_of(app) as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)))


def retryable() -> TelephonyError:
    return TelephonyError(
        TelephonyErrorKind.RETRYABLE, "fetch_media: could not connect (ConnectionError)"
    )


@pytest.fixture
def make_world(make_app: Callable[..., Flask], clock: ManualClock) -> Callable[..., World]:
    """A world like ``world``'s, with settings of its own (the media store, the size limit)."""

    def build(database_url: str | None = None, **env: str) -> World:
        phone, mail = FakeTelephony(), FakeEmail()
        clock.set(SCHOOL_HOURS)
        app = make_app(database_url, telephony=phone, email=mail, **env)
        assert import_directory(hotline(app).db, clock, sample_directory()).ok
        return World(app, clock, phone, mail)

    return build


# The whole path -----------------------------------------------------------------------------


@pytest.mark.parametrize("store", list(MediaStoreKind))
def test_a_text_with_two_pictures_is_fetched_kept_and_deleted_at_the_provider(
    make_world: Callable[..., World], store: MediaStoreKind
) -> None:
    world = make_world(HOTLINE_MEDIA_STORE=store.value)
    params, urls = mms(world, "look at this", (JPEG, "image/jpeg"), (PNG, "image/png"))
    reply = send(world, params)
    assert reply is not None
    [tip] = sms_tips(world.app)

    # The webhook made the rows; nothing was fetched inside the request.
    pending = rows(world.app)
    assert [(r.media_index, r.provider_url, r.state) for r in pending] == [
        (0, urls[0], MediaState.PENDING),
        (1, urls[1], MediaState.PENDING),
    ]
    assert {r.message_sid for r in pending} == {params["MessageSid"]}
    assert all(r.message_id is not None and r.tip_id == tip.id for r in pending)
    assert world.phone.fetched_media == []
    [listed] = [e for e in timeline_of(world.app, tip.id) if e.kind is TipEventKind.MESSAGE_MEDIA]
    assert listed.data["media"] == [
        {"id": pending[0].id, "content_type": "image/jpeg"},
        {"id": pending[1].id, "content_type": "image/png"},
    ]
    assert "api.twilio.com" not in str(listed.data)

    world.drain()  # the jobs the webhook handed over once it committed

    assert world.phone.fetched_media == urls
    assert world.phone.deleted_media == urls
    kept = rows(world.app)
    for row, content, kind in zip(kept, (JPEG, PNG), ("image/jpeg", "image/png"), strict=True):
        assert row.state is MediaState.FETCHED
        assert row.provider_url is None
        assert row.provider_deleted_at == world.clock.now()
        assert (row.content_type, row.size_bytes) == (kind, len(content))
        assert row.sha256 == hashlib.sha256(content).hexdigest()
        assert row.stored_in is store
        assert row.next_attempt_at is None
        assert row.attempts == 1
        assert opened(world.app, row.id) == (content, kind)
    on_disk = hotline(world.app).settings.instance_path / media.MEDIA_DIRECTORY
    with session_of(world.app) as s:
        in_database = s.scalars(select(MediaContent.media_id)).all()
    if store is MediaStoreKind.DIRECTORY:
        assert sorted(p.name for p in on_disk.iterdir()) == sorted(str(r.id) for r in kept)
        assert all(p.stat().st_mode & 0o077 == 0 for p in on_disk.iterdir())
        assert in_database == []
    else:
        assert not on_disk.exists()
        assert sorted(in_database) == [r.id for r in kept]
    events = kinds(world.app, tip.id)
    assert events.count(TipEventKind.MESSAGE_MEDIA_FETCHED) == 2
    assert events.count(TipEventKind.MESSAGE_MEDIA_DELETED_AT_PROVIDER) == 2
    assert AlertKind.MEDIA_FAILED not in {a.kind for a in alerts(world.app)}

    world.run()  # and nothing is left for the sweep
    assert world.phone.fetched_media == urls
    assert world.phone.deleted_media == urls


def test_the_job_is_enqueued_only_once_the_text_is_committed(
    make_app: Callable[..., Flask],
) -> None:
    jobs = RecordingJobQueue()
    app = make_app(jobs=jobs)
    params = sms(STRANGER, "", NumMedia="1", MediaUrl0=media_url("MM" + "1" * 32, 1))
    message = commands.inbound_from_params(params)
    services = hotline(app)

    def fetch_jobs() -> list[tuple[str, tuple[int, ...]]]:
        return [job for job in jobs.take() if job[0] == tasks.FETCH_MEDIA]

    def keep_then_fail() -> None:
        another = commands.inbound_from_params({**params, "MessageSid": "SM" + "2" * 32})
        with services.db.session() as s:
            media.keep_media(s, new_tip(s), another, None, services.clock.now())
            raise RuntimeError("the request failed after the rows were made")

    with app.app_context():
        with services.db.session() as s:
            kept = media.keep_media(s, new_tip(s), message, None, services.clock.now())
            assert fetch_jobs() == []  # not before the commit
        assert fetch_jobs() == [(tasks.FETCH_MEDIA, (kept[0].id,))]

        with pytest.raises(RuntimeError, match="after the rows were made"):
            keep_then_fail()
        assert fetch_jobs() == []  # a rolled-back text hands nothing over
    assert len(rows(app)) == 1


# The policy ---------------------------------------------------------------------------------


def test_too_large_and_wrong_types_are_refused_and_deleted_at_the_provider(
    make_world: Callable[..., World],
) -> None:
    world = make_world(HOTLINE_MEDIA_MAX_BYTES="2048")
    big, card = b"\xff\xd8" + b"x" * 4096, b"BEGIN:VCARD\r\nEND:VCARD\r\n"
    params, urls = mms(world, "", (big, "image/jpeg"), (card, "text/vcard"), (JPEG, "image/jpeg"))
    send(world, params)
    world.drain()

    too_big, vcard, fine = rows(world.app)
    assert too_big.state is vcard.state is MediaState.REFUSED
    assert too_big.refused_reason == "4098 bytes is more than the 2048 kept"
    assert (
        vcard.refused_reason == "type text/vcard is not a picture, video or audio the hotline keeps"
    )
    assert fine.state is MediaState.FETCHED
    # Refused items are deleted at the provider too: nothing a reporter sent stays there.
    assert world.phone.deleted_media == urls
    for refused, content in ((too_big, big), (vcard, card)):
        assert refused.provider_url is None
        assert refused.stored_in is None
        assert refused.storage_key is None
        assert refused.sha256 == hashlib.sha256(content).hexdigest()
        assert opened(world.app, refused.id) is None
    on_disk = hotline(world.app).settings.instance_path / media.MEDIA_DIRECTORY
    assert [p.name for p in on_disk.iterdir()] == [str(fine.id)]
    [tip] = sms_tips(world.app)
    refusals = [
        e.data
        for e in timeline_of(world.app, tip.id)
        if e.kind is TipEventKind.MESSAGE_MEDIA_REFUSED
    ]
    assert [r["reason"] for r in refusals] == [too_big.refused_reason, vcard.refused_reason]
    assert kinds(world.app, tip.id).count(TipEventKind.MESSAGE_MEDIA_DELETED_AT_PROVIDER) == 3


# Failures -----------------------------------------------------------------------------------


def test_a_retryable_failure_is_tried_again_after_its_backoff(world: World) -> None:
    params, [url] = mms(world, "", (JPEG, "image/jpeg"))
    world.phone.fail_next("fetch_media", retryable())
    send(world, params)
    world.drain()

    [row] = rows(world.app)
    assert row.state is MediaState.PENDING
    assert row.attempts == 1
    assert row.next_attempt_at == world.clock.now() + media.FIRST_RETRY
    assert row.last_error == (
        "retryable (code None, HTTP None): fetch_media: could not connect (ConnectionError)"
    )
    assert world.phone.deleted_media == []

    world.clock.advance(media.FIRST_RETRY.total_seconds() - 1)
    world.run()
    assert rows(world.app)[0].state is MediaState.PENDING  # not due yet
    world.clock.advance(1)
    report = world.run()  # the sweep re-drives it: no job is waiting for it

    assert report.media_enqueued == [row.id]
    [row] = rows(world.app)
    assert row.state is MediaState.FETCHED
    assert row.attempts == 2
    assert row.last_error is None
    assert world.phone.fetched_media == [url]
    assert world.phone.deleted_media == [url]


def test_after_every_attempt_it_fails_on_the_agents_feed_and_stays_at_the_provider(
    world: World,
) -> None:
    params, [url] = mms(world, "see the picture", (JPEG, "image/jpeg"))
    world.phone.fail_next("fetch_media", retryable(), times=media.MAX_FETCH_ATTEMPTS)
    send(world, params)
    world.drain()
    for attempt in range(1, media.MAX_FETCH_ATTEMPTS):
        [row] = rows(world.app)
        assert (row.state, row.attempts) == (MediaState.PENDING, attempt)
        world.clock.advance(media.retry_delay(attempt).total_seconds())
        world.run()

    [row] = rows(world.app)
    assert row.state is MediaState.FAILED
    assert row.attempts == media.MAX_FETCH_ATTEMPTS
    assert row.next_attempt_at is None
    assert row.provider_url == url  # left for a person to find
    assert world.phone.deleted_media == []
    [alert] = [a for a in alerts(world.app) if a.kind is AlertKind.MEDIA_FAILED]
    assert f"after {media.MAX_FETCH_ATTEMPTS} attempt(s)" in alert.message
    assert params["MessageSid"] in alert.message
    assert "https://" not in alert.message
    [tip] = sms_tips(world.app)
    assert kinds(world.app, tip.id).count(TipEventKind.MESSAGE_MEDIA_FAILED) == 1

    world.clock.advance(3600)
    world.run()  # nothing more to do
    assert rows(world.app)[0].attempts == media.MAX_FETCH_ATTEMPTS


def test_a_refusal_by_the_provider_fails_at_once(world: World) -> None:
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    world.phone.fail_next(
        "fetch_media",
        TelephonyError(
            TelephonyErrorKind.REJECTED,
            "fetch_media: HTTP 404, Twilio code 20404",
            code=20404,
            http_status=404,
        ),
    )
    send(world, params)
    world.drain()
    [row] = rows(world.app)
    assert (row.state, row.attempts) == (MediaState.FAILED, 1)
    assert AlertKind.MEDIA_FAILED in {a.kind for a in alerts(world.app)}


def test_a_failed_deletion_is_retried_and_an_already_deleted_copy_is_fine(world: World) -> None:
    params, urls = mms(world, "", (JPEG, "image/jpeg"), (PNG, "image/png"))
    world.phone.fail_next("delete_media", retryable())
    world.phone.fail_next(
        "delete_media",
        TelephonyError(TelephonyErrorKind.REJECTED, "not found", code=20404, http_status=404),
    )
    send(world, params)
    world.drain()

    first, second = rows(world.app)
    assert first.state is MediaState.FETCHED
    assert first.provider_url == urls[0]  # its deletion failed: kept to try again
    assert first.next_attempt_at == world.clock.now() + media.FIRST_RETRY
    assert second.provider_url is None  # 404: gone already, as wanted
    world.clock.advance(media.FIRST_RETRY.total_seconds())
    world.run()
    first = rows(world.app)[0]
    assert first.provider_url is None
    assert first.delete_attempts == 2
    assert world.phone.deleted_media == [urls[0]]


def test_a_deletion_that_keeps_failing_tells_the_agents_once(world: World) -> None:
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    world.phone.fail_next("delete_media", retryable(), times=media.MAX_DELETE_ATTEMPTS + 1)
    send(world, params)
    world.drain()
    for attempt in range(1, media.MAX_DELETE_ATTEMPTS + 1):
        world.clock.advance(media.retry_delay(attempt).total_seconds())
        world.run()
    [row] = rows(world.app)
    assert row.delete_attempts == media.MAX_DELETE_ATTEMPTS + 1
    assert row.provider_url is not None
    assert row.next_attempt_at == world.clock.now() + media.retry_delay(row.delete_attempts)
    [alert] = [a for a in alerts(world.app) if a.kind is AlertKind.MEDIA_FAILED]
    assert "could not be deleted" in alert.message
    assert opened(world.app, row.id) == (JPEG, "image/jpeg")  # the hotline's copy is fine


def test_a_store_that_fails_is_retried(world: World) -> None:
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    directory = hotline(world.app).settings.instance_path / media.MEDIA_DIRECTORY
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text("a file where the directory should be")
    send(world, params)
    world.drain()
    [row] = rows(world.app)
    assert row.state is MediaState.PENDING
    assert row.last_error is not None
    assert row.last_error.startswith("FileExistsError")
    assert world.phone.deleted_media == []  # never deleted before it is kept

    directory.unlink()
    world.clock.advance(media.FIRST_RETRY.total_seconds())
    world.run()
    assert rows(world.app)[0].state is MediaState.FETCHED


# Nothing twice ------------------------------------------------------------------------------


def test_two_workers_claiming_one_item_fetch_it_once(
    make_world: Callable[..., World], database_url: str
) -> None:
    world = make_world(database_url)
    params, [url] = mms(world, "", (JPEG, "image/jpeg"))
    send(world, params)
    [row] = rows(world.app)
    services = hotline(world.app)
    second: list[str] = []
    world.phone.meanwhile(
        "fetch_media", lambda: second.append(media.fetch_media(services, row.id, "worker-2"))
    )
    with world.app.app_context():
        first = media.fetch_media(services, row.id, "worker-1")
    assert (first, second) == ("fetched", ["not-claimed"])
    assert world.phone.fetched_media == [url]
    world.drain()  # the webhook's own job finds it done
    assert world.phone.fetched_media == [url]
    assert world.phone.deleted_media == [url]
    assert rows(world.app)[0].attempts == 1


def test_a_worker_that_died_mid_fetch_is_taken_over_after_its_lease(world: World) -> None:
    params, [url] = mms(world, "", (JPEG, "image/jpeg"))
    send(world, params)
    [row] = rows(world.app)
    services = hotline(world.app)
    late: list[str] = []

    def die_then_come_back() -> None:
        # The first worker hangs in the download past its lease; another takes the item over.
        world.clock.advance(media.LEASE.total_seconds())
        world.run()
        late.append("taken over")

    world.phone.meanwhile("fetch_media", die_then_come_back)
    with world.app.app_context():
        outcome = media.fetch_media(services, row.id, "worker-slow")
    assert late == ["taken over"]
    assert outcome == "lost-claim"  # its late result changes nothing
    [row] = rows(world.app)
    assert (row.state, row.attempts) == (MediaState.FETCHED, 2)
    assert world.phone.fetched_media == [url, url]
    [tip] = sms_tips(world.app)
    assert kinds(world.app, tip.id).count(TipEventKind.MESSAGE_MEDIA_FETCHED) == 1


def test_a_repeated_delivery_of_one_text_keeps_its_pictures_once(world: World) -> None:
    params, urls = mms(world, "look", (JPEG, "image/jpeg"), (PNG, "image/png"))
    first = send(world, params)
    assert send(world, params) == first  # the same delivery: answered from its receipt
    # The same MessageSid delivered again under another idempotency token (a provider retry):
    # the hotline knows the sid and keeps nothing more.
    assert send(world, params, idempotency_token="another-delivery") is None
    assert len(rows(world.app)) == 2
    [tip] = sms_tips(world.app)
    assert kinds(world.app, tip.id).count(TipEventKind.MESSAGE_MEDIA) == 1
    world.drain()
    assert world.phone.fetched_media == urls


def test_the_rows_of_a_text_are_unique_by_its_sid(world: World) -> None:
    """What stops two concurrent deliveries (each before the other's commit) from both keeping
    the pictures: the second's flush fails, and the webhook guard applies it again as a repeat."""
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    message = commands.inbound_from_params(params)
    services = hotline(world.app)
    with world.app.app_context():
        with services.db.session() as s:
            media.keep_media(s, new_tip(s), message, None, world.clock.now())
        with pytest.raises(IntegrityError), services.db.session() as s:
            media.keep_media(s, new_tip(s), message, None, world.clock.now())
    assert len(rows(world.app)) == 1


def test_a_lost_job_is_driven_by_the_sweep(world: World) -> None:
    params, [url] = mms(world, "", (JPEG, "image/jpeg"))
    send(world, params)
    lost = hotline(world.app).jobs
    lost.drain(lambda _name, _args: None)  # type: ignore[attr-defined]
    world.run()
    assert world.phone.fetched_media == []  # handed to the queue a moment ago: not yet again
    world.clock.advance(media.REENQUEUE_AFTER.total_seconds())
    world.run()
    assert world.phone.fetched_media == [url]
    assert rows(world.app)[0].provider_url is None


def test_the_sweep_fetches_a_few_itself_while_the_queue_is_down(
    make_app: Callable[..., Flask], clock: ManualClock
) -> None:
    jobs = RecordingJobQueue()
    phone = FakeTelephony()
    app = make_app(jobs=jobs, telephony=phone)
    world = World(app, clock, phone, FakeEmail())
    jobs.fail = True  # Redis down: the webhook's enqueue is lost, and the sweep's refused
    for _ in range(3):
        send(world, mms(world, "", (JPEG, "image/jpeg"))[0])
    clock.advance(media.REENQUEUE_AFTER.total_seconds())
    with app.app_context():
        report = tasks.sweep(hotline(app))
    assert len(report.media_inline) == tasks.MEDIA_INLINE_PER_SWEEP
    assert [r.state for r in rows(app)].count(MediaState.FETCHED) == 2
    clock.advance(media.REENQUEUE_AFTER.total_seconds())
    with app.app_context():
        tasks.sweep(hotline(app))
    assert {r.state for r in rows(app)} == {MediaState.FETCHED}


# The development default --------------------------------------------------------------------


def test_the_dev_setup_fetches_the_simulated_networks_pictures(dev_app: Flask) -> None:
    sim = hotline(dev_app).simulator
    assert sim is not None
    sim.text_hotline(STRANGER, "look at the wall", media=[(JPEG, "image/jpeg")])
    sim.tick()
    [row] = rows(dev_app)
    assert row.provider_url is not None
    assert row.provider_url.startswith(sim.media_base_url)
    url = row.provider_url

    EmbeddedWorker(dev_app).run_once(0.0)

    [row] = rows(dev_app)
    assert row.state is MediaState.FETCHED
    assert row.provider_url is None
    assert opened(dev_app, row.id) == (JPEG, "image/jpeg")
    with pytest.raises(TelephonyError):
        sim.fetch_media(url)  # deleted on the simulated network too


def test_open_media_is_none_for_anything_not_kept_or_altered(world: World) -> None:
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    send(world, params)
    [row] = rows(world.app)
    assert opened(world.app, row.id) is None  # pending
    assert opened(world.app, row.id + 100) is None
    world.drain()
    assert opened(world.app, row.id) == (JPEG, "image/jpeg")
    path = hotline(world.app).settings.instance_path / media.MEDIA_DIRECTORY / str(row.id)
    path.write_bytes(JPEG + b"tampered")
    assert opened(world.app, row.id) is None
    path.unlink()
    assert opened(world.app, row.id) is None


def test_a_text_brought_in_by_the_reconciliation_keeps_its_count_only(world: World) -> None:
    """The provider's message log gives a count of media, not their URLs: the reconciliation
    notes them at the provider and makes no rows (see the report)."""
    from hotline.background import reconcile
    from hotline.telephony.ports import ProviderMessage

    world.phone.inbound_messages.append(
        ProviderMessage(
            sid="MM" + "2" * 32,
            from_=STRANGER,
            body="during the outage",
            sent_at=world.clock.now() - timedelta(minutes=10),
            num_media=2,
        )
    )
    with world.app.app_context():
        reconcile.reconcile_with_provider(hotline(world.app))
    [tip] = sms_tips(world.app)
    assert TipEventKind.MESSAGE_MEDIA_AT_PROVIDER in kinds(world.app, tip.id)
    assert rows(world.app) == []


def test_a_picture_alone_answers_like_words_do(world: World) -> None:
    reply_of(text(world.app, STRANGER, "someone wrote on the wall"))
    params, _ = mms(world, "", (JPEG, "image/jpeg"))
    reply = send(world, params)
    [tip] = sms_tips(world.app)
    assert reply is not None
    assert reply.startswith(f"Added to report {tip.report_number}")
    assert rows(world.app)[0].message_id is None


def test_the_database_store_keeps_and_replaces_the_bytes(
    make_app: Callable[..., Flask], database_url: str
) -> None:
    app = make_app(database_url)
    services = hotline(app)
    store = media.DatabaseMediaStore()
    params, _ = mms_params()
    message = commands.inbound_from_params(params)
    now = services.clock.now()
    with app.app_context():
        with services.db.session() as s:
            [row] = media.keep_media(s, new_tip(s), message, None, now)
        with services.db.session() as s:
            key = store.put(s, row.id, JPEG, now)
        with services.db.session() as s:
            assert store.get(s, key) == JPEG
            assert store.put(s, row.id, PNG, now) == key  # a retry replaces it
        with services.db.session() as s:
            assert store.get(s, key) == PNG
            assert store.get(s, str(row.id + 1)) is None
            assert store.get(s, "../1") is None


def mms_params() -> tuple[dict[str, str], str]:
    params = sms(STRANGER, "")
    url = media_url(params["MessageSid"], 1)
    params.update(NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    return params, url


# Celery shares every app's tasks with the apps finalized after it; the test process builds many
# apps (production builds one), so finalizing this one warns about the others' same names.
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_celery_runs_the_fetch_job_by_its_name(world: World) -> None:
    params, [url] = mms(world, "", (JPEG, "image/jpeg"))
    send(world, params)
    [row] = rows(world.app)
    celery = world.app.extensions["celery"]
    assert tasks.FETCH_MEDIA in celery.tasks
    celery.tasks[tasks.FETCH_MEDIA].apply(args=[row.id])
    assert rows(world.app)[0].state is MediaState.FETCHED
    assert world.phone.deleted_media == [url]

"""Media of incoming texts (MMS): pictures, short videos and voice notes a reporter sends.

The webhook knows a media item only as the provider's URL. Its path from there:

1. :func:`keep_media` (in the webhook's transaction): one :class:`~hotline.models.MessageMedia`
   row per item, ``pending``, and a job per row handed to the queue once the transaction commits.
   A text delivered twice is kept once (the webhook guard, and the rows are unique per
   MessageSid and position).
2. :func:`fetch_media` (a worker): claims the row (``pending`` → ``fetching``, one conditional
   update, so two workers never both fetch it), fetches it through the telephony port, checks it
   against the :class:`MediaPolicy`, and stores the bytes (:class:`MediaStore`) in the
   transaction that marks it ``fetched``; or marks it ``refused`` with the reason (the bytes are
   not kept). A failure the provider or the network may get over is tried again with backoff;
   after MAX_FETCH_ATTEMPTS, or at once for a refusal by the provider, the row is ``failed``, the
   agents get a ``media_failed`` alert, and the item stays at the provider for a person to see.
3. :func:`delete_at_provider`: once fetched or refused the provider's copy is deleted (a
   refused item too: nothing a reporter sent stays at the provider) and the URL is cleared;
   a failed deletion is retried with backoff, the agents are told after MAX_DELETE_ATTEMPTS.

Every step is on the tip's timeline. The dispatcher's sweep (:func:`due_media`) re-drives rows
whose next attempt is due, so a lost job or a restart loses nothing: the database is the queue.

The bytes are served only through the app: :func:`open_media`, for the console and portal to
come (there is no route: there are no user accounts yet).

``last_error`` never holds a URL (the provider's URLs name the account) nor anything that looks
like a phone number.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import ColumnElement, event, inspect, select, update
from sqlalchemy.orm import Session

from dispatcher.plan_writer import raise_alert
from dispatcher.tasks import FETCH_MEDIA
from hotline.config import Settings
from hotline.core import timeline
from hotline.core.redaction import redact_text
from hotline.db import run_after_commit
from hotline.models import (
    AlertKind,
    MediaContent,
    MediaState,
    MediaStoreKind,
    MessageMedia,
    Tip,
    TipEventKind,
)
from hotline.services import Hotline, hotline
from hotline.telephony.ports import TelephonyError, TelephonyErrorKind
from sms.commands import InboundSms

log = logging.getLogger(__name__)

# The policy ---------------------------------------------------------------------------------

#: Pictures phones send: JPEG (``image/jpg`` is how some carriers spell it), PNG, GIF, the
#: iPhone's HEIC/HEIF, WebP.
IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/png", "image/gif", "image/heic", "image/heif", "image/webp"}
)
#: Short videos: MP4, 3GPP (Android's MMS video), QuickTime (the iPhone's).
VIDEO_TYPES = frozenset({"video/mp4", "video/3gpp", "video/quicktime"})
#: Voice notes and audio: AMR (MMS voice), MP3, MP4 audio, Ogg, WAV (``audio/x-wav`` too).
AUDIO_TYPES = frozenset(
    {"audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/x-wav"}
)
#: Everything else (contact cards, calendar entries, PDFs, HTML, archives) is refused: it is not
#: evidence a phone's camera or microphone made, and some of it runs where it is opened.
ALLOWED_TYPES = IMAGE_TYPES | VIDEO_TYPES | AUDIO_TYPES


def normalize_content_type(raw: str | None) -> str | None:
    """``Image/JPEG; charset=binary`` → ``image/jpeg``; None when there is none."""
    if raw is None:
        return None
    kind = raw.split(";", 1)[0].strip().lower()
    return kind or None


@dataclass(frozen=True)
class MediaPolicy:
    """What the hotline keeps: a type of :data:`ALLOWED_TYPES`, at most ``max_bytes``
    (HOTLINE_MEDIA_MAX_BYTES, 5 MB by default: Twilio takes at most 5 MB per incoming MMS, and
    carriers cap pictures near there or below)."""

    max_bytes: int
    allowed_types: frozenset[str] = ALLOWED_TYPES

    def refusal(self, content_type: str | None, size: int) -> str | None:
        """Why an item is refused, or None when it is kept."""
        kind = normalize_content_type(content_type)
        if kind is None:
            return "no content type"
        if kind not in self.allowed_types:
            return f"type {kind} is not a picture, video or audio the hotline keeps"
        if size == 0:
            return "empty"
        if size > self.max_bytes:
            return f"{size} bytes is more than the {self.max_bytes} kept"
        return None


def policy_of(settings: Settings) -> MediaPolicy:
    return MediaPolicy(max_bytes=settings.media_max_bytes)


# The stores ---------------------------------------------------------------------------------


class MediaStore(Protocol):
    """Where the bytes of fetched media are kept. ``put`` runs in the transaction that marks the
    item fetched (the database store commits with it; the directory store writes its file first,
    and a rolled-back attempt's file is overwritten by the next, under the same key)."""

    @property
    def kind(self) -> MediaStoreKind: ...

    def put(self, session: Session, media_id: int, content: bytes, now: datetime) -> str:
        """Keep ``content`` for ``media_id``; returns the storage key."""
        ...

    def get(self, session: Session, key: str) -> bytes | None:
        """The bytes under ``key``; None when they are not there."""
        ...


_KEY_RE = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True)
class DirectoryMediaStore:
    """Files under a directory (``instance/media/`` by default), one per item, named by its id,
    readable by the app's user only. Every process that fetches or opens media needs it (a
    shared volume when web and workers run on several machines)."""

    root: Path
    kind: MediaStoreKind = field(default=MediaStoreKind.DIRECTORY, init=False)

    def put(self, session: Session, media_id: int, content: bytes, now: datetime) -> str:  # noqa: ARG002 - the port's signature
        key = str(media_id)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written whole, then renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=f".{key}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.root / key)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, session: Session, key: str) -> bytes | None:  # noqa: ARG002 - the port's signature
        if not _KEY_RE.match(key):
            return None  # never a path outside the directory
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class DatabaseMediaStore:
    """The ``media_contents`` table: the bytes are backed up with the database and reach every
    process that reaches it."""

    kind: MediaStoreKind = field(default=MediaStoreKind.DATABASE, init=False)

    def put(self, session: Session, media_id: int, content: bytes, now: datetime) -> str:
        row = session.get(MediaContent, media_id)
        if row is None:
            session.add(MediaContent(media_id=media_id, content=content, created_at=now))
        else:
            row.content = content
        session.flush()
        return str(media_id)

    def get(self, session: Session, key: str) -> bytes | None:
        if not _KEY_RE.match(key):
            return None
        row = session.get(MediaContent, int(key))
        return None if row is None else row.content


#: Under the instance path: the directory store's default place.
MEDIA_DIRECTORY = "media"


def media_stores(settings: Settings) -> dict[MediaStoreKind, MediaStore]:
    """Both stores: new items go to the configured one, and an item is always read from the one
    it was stored in (HOTLINE_MEDIA_STORE may have changed since)."""
    return {
        MediaStoreKind.DIRECTORY: DirectoryMediaStore(settings.instance_path / MEDIA_DIRECTORY),
        MediaStoreKind.DATABASE: DatabaseMediaStore(),
    }


# State changes ------------------------------------------------------------------------------

M = MediaState

#: Every state change a media row may make, (from, to) → why. Those of a worker holding the
#: claim are checked against its token.
TRANSITIONS: dict[tuple[MediaState, MediaState], str] = {
    (M.PENDING, M.FETCHING): "a worker claims a due item",
    (M.FETCHING, M.FETCHING): "the claimant's lease ran out (it died): another worker claims it",
    (M.FETCHING, M.FETCHED): "the claimant fetched, checked and stored it",
    (M.FETCHING, M.REFUSED): "the claimant fetched it and the policy refused it",
    (M.FETCHING, M.PENDING): "the claimant failed; it is tried again later",
    (M.FETCHING, M.FAILED): "the claimant failed for good, or once too often",
}
BY_CLAIMANT = frozenset(
    {
        (M.FETCHING, M.FETCHED),
        (M.FETCHING, M.REFUSED),
        (M.FETCHING, M.PENDING),
        (M.FETCHING, M.FAILED),
    }
)


class IllegalMediaTransition(RuntimeError):
    pass


def transition(
    session: Session,
    media_id: int,
    frm: MediaState,
    to: MediaState,
    *,
    now: datetime,
    token: str | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    **values: object,
) -> bool:
    """Move one row from ``frm`` to ``to`` in one conditional update; False when another
    transaction changed it first (or ``where`` does not hold)."""
    if (frm, to) not in TRANSITIONS:
        raise IllegalMediaTransition(f"a media item never goes from {frm.value} to {to.value}")
    if (frm, to) in BY_CLAIMANT and token is None:
        raise IllegalMediaTransition(f"{frm.value} → {to.value} is the claimant's: give its token")
    query = update(MessageMedia).where(
        MessageMedia.id == media_id, MessageMedia.state == frm, *where
    )
    if token is not None:
        query = query.where(MessageMedia.claimed_by == token)
    if to is not M.FETCHING:
        values = {"claimed_by": None, **values}
    moved = session.execute(
        query.values(state=to, updated_at=now, **values).execution_options(
            synchronize_session=False
        )
    )
    return bool(getattr(moved, "rowcount", 0))


@event.listens_for(Session, "before_flush")
def _state_changes_only_through_transition(
    session: Session, _flush_context: object, _instances: object
) -> None:
    # As for the outbox: a row's state is written by `transition` alone.
    for obj in session.new:
        if isinstance(obj, MessageMedia) and obj.state is not M.PENDING:
            raise IllegalMediaTransition("a new media item starts pending")
    for obj in session.dirty:
        if isinstance(obj, MessageMedia) and inspect(obj).attrs.state.history.has_changes():
            raise IllegalMediaTransition("a media item's state changes only through transition()")


# In the webhook -----------------------------------------------------------------------------


def keep_media(
    session: Session, tip: Tip, message: InboundSms, message_id: int | None, now: datetime
) -> list[MessageMedia]:
    """One pending row per media item of ``message``, and a fetch job for each once the
    transaction commits. A second delivery of the same MessageSid fails the flush (unique): the
    webhook guard then answers it as the repeat it is."""
    rows = [
        MessageMedia(
            tip_id=tip.id,
            message_id=message_id,
            message_sid=message.message_sid,
            media_index=index,
            provider_url=item.url,
            declared_content_type=item.content_type,
            state=M.PENDING,
            attempts=0,
            delete_attempts=0,
            next_attempt_at=now,
            enqueued_at=now,
            created_at=now,
            updated_at=now,
        )
        for index, item in enumerate(message.media)
    ]
    session.add_all(rows)
    session.flush()
    _enqueue_after_commit(session, [row.id for row in rows])
    return rows


def _enqueue_after_commit(session: Session, media_ids: list[int]) -> None:
    if not media_ids or not current_app:
        return  # outside an app (a bare script) the sweep picks them up
    jobs = hotline().jobs

    def enqueue() -> None:
        for media_id in media_ids:
            jobs.enqueue(FETCH_MEDIA, media_id)

    run_after_commit(session, enqueue)


# The worker ---------------------------------------------------------------------------------

#: How long a claim lasts: far longer than a 5 MB download takes (the Twilio adapter times out
#: well before). A worker gone for longer is taken to be dead and the item is claimed again.
LEASE = timedelta(minutes=5)
#: Fetches of one item before it is failed: 30 s, 1, 2, 4 and 8 minutes apart (about a quarter
#: of an hour of provider or network trouble).
MAX_FETCH_ATTEMPTS = 6
#: Deletions at the provider tried before the agents are told (they go on being tried, hourly).
MAX_DELETE_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
#: The sweep hands an item to the queue again only this long after it last did.
REENQUEUE_AFTER = timedelta(seconds=30)

#: Provider errors worth trying again: nothing was done, or a download (which changes nothing
#: at the provider) may simply be retried.
RETRYABLE_KINDS = frozenset({TelephonyErrorKind.RETRYABLE, TelephonyErrorKind.UNKNOWN_OUTCOME})


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    doublings = min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def attempt_token(worker: str) -> str:
    """The claim's holder: the worker (for people reading the table) and a part unique to the
    attempt."""
    return f"{worker[:51]}/{secrets.token_hex(6)}"


_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+")


def describe_error(exc: BaseException) -> str:
    """What ``last_error`` and the timeline say of a failure: its kind and the provider's codes,
    with any URL and anything like a phone number taken out."""
    text = redact_text(_URL_RE.sub("[url]", str(exc)))
    if isinstance(exc, TelephonyError):
        return (f"{exc.kind.value} (code {exc.code}, HTTP {exc.http_status}): {text}")[:500]
    return f"{type(exc).__name__}: {text}"[:500]


@dataclass(frozen=True)
class _Claimed:
    media_id: int
    tip_id: int
    url: str | None
    attempts: int
    token: str


def fetch_media(
    services: Hotline,
    media_id: int,
    worker: str,
    *,
    stores: Mapping[MediaStoreKind, MediaStore] | None = None,
) -> str:
    """Fetch, check and keep one item; returns what happened (for logs and tests):
    not-claimed, fetched, refused, retry, failed, lost-claim."""
    claimed = _claim(services, media_id, attempt_token(worker))
    if claimed is None:
        return "not-claimed"
    if claimed.url is None:
        return _failed(services, claimed, "no provider URL", retry=False)
    try:
        got = services.telephony.fetch_media(claimed.url)
    except TelephonyError as exc:
        log.info("could not fetch media %s (%s)", media_id, exc.kind.value)
        return _failed(services, claimed, describe_error(exc), retry=exc.kind in RETRYABLE_KINDS)
    content_type = normalize_content_type(got.content_type)
    # What was fetched, kept on the row and the timeline whether it is kept or refused.
    facts: dict[str, Any] = {
        "content_type": content_type,
        "size_bytes": len(got.content),
        "sha256": hashlib.sha256(got.content).hexdigest(),
    }
    reason = policy_of(services.settings).refusal(content_type, len(got.content))
    store = (stores or media_stores(services.settings))[services.settings.media_store]
    try:
        with services.db.session() as session:
            now = services.clock.now()
            if reason is not None:
                return _refused(session, claimed, reason, facts, now)
            key = store.put(session, media_id, got.content, now)
            if not transition(
                session,
                media_id,
                M.FETCHING,
                M.FETCHED,
                now=now,
                token=claimed.token,
                stored_in=store.kind,
                storage_key=key,
                fetched_at=now,
                last_error=None,
                next_attempt_at=now,  # the provider's copy is to be deleted now
                **facts,
            ):
                session.rollback()
                return "lost-claim"
            timeline.record(
                session,
                session.get_one(Tip, claimed.tip_id),
                TipEventKind.MESSAGE_MEDIA_FETCHED,
                at=now,
                media_id=media_id,
                stored_in=store.kind.value,
                **facts,
            )
            return "fetched"
    # The worker's one boundary: a store that fails (a full disk, the database refusing the
    # bytes) or anything unexpected is recorded on the row and tried again, never left claimed.
    except Exception as exc:
        log.exception("could not keep media %s; it is tried again", media_id)
        return _failed(services, claimed, describe_error(exc), retry=True)


def _claim(services: Hotline, media_id: int, token: str) -> _Claimed | None:
    """pending → fetching when due, or fetching → fetching when the claimant's lease ran out."""
    now = services.clock.now()
    with services.db.session() as session:
        due = [MessageMedia.next_attempt_at <= now]
        values: dict[str, Any] = {
            "claimed_by": token,
            "attempts": MessageMedia.attempts + 1,
            "next_attempt_at": now + LEASE,
        }
        if not (
            transition(session, media_id, M.PENDING, M.FETCHING, now=now, where=due, **values)
            or transition(session, media_id, M.FETCHING, M.FETCHING, now=now, where=due, **values)
        ):
            return None
        row = session.get_one(MessageMedia, media_id)
        return _Claimed(media_id, row.tip_id, row.provider_url, row.attempts, token)


def _refused(
    session: Session, claimed: _Claimed, reason: str, facts: dict[str, Any], now: datetime
) -> str:
    if not transition(
        session,
        claimed.media_id,
        M.FETCHING,
        M.REFUSED,
        now=now,
        token=claimed.token,
        refused_reason=reason[:200],
        fetched_at=now,
        last_error=None,
        next_attempt_at=now,  # refused, and deleted at the provider all the same
        **facts,
    ):
        return "lost-claim"
    log.info("media %s refused: %s", claimed.media_id, reason)
    timeline.record(
        session,
        session.get_one(Tip, claimed.tip_id),
        TipEventKind.MESSAGE_MEDIA_REFUSED,
        at=now,
        media_id=claimed.media_id,
        reason=reason,
        **facts,
    )
    return "refused"


def _failed(services: Hotline, claimed: _Claimed, error: str, *, retry: bool) -> str:
    """Tried again later while attempts remain (and the failure may pass); otherwise failed,
    on the timeline and the agents' feed. The item stays at the provider."""
    with services.db.session() as session:
        now = services.clock.now()
        if retry and claimed.attempts < MAX_FETCH_ATTEMPTS:
            moved = transition(
                session,
                claimed.media_id,
                M.FETCHING,
                M.PENDING,
                now=now,
                token=claimed.token,
                last_error=error,
                next_attempt_at=now + retry_delay(claimed.attempts),
            )
            return "retry" if moved else "lost-claim"
        if not transition(
            session,
            claimed.media_id,
            M.FETCHING,
            M.FAILED,
            now=now,
            token=claimed.token,
            last_error=error,
            next_attempt_at=None,
        ):
            return "lost-claim"
        tip = session.get_one(Tip, claimed.tip_id)
        row = session.get_one(MessageMedia, claimed.media_id)
        timeline.record(
            session,
            tip,
            TipEventKind.MESSAGE_MEDIA_FAILED,
            at=now,
            media_id=claimed.media_id,
            attempts=claimed.attempts,
            error=error,
        )
        raise_alert(
            session,
            tip=tip,
            kind=AlertKind.MEDIA_FAILED,
            message=(
                f"Report {tip.report_number}: media item {claimed.media_id} the reporter texted "
                f"could not be fetched after {claimed.attempts} attempt(s) ({error}). It is "
                f"still at the provider: look for message {row.message_sid} in the Twilio "
                "console."
            ),
            key=f"media-failed:{claimed.media_id}",
            now=now,
        )
        return "failed"


def delete_at_provider(services: Hotline, media_id: int) -> str:
    """Delete the provider's copy of a fetched or refused item whose deletion is due, then clear
    its URL; returns what happened: nothing-due, deleted, retry."""
    now = services.clock.now()
    with services.db.session() as session:
        claimed = session.execute(
            update(MessageMedia)
            .where(
                MessageMedia.id == media_id,
                MessageMedia.state.in_((M.FETCHED, M.REFUSED)),
                MessageMedia.provider_url.is_not(None),
                MessageMedia.next_attempt_at <= now,
            )
            .values(
                next_attempt_at=now + LEASE,
                delete_attempts=MessageMedia.delete_attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if not getattr(claimed, "rowcount", 0):
            return "nothing-due"
        row = session.get_one(MessageMedia, media_id)
        url, attempts, tip_id = row.provider_url, row.delete_attempts, row.tip_id
    assert url is not None
    try:
        services.telephony.delete_media(url)
    except TelephonyError as exc:
        if exc.http_status != 404:  # 404: gone already (an earlier attempt went through)
            return _deletion_failed(services, media_id, tip_id, attempts, describe_error(exc))
    # The worker's one boundary, as for fetching: the row records it and the deletion is retried.
    except Exception as exc:
        log.exception("could not delete media %s at the provider", media_id)
        return _deletion_failed(services, media_id, tip_id, attempts, describe_error(exc))
    with services.db.session() as session:
        now = services.clock.now()
        session.execute(
            update(MessageMedia)
            .where(MessageMedia.id == media_id, MessageMedia.provider_url == url)
            .values(
                provider_url=None, provider_deleted_at=now, next_attempt_at=None, updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
        timeline.record(
            session,
            session.get_one(Tip, tip_id),
            TipEventKind.MESSAGE_MEDIA_DELETED_AT_PROVIDER,
            at=now,
            media_id=media_id,
        )
    return "deleted"


def _deletion_failed(
    services: Hotline, media_id: int, tip_id: int, attempts: int, error: str
) -> str:
    with services.db.session() as session:
        now = services.clock.now()
        session.execute(
            update(MessageMedia)
            .where(MessageMedia.id == media_id, MessageMedia.provider_url.is_not(None))
            .values(last_error=error, next_attempt_at=now + retry_delay(attempts), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if attempts >= MAX_DELETE_ATTEMPTS:
            tip = session.get_one(Tip, tip_id)
            raise_alert(
                session,
                tip=tip,
                kind=AlertKind.MEDIA_FAILED,
                message=(
                    f"Report {tip.report_number}: the provider's copy of media item {media_id} "
                    f"could not be deleted after {attempts} attempts ({error}); it is tried "
                    "again every hour. The hotline keeps its own copy."
                ),
                key=f"media-not-deleted:{media_id}",
                now=now,
            )
    return "retry"


def fetch_and_delete(services: Hotline, media_id: int, worker: str) -> None:
    """The job: fetch the item if that is due, then delete the provider's copy if that is."""
    fetched = fetch_media(services, media_id, worker)
    deleted = delete_at_provider(services, media_id)
    log.info("media %s: %s, %s", media_id, fetched, deleted)


# The sweep ----------------------------------------------------------------------------------


def due_media(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Items with work due (a fetch, a retry, a dead worker's claim, a deletion at the provider)
    not handed to the queue recently, oldest first."""
    query = (
        select(MessageMedia.id)
        .where(
            MessageMedia.next_attempt_at <= now,
            MessageMedia.enqueued_at.is_(None)
            | (MessageMedia.enqueued_at <= now - REENQUEUE_AFTER),
        )
        .order_by(MessageMedia.next_attempt_at, MessageMedia.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def mark_enqueued(session: Session, media_ids: Sequence[int], now: datetime) -> None:
    if media_ids:
        session.execute(
            update(MessageMedia)
            .where(MessageMedia.id.in_(list(media_ids)))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )


# Reading it back ----------------------------------------------------------------------------


def open_media(
    session: Session,
    media_id: int,
    *,
    stores: Mapping[MediaStoreKind, MediaStore] | None = None,
) -> tuple[bytes, str] | None:
    """The bytes and content type of a fetched item, from the store it was kept in; None when it
    was not kept (pending, refused, failed) or the bytes are missing or not what was fetched
    (their sha256 differs). For the console and portal, behind their logins: never serve it on
    an unauthenticated route."""
    row = session.get(MessageMedia, media_id)
    if (
        row is None
        or row.state is not M.FETCHED
        or row.stored_in is None
        or row.storage_key is None
        or row.content_type is None
    ):
        return None
    store = (stores or media_stores(hotline().settings))[row.stored_in]
    content = store.get(session, row.storage_key)
    if content is None:
        log.error("media %s: its bytes are missing from the %s store", media_id, row.stored_in)
        return None
    if hashlib.sha256(content).hexdigest() != row.sha256:
        log.error("media %s: its stored bytes are not those fetched (sha256 differs)", media_id)
        return None
    return content, row.content_type

"""The media policy (which types, how large), the retry schedule, what a failure leaves in
``last_error``, and the directory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from hotline.models import MediaStoreKind
from hotline.telephony.ports import TelephonyError, TelephonyErrorKind
from sms import media
from sms.media import DirectoryMediaStore, MediaPolicy

MB = 1024 * 1024
POLICY = MediaPolicy(max_bytes=5 * MB)
T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "kind",
    [
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/gif",
        "image/heic",
        "image/heif",
        "image/webp",
        "video/mp4",
        "video/3gpp",
        "video/quicktime",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/wav",
        "audio/x-wav",
    ],
)
def test_pictures_short_videos_and_audio_are_kept(kind: str) -> None:
    assert POLICY.refusal(kind, 1000) is None


@pytest.mark.parametrize(
    "kind",
    [
        "text/vcard",
        "text/x-vcard",
        "text/calendar",
        "text/html",
        "text/plain",
        "application/pdf",
        "application/zip",
        "application/octet-stream",
        "image/svg+xml",
        "video/webm",
    ],
)
def test_every_other_type_is_refused_by_name(kind: str) -> None:
    assert POLICY.refusal(kind, 1000) == (
        f"type {kind} is not a picture, video or audio the hotline keeps"
    )


def test_the_type_is_read_without_parameters_or_case() -> None:
    assert media.normalize_content_type(" Image/JPEG; charset=binary ") == "image/jpeg"
    assert POLICY.refusal("IMAGE/PNG", 10) is None
    assert media.normalize_content_type("") is None
    assert POLICY.refusal(None, 10) == "no content type"
    assert POLICY.refusal(";", 10) == "no content type"


def test_sizes_up_to_the_limit_are_kept() -> None:
    assert POLICY.refusal("image/jpeg", 5 * MB) is None
    assert POLICY.refusal("image/jpeg", 5 * MB + 1) == (
        f"{5 * MB + 1} bytes is more than the {5 * MB} kept"
    )
    assert POLICY.refusal("image/jpeg", 0) == "empty"
    assert MediaPolicy(max_bytes=2048).refusal("image/jpeg", 2049) is not None


def test_the_default_limit_is_five_megabytes(tmp_path: Path) -> None:
    from hotline.config import load_settings

    settings = load_settings({}, instance_path=tmp_path)
    assert media.policy_of(settings).max_bytes == 5 * MB
    assert settings.media_store is MediaStoreKind.DIRECTORY


def test_retries_double_from_thirty_seconds_to_an_hour() -> None:
    delays = [media.retry_delay(n) for n in range(1, 10)]
    assert delays[:5] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]
    assert delays[-1] == timedelta(hours=1)
    assert media.retry_delay(10_000) == timedelta(hours=1)


def test_last_error_names_no_url_and_no_number() -> None:
    error = TelephonyError(
        TelephonyErrorKind.RETRYABLE,
        "GET https://user:secret@api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1 "
        "for +13125550199 failed",
        code=20429,
        http_status=429,
    )
    described = media.describe_error(error)
    assert described == "retryable (code 20429, HTTP 429): GET [url] for [phone] failed"
    assert media.describe_error(OSError("disk full")) == "OSError: disk full"


def test_the_directory_store_keeps_files_whole_and_private(tmp_path: Path) -> None:
    store = DirectoryMediaStore(tmp_path / "media")
    session = Session()
    assert store.kind is MediaStoreKind.DIRECTORY
    key = store.put(session, 42, b"first", T0)
    assert key == "42"
    assert store.get(session, key) == b"first"
    assert store.put(session, 42, b"again", T0) == key  # a retry replaces it
    assert store.get(session, key) == b"again"
    assert [p.name for p in (tmp_path / "media").iterdir()] == ["42"]  # no temporary left
    assert (tmp_path / "media").stat().st_mode & 0o077 == 0
    assert (tmp_path / "media" / "42").stat().st_mode & 0o077 == 0
    assert store.get(session, "43") is None


@pytest.mark.parametrize("key", ["../secret", "/etc/passwd", "42/../../x", "", "4 2"])
def test_the_directory_store_never_reads_outside_its_directory(tmp_path: Path, key: str) -> None:
    (tmp_path / "secret").write_bytes(b"not media")
    store = DirectoryMediaStore(tmp_path / "media")
    assert store.get(Session(), key) is None


def test_the_media_settings_are_read_and_checked(tmp_path: Path) -> None:
    from hotline.config import ConfigError, load_settings

    settings = load_settings(
        {"HOTLINE_MEDIA_STORE": "Database", "HOTLINE_MEDIA_MAX_BYTES": "1048576"},
        instance_path=tmp_path,
    )
    assert settings.media_store is MediaStoreKind.DATABASE
    assert settings.media_max_bytes == MB
    with pytest.raises(ConfigError) as refused:
        load_settings(
            {"HOTLINE_MEDIA_STORE": "s3", "HOTLINE_MEDIA_MAX_BYTES": "5MB"}, instance_path=tmp_path
        )
    assert refused.value.problems == [
        "HOTLINE_MEDIA_STORE must be directory or database, not 's3'",
        "HOTLINE_MEDIA_MAX_BYTES must be a whole number of bytes from 1024 to 104857600",
    ]
    for too_small_or_large in ("1023", "104857601"):
        with pytest.raises(ConfigError, match="HOTLINE_MEDIA_MAX_BYTES"):
            load_settings({"HOTLINE_MEDIA_MAX_BYTES": too_small_or_large}, instance_path=tmp_path)

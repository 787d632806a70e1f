"""Configuration, read only from the environment (every variable: docs/operations.md).

The embedded default (no variables at all) is a complete development hotline: SQLite under
``instance/``, an in-process worker and the simulated phone network. Anything that looks like a
production install is checked at start-up, and a setting that could put a real caller at risk
(a browser tab ringing instead of a principal, reporter numbers under a published key) stops the
start with a message that says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers

from hotline.models import MediaStoreKind

#: The development SECRET_KEY. Refused anywhere but the embedded development default.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use"  # noqa: S105
#: The simulated network's caller id for the hotline when HOTLINE_NUMBER is unset.
DEVELOPMENT_HOTLINE_NUMBER = "+15555550100"
DEVELOPMENT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
#: Where `make run` listens unless PORT says otherwise (`make run PORT=5050`).
DEVELOPMENT_PORT = 5000
#: The largest media item of a text the hotline keeps: Twilio accepts at most 5 MB per incoming
#: MMS (all its media together) and carriers cap pictures near there or below, so a larger item
#: is not a picture a phone sent (docs/operations.md).
DEFAULT_MEDIA_MAX_BYTES = 5 * 1024 * 1024
#: HOTLINE_MEDIA_MAX_BYTES's range: from 1 KiB to 100 MiB.
MEDIA_MAX_BYTES_RANGE = (1024, 100 * 1024 * 1024)


class ConfigError(RuntimeError):
    """The environment describes an install the hotline refuses to run as."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "The hotline will not start with this configuration:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def normalize_database_url(url: str) -> str:
    """Accept the URL as operators are handed it (Heroku-style ``postgres://`` included).

    PostgreSQL always goes through psycopg 3, whatever driver the URL names or omits.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL is not a URL: {url!r}")
    base = scheme.split("+", 1)[0].lower()
    if base in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def is_postgresql_url(url: str) -> bool:
    return url.startswith("postgresql")


def parse_identity_key(value: str) -> bytes:
    """A key as Fernet.generate_key() prints it: 32 bytes in urlsafe base64."""
    text = value.strip()
    try:
        raw = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not urlsafe base64") from exc
    if base64.urlsafe_b64encode(raw).decode("ascii") != text:
        # Trailing data after the padding is silently dropped by the decoder; refuse it.
        raise ValueError("not canonical urlsafe base64")
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, not 32")
    return raw


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance_path: Path
    secret_key: str
    identity_key: bytes
    #: Older identity keys still needed to read what was written before a rotation.
    previous_identity_keys: tuple[bytes, ...]
    public_base_url: str
    hotline_number: str
    redis_url: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base_url: str | None
    smtp_url: str | None
    simulate: bool
    #: True only for the embedded default: SQLite, no Redis, simulated network.
    development: bool
    #: Tests only: read the time from this file (see hotline.core.clock.FileClock).
    clock_file: str | None = None
    #: Outbound calls per second across all workers (Twilio's default is 1 per account).
    calls_per_second: int = 1
    #: Escalation e-mails about one tip whose legs nobody confirms go out at most this often.
    escalation_email_every: timedelta = timedelta(minutes=15)
    #: Updates about one tip reach one recipient at most this often (merged meanwhile).
    update_every: timedelta = timedelta(minutes=10)
    #: Texts a minute from one number before the hotline stops answering each one (it keeps
    #: every one, and tells the agents).
    sms_flood_per_minute: int = 12
    #: Where the bytes of a text's fetched media are kept (``instance/media/`` by default).
    media_store: MediaStoreKind = MediaStoreKind.DIRECTORY
    #: Media items larger than this are refused (and deleted at the provider all the same).
    media_max_bytes: int = DEFAULT_MEDIA_MAX_BYTES
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def uses_twilio(self) -> bool:
        return self.twilio_account_sid is not None

    @property
    def embedded_worker(self) -> bool:
        return self.redis_url is None

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class _Environment:
    """The variables as load_settings reads them: a blank value counts as unset, and problems are
    collected rather than raised so that the operator sees every one of them in a single start."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._values = dict(environ)
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        return _blank_to_none(self._values.get(name))

    def problem(self, message: str) -> None:
        self.problems.append(message)


def _is_true(value: str | None) -> bool:
    return (value or "0").lower() in ("1", "true", "yes")


def _database_url(env: _Environment, instance: Path) -> str:
    raw_db = env.get("DATABASE_URL")
    if raw_db is None:
        return f"sqlite:///{(instance / 'hotline.sqlite3').as_posix()}"
    try:
        return normalize_database_url(raw_db)
    except ValueError as exc:
        env.problem(str(exc))
        return raw_db


def _twilio_credentials(env: _Environment) -> tuple[str, str] | None:
    """The account SID and auth token, or None for the simulated phone network."""
    sid = env.get("TWILIO_ACCOUNT_SID")
    token = env.get("TWILIO_AUTH_TOKEN")
    if (sid is None) != (token is None):
        env.problem(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together: set both (production) "
            "or neither (simulated phone network)"
        )
    if sid is None or token is None:
        return None
    return sid, token


def _check_twilio_install(
    env: _Environment,
    *,
    simulate_flag: bool,
    public_base_url: str | None,
    hotline_number: str | None,
) -> None:
    """What an install with real Twilio credentials cannot do without."""
    if simulate_flag:
        env.problem(
            "HOTLINE_SIMULATE=1 with Twilio credentials: the simulated phone network never "
            "runs with real credentials; unset one of them"
        )
    if public_base_url is None:
        env.problem(
            "PUBLIC_BASE_URL is required with Twilio credentials: it is the https origin "
            "Twilio calls, used to check every webhook signature"
        )
    if hotline_number is None:
        env.problem(
            "HOTLINE_NUMBER is required with Twilio credentials: it is the caller id of "
            "every alert call and text"
        )
    if env.get("SMTP_URL") is None:
        # Without it e-mails would land in the development outbox and count as sent: every
        # principal's e-mail silently dropped.
        env.problem(
            "SMTP_URL is required with Twilio credentials: without it notification e-mails "
            "would be kept in the development outbox and never reach anyone"
        )


def _check_simulation_is_not_production(
    env: _Environment, *, simulate_flag: bool, redis_url: str | None, postgres: bool
) -> None:
    """Without Twilio credentials, production-looking services need HOTLINE_SIMULATE=1: otherwise
    alert calls would silently ring a browser tab instead of a principal."""
    if (redis_url is None and not postgres) or simulate_flag:
        return
    what = " and ".join(
        name
        for name, present in (("REDIS_URL", redis_url), ("a PostgreSQL DATABASE_URL", postgres))
        if present
    )
    env.problem(
        f"{what} without Twilio credentials would run the simulated phone network in "
        "what looks like production (alert calls would ring a browser tab). Set "
        "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or HOTLINE_SIMULATE=1 for a training "
        "install"
    )


def _public_origin(
    env: _Environment, public_base_url: str, *, uses_twilio: bool, api_base: str | None
) -> str:
    """PUBLIC_BASE_URL as given: an http(s) origin, https for real Twilio (which refuses to call
    plain http) unless TWILIO_API_BASE_URL points at a stand-in."""
    parts = urlsplit(public_base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        env.problem(f"PUBLIC_BASE_URL must be an http(s) origin, not {public_base_url!r}")
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        env.problem(f"PUBLIC_BASE_URL is an origin (scheme and host) only, not {public_base_url!r}")
    elif uses_twilio and parts.scheme != "https" and api_base is None:
        env.problem("PUBLIC_BASE_URL must be https when talking to real Twilio")
    return public_base_url.rstrip("/")


def _development_base_url(env: _Environment) -> str:
    """Without PUBLIC_BASE_URL the hotline is where `make run` listens (PORT, or 5000)."""
    port = env.get("PORT")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        env.problem(f"PORT must be a TCP port number, not {port!r}")
        port = None
    return DEVELOPMENT_PUBLIC_BASE_URL if port is None else f"http://127.0.0.1:{int(port)}"


def _is_e164(number: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
        return phonenumbers.is_valid_number(parsed) and number == phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        return False


def _hotline_number(env: _Environment, hotline_number: str | None) -> str:
    if hotline_number is None:
        return DEVELOPMENT_HOTLINE_NUMBER
    if not _is_e164(hotline_number):
        env.problem("HOTLINE_NUMBER must be an E.164 number such as +13125550100")
    return hotline_number


def _twilio_api_base_url(env: _Environment, api_base: str | None) -> str | None:
    if api_base is None:
        return None
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        env.problem(f"TWILIO_API_BASE_URL must be an http(s) URL, not {api_base!r}")
    return api_base.rstrip("/")


def _secret_key(env: _Environment, *, development: bool) -> str:
    secret_key = env.get("SECRET_KEY")
    if secret_key is not None and secret_key != DEVELOPMENT_SECRET_KEY:
        return secret_key
    if not development:
        env.problem("SECRET_KEY must be set to a long random value outside development")
    return DEVELOPMENT_SECRET_KEY


def _identity_key(env: _Environment, *, development: bool) -> bytes:
    """The current identity key; empty only in development, where none is required."""
    raw_identity = env.get("HOTLINE_IDENTITY_KEY")
    if raw_identity is None:
        if not development:
            env.problem(
                "HOTLINE_IDENTITY_KEY is required outside development (32 random bytes in "
                'urlsafe base64, as `python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"` prints)'
            )
        return b""
    try:
        return parse_identity_key(raw_identity)
    except ValueError as exc:
        env.problem(
            f"HOTLINE_IDENTITY_KEY is malformed ({exc}); it must be 32 bytes in urlsafe base64"
        )
        return b""


def _previous_identity_keys(env: _Environment) -> tuple[bytes, ...]:
    """HOTLINE_IDENTITY_KEY_PREVIOUS, comma-separated; blank items are skipped but still counted,
    so that a problem names the key's position as the operator wrote it."""
    previous: list[bytes] = []
    for n, item in enumerate((env.get("HOTLINE_IDENTITY_KEY_PREVIOUS") or "").split(","), 1):
        if not item.strip():
            continue
        try:
            previous.append(parse_identity_key(item))
        except ValueError as exc:
            env.problem(f"HOTLINE_IDENTITY_KEY_PREVIOUS key {n} is malformed ({exc})")
    return tuple(previous)


def _calls_per_second(env: _Environment) -> int:
    raw_cps = env.get("HOTLINE_CALLS_PER_SECOND")
    if raw_cps is None:
        return 1
    if raw_cps.isdigit() and 1 <= int(raw_cps) <= 1000:
        return int(raw_cps)
    env.problem("HOTLINE_CALLS_PER_SECOND must be a whole number from 1 to 1000")
    return 1


def _sms_flood_per_minute(env: _Environment) -> int:
    raw = env.get("HOTLINE_SMS_FLOOD_PER_MINUTE")
    if raw is None:
        return 12
    if raw.isdigit() and 1 <= int(raw) <= 600:
        return int(raw)
    env.problem("HOTLINE_SMS_FLOOD_PER_MINUTE must be a whole number from 1 to 600")
    return 12


def _minutes(env: _Environment, name: str, *, default: int) -> timedelta:
    """A whole number of minutes, at most a day."""
    raw = env.get(name)
    if raw is None:
        return timedelta(minutes=default)
    if raw.isdigit() and 1 <= int(raw) <= 24 * 60:
        return timedelta(minutes=int(raw))
    env.problem(f"{name} must be a whole number of minutes from 1 to 1440")
    return timedelta(minutes=default)


def _media_store(env: _Environment) -> MediaStoreKind:
    raw = env.get("HOTLINE_MEDIA_STORE")
    if raw is None:
        return MediaStoreKind.DIRECTORY
    try:
        return MediaStoreKind(raw.lower())
    except ValueError:
        choices = " or ".join(kind.value for kind in MediaStoreKind)
        env.problem(f"HOTLINE_MEDIA_STORE must be {choices}, not {raw!r}")
        return MediaStoreKind.DIRECTORY


def _media_max_bytes(env: _Environment) -> int:
    raw = env.get("HOTLINE_MEDIA_MAX_BYTES")
    if raw is None:
        return DEFAULT_MEDIA_MAX_BYTES
    low, high = MEDIA_MAX_BYTES_RANGE
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    env.problem(f"HOTLINE_MEDIA_MAX_BYTES must be a whole number of bytes from {low} to {high}")
    return DEFAULT_MEDIA_MAX_BYTES


def _clock_file(env: _Environment, *, uses_twilio: bool, api_base: str | None) -> str | None:
    clock_file = env.get("HOTLINE_CLOCK_FILE")
    if clock_file is not None and uses_twilio and api_base is None:
        env.problem("HOTLINE_CLOCK_FILE (a test clock) is refused with real Twilio")
    return clock_file


def load_settings(
    environ: Mapping[str, str] | None = None, *, instance_path: Path | None = None
) -> Settings:
    """Read and check the environment. Raises ConfigError listing every problem at once.

    The readers below run in a fixed order because that is the order the problems are listed in.
    """
    env = _Environment(os.environ if environ is None else environ)

    instance = instance_path or Path(env.get("HOTLINE_INSTANCE_PATH") or Path.cwd() / "instance")
    database_url = _database_url(env, instance)
    postgres = is_postgresql_url(database_url)

    redis_url = env.get("REDIS_URL")
    twilio = _twilio_credentials(env)
    uses_twilio = twilio is not None
    simulate_flag = _is_true(env.get("HOTLINE_SIMULATE"))
    raw_public_base_url = env.get("PUBLIC_BASE_URL")
    raw_hotline_number = env.get("HOTLINE_NUMBER")
    raw_api_base = env.get("TWILIO_API_BASE_URL")

    if uses_twilio:
        _check_twilio_install(
            env,
            simulate_flag=simulate_flag,
            public_base_url=raw_public_base_url,
            hotline_number=raw_hotline_number,
        )
    else:
        _check_simulation_is_not_production(
            env, simulate_flag=simulate_flag, redis_url=redis_url, postgres=postgres
        )
    development = not uses_twilio and redis_url is None and not postgres

    if raw_public_base_url is None:
        public_base_url = _development_base_url(env)
    else:
        public_base_url = _public_origin(
            env, raw_public_base_url, uses_twilio=uses_twilio, api_base=raw_api_base
        )
    hotline_number = _hotline_number(env, raw_hotline_number)
    api_base = _twilio_api_base_url(env, raw_api_base)
    secret_key = _secret_key(env, development=development)
    identity_key = _identity_key(env, development=development)
    previous_identity_keys = _previous_identity_keys(env)
    calls_per_second = _calls_per_second(env)
    escalation_email_every = _minutes(env, "HOTLINE_ESCALATION_EMAIL_MINUTES", default=15)
    update_every = _minutes(env, "HOTLINE_UPDATE_MINUTES", default=10)
    sms_flood_per_minute = _sms_flood_per_minute(env)
    media_store = _media_store(env)
    media_max_bytes = _media_max_bytes(env)
    clock_file = _clock_file(env, uses_twilio=uses_twilio, api_base=api_base)

    if env.problems:
        raise ConfigError(env.problems)

    return Settings(
        database_url=database_url,
        instance_path=instance,
        secret_key=secret_key,
        identity_key=identity_key,
        previous_identity_keys=previous_identity_keys,
        public_base_url=public_base_url,
        hotline_number=hotline_number,
        redis_url=redis_url,
        twilio_account_sid=twilio[0] if twilio else None,
        twilio_auth_token=twilio[1] if twilio else None,
        twilio_api_base_url=api_base,
        smtp_url=env.get("SMTP_URL"),
        simulate=not uses_twilio,
        development=development,
        clock_file=clock_file,
        calls_per_second=calls_per_second,
        escalation_email_every=escalation_email_every,
        update_every=update_every,
        sms_flood_per_minute=sms_flood_per_minute,
        media_store=media_store,
        media_max_bytes=media_max_bytes,
    )

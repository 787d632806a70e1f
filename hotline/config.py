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

#: The development SECRET_KEY. Refused anywhere but the embedded development default.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use"  # noqa: S105
#: The simulated network's caller id for the hotline when HOTLINE_NUMBER is unset.
DEVELOPMENT_HOTLINE_NUMBER = "+15555550100"
DEVELOPMENT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
#: Where `make run` listens unless PORT says otherwise (`make run PORT=5050`).
DEVELOPMENT_PORT = 5000


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


def load_settings(
    environ: Mapping[str, str] | None = None, *, instance_path: Path | None = None
) -> Settings:
    """Read and check the environment. Raises ConfigError listing every problem at once."""
    env = dict(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        return _blank_to_none(env.get(name))

    problems: list[str] = []

    instance = instance_path or Path(get("HOTLINE_INSTANCE_PATH") or Path.cwd() / "instance")

    raw_db = get("DATABASE_URL")
    if raw_db is None:
        database_url = f"sqlite:///{(instance / 'hotline.sqlite3').as_posix()}"
    else:
        try:
            database_url = normalize_database_url(raw_db)
        except ValueError as exc:
            problems.append(str(exc))
            database_url = raw_db
    postgres = is_postgresql_url(database_url)

    redis_url = get("REDIS_URL")
    sid = get("TWILIO_ACCOUNT_SID")
    token = get("TWILIO_AUTH_TOKEN")
    simulate_flag = (get("HOTLINE_SIMULATE") or "0").lower() in ("1", "true", "yes")
    if (sid is None) != (token is None):
        problems.append(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together: set both (production) "
            "or neither (simulated phone network)"
        )
    uses_twilio = sid is not None and token is not None
    public_base_url = get("PUBLIC_BASE_URL")
    hotline_number = get("HOTLINE_NUMBER")
    api_base = get("TWILIO_API_BASE_URL")

    if uses_twilio:
        if simulate_flag:
            problems.append(
                "HOTLINE_SIMULATE=1 with Twilio credentials: the simulated phone network never "
                "runs with real credentials; unset one of them"
            )
        if public_base_url is None:
            problems.append(
                "PUBLIC_BASE_URL is required with Twilio credentials: it is the https origin "
                "Twilio calls, used to check every webhook signature"
            )
        if hotline_number is None:
            problems.append(
                "HOTLINE_NUMBER is required with Twilio credentials: it is the caller id of "
                "every alert call and text"
            )
        if get("SMTP_URL") is None:
            # Without it e-mails would land in the development outbox and count as sent: every
            # principal's e-mail silently dropped.
            problems.append(
                "SMTP_URL is required with Twilio credentials: without it notification e-mails "
                "would be kept in the development outbox and never reach anyone"
            )
    elif (redis_url is not None or postgres) and not simulate_flag:
        what = " and ".join(
            name
            for name, present in (("REDIS_URL", redis_url), ("a PostgreSQL DATABASE_URL", postgres))
            if present
        )
        problems.append(
            f"{what} without Twilio credentials would run the simulated phone network in "
            "what looks like production (alert calls would ring a browser tab). Set "
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or HOTLINE_SIMULATE=1 for a training "
            "install"
        )

    development = not uses_twilio and redis_url is None and not postgres
    simulate = not uses_twilio

    if public_base_url is not None:
        parts = urlsplit(public_base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"PUBLIC_BASE_URL must be an http(s) origin, not {public_base_url!r}")
        elif parts.path not in ("", "/") or parts.query or parts.fragment:
            problems.append(
                f"PUBLIC_BASE_URL is an origin (scheme and host) only, not {public_base_url!r}"
            )
        elif uses_twilio and parts.scheme != "https" and api_base is None:
            problems.append("PUBLIC_BASE_URL must be https when talking to real Twilio")
        public_base_url = public_base_url.rstrip("/")
    else:
        port = get("PORT")
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            problems.append(f"PORT must be a TCP port number, not {port!r}")
            port = None
        public_base_url = (
            DEVELOPMENT_PUBLIC_BASE_URL if port is None else f"http://127.0.0.1:{int(port)}"
        )

    if hotline_number is not None:
        try:
            parsed = phonenumbers.parse(hotline_number, None)
            ok = phonenumbers.is_valid_number(
                parsed
            ) and hotline_number == phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.E164
            )
        except phonenumbers.NumberParseException:
            ok = False
        if not ok:
            problems.append("HOTLINE_NUMBER must be an E.164 number such as +13125550100")
    else:
        hotline_number = DEVELOPMENT_HOTLINE_NUMBER

    if api_base is not None:
        parts = urlsplit(api_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"TWILIO_API_BASE_URL must be an http(s) URL, not {api_base!r}")
        api_base = api_base.rstrip("/")

    secret_key = get("SECRET_KEY")
    if secret_key is None or secret_key == DEVELOPMENT_SECRET_KEY:
        if not development:
            problems.append("SECRET_KEY must be set to a long random value outside development")
        secret_key = DEVELOPMENT_SECRET_KEY

    identity_key = b""
    previous: list[bytes] = []
    raw_identity = get("HOTLINE_IDENTITY_KEY")
    if raw_identity is None:
        if not development:
            problems.append(
                "HOTLINE_IDENTITY_KEY is required outside development (32 random bytes in "
                'urlsafe base64, as `python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"` prints)'
            )
    else:
        try:
            identity_key = parse_identity_key(raw_identity)
        except ValueError as exc:
            problems.append(
                f"HOTLINE_IDENTITY_KEY is malformed ({exc}); it must be 32 bytes in urlsafe base64"
            )
    for n, item in enumerate((get("HOTLINE_IDENTITY_KEY_PREVIOUS") or "").split(","), 1):
        if not item.strip():
            continue
        try:
            previous.append(parse_identity_key(item))
        except ValueError as exc:
            problems.append(f"HOTLINE_IDENTITY_KEY_PREVIOUS key {n} is malformed ({exc})")

    calls_per_second = 1
    raw_cps = get("HOTLINE_CALLS_PER_SECOND")
    if raw_cps is not None:
        if raw_cps.isdigit() and 1 <= int(raw_cps) <= 1000:
            calls_per_second = int(raw_cps)
        else:
            problems.append("HOTLINE_CALLS_PER_SECOND must be a whole number from 1 to 1000")

    minutes: dict[str, int] = {}
    for name, default in (
        ("HOTLINE_ESCALATION_EMAIL_MINUTES", 15),
        ("HOTLINE_UPDATE_MINUTES", 10),
    ):
        raw = get(name)
        minutes[name] = default
        if raw is not None:
            if raw.isdigit() and 1 <= int(raw) <= 24 * 60:
                minutes[name] = int(raw)
            else:
                problems.append(f"{name} must be a whole number of minutes from 1 to 1440")

    clock_file = get("HOTLINE_CLOCK_FILE")
    if clock_file is not None and uses_twilio and api_base is None:
        problems.append("HOTLINE_CLOCK_FILE (a test clock) is refused with real Twilio")

    if problems:
        raise ConfigError(problems)

    return Settings(
        database_url=database_url,
        instance_path=instance,
        secret_key=secret_key,
        identity_key=identity_key,
        previous_identity_keys=tuple(previous),
        public_base_url=public_base_url,
        hotline_number=hotline_number,
        redis_url=redis_url,
        twilio_account_sid=sid if uses_twilio else None,
        twilio_auth_token=token if uses_twilio else None,
        twilio_api_base_url=api_base,
        smtp_url=get("SMTP_URL"),
        simulate=simulate,
        development=development,
        clock_file=clock_file,
        calls_per_second=calls_per_second,
        escalation_email_every=timedelta(minutes=minutes["HOTLINE_ESCALATION_EMAIL_MINUTES"]),
        update_every=timedelta(minutes=minutes["HOTLINE_UPDATE_MINUTES"]),
    )

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import (
    DEVELOPMENT_SECRET_KEY,
    ConfigError,
    load_settings,
    normalize_database_url,
)

KEY = "5fS3y1jGm8oqsp2zC2d0qgE9Bq9tRJrj6f2mX0m8n1Y="
PRODUCTION = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "t" * 32,
    "PUBLIC_BASE_URL": "https://tips.example.org",
    "HOTLINE_NUMBER": "+13125550100",
    "DATABASE_URL": "postgres://u:p@db.example.org:5432/hotline",
    "REDIS_URL": "redis://cache.example.org:6379/0",
    "SECRET_KEY": "a-long-random-secret",
    "HOTLINE_IDENTITY_KEY": KEY,
    "SMTP_URL": "smtp://mailer:secret@smtp.example.org:587",
}


def refusal(env: dict[str, str], tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env, instance_path=tmp_path)
    return str(info.value)


def test_embedded_default_needs_nothing(tmp_path: Path) -> None:
    s = load_settings({}, instance_path=tmp_path)
    assert s.development
    assert s.simulate
    assert s.embedded_worker
    assert s.database_url == f"sqlite:///{(tmp_path / 'hotline.sqlite3').as_posix()}"
    assert s.secret_key == DEVELOPMENT_SECRET_KEY
    assert s.identity_key == b""  # created under instance/ by the app


def test_complete_production_settings_are_accepted(tmp_path: Path) -> None:
    s = load_settings(PRODUCTION, instance_path=tmp_path)
    assert not s.development
    assert not s.simulate
    assert s.uses_twilio
    assert s.database_url == "postgresql+psycopg://u:p@db.example.org:5432/hotline"
    assert len(s.identity_key) == 32


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        (
            "postgresql://u:p@h:5433/db?sslmode=require",
            "postgresql+psycopg://u:p@h:5433/db?sslmode=require",
        ),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_as_operators_are_given_it(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("missing", ["PUBLIC_BASE_URL", "HOTLINE_NUMBER", "SMTP_URL"])
def test_twilio_credentials_need_public_url_and_number(missing: str, tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    assert missing in refusal(env, tmp_path)


def test_without_twilio_the_development_outbox_may_stay(tmp_path: Path) -> None:
    """A training install on the simulated network keeps e-mails in the dev outbox."""
    env = {"SECRET_KEY": "s", "HOTLINE_IDENTITY_KEY": KEY, "HOTLINE_SIMULATE": "1"}
    s = load_settings({**env, "REDIS_URL": "redis://localhost:6379/0"}, instance_path=tmp_path)
    assert s.simulate
    assert s.smtp_url is None


def test_twilio_without_smtp_never_uses_the_development_outbox(tmp_path: Path) -> None:
    from hotline import create_app

    env = {k: v for k, v in PRODUCTION.items() if k != "SMTP_URL"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    with pytest.raises(ConfigError) as info:
        create_app(environ=env, instance_path=tmp_path)
    assert "e-mails" in str(info.value)


def test_half_the_twilio_credentials_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "TWILIO_AUTH_TOKEN"}
    assert "go together" in refusal(env, tmp_path)


@pytest.mark.parametrize(
    "extra",
    [
        {"REDIS_URL": "redis://localhost:6379/0"},
        {"DATABASE_URL": "postgresql://u@localhost/hotline"},
        {"DATABASE_URL": "postgres://u@localhost/hotline"},
    ],
)
def test_simulated_network_refused_where_production_is_likely(
    extra: dict[str, str], tmp_path: Path
) -> None:
    env = {"SECRET_KEY": "s", "HOTLINE_IDENTITY_KEY": KEY, **extra}
    message = refusal(env, tmp_path)
    assert "simulated phone network" in message
    assert "HOTLINE_SIMULATE=1" in message
    # ...unless a training install asks for it.
    s = load_settings({**env, "HOTLINE_SIMULATE": "1"}, instance_path=tmp_path)
    assert s.simulate
    assert not s.development


def test_simulation_never_runs_with_real_credentials(tmp_path: Path) -> None:
    assert "never runs with real credentials" in refusal(
        {**PRODUCTION, "HOTLINE_SIMULATE": "1"}, tmp_path
    )


@pytest.mark.parametrize("value", [None, "", "not-base64!!", "c2hvcnQ=", KEY + "AAAA"])
def test_identity_key_missing_or_malformed_outside_development(
    value: str | None, tmp_path: Path
) -> None:
    env = dict(PRODUCTION)
    if value is None:
        del env["HOTLINE_IDENTITY_KEY"]
    else:
        env["HOTLINE_IDENTITY_KEY"] = value
    assert "HOTLINE_IDENTITY_KEY" in refusal(env, tmp_path)


def test_malformed_identity_key_refused_even_in_development(tmp_path: Path) -> None:
    assert "malformed" in refusal({"HOTLINE_IDENTITY_KEY": "c2hvcnQ="}, tmp_path)


@pytest.mark.parametrize("value", [None, DEVELOPMENT_SECRET_KEY])
def test_default_secret_key_outside_development(value: str | None, tmp_path: Path) -> None:
    env = dict(PRODUCTION)
    env.pop("SECRET_KEY")
    if value is not None:
        env["SECRET_KEY"] = value
    assert "SECRET_KEY" in refusal(env, tmp_path)


def test_training_install_needs_its_own_secrets(tmp_path: Path) -> None:
    message = refusal({"REDIS_URL": "redis://localhost", "HOTLINE_SIMULATE": "1"}, tmp_path)
    assert "SECRET_KEY" in message
    assert "HOTLINE_IDENTITY_KEY" in message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PUBLIC_BASE_URL", "tips.example.org", "http(s) origin"),
        ("PUBLIC_BASE_URL", "https://tips.example.org/app", "origin"),
        ("PUBLIC_BASE_URL", "http://tips.example.org", "https"),
        ("HOTLINE_NUMBER", "312-555-0100", "E.164"),
        ("HOTLINE_NUMBER", "+1555", "E.164"),
        ("HOTLINE_SMS_FLOOD_PER_MINUTE", "0", "from 1 to 600"),
        ("HOTLINE_SMS_FLOOD_PER_MINUTE", "many", "from 1 to 600"),
    ],
)
def test_malformed_values(name: str, value: str, says: str, tmp_path: Path) -> None:
    assert says in refusal({**PRODUCTION, name: value}, tmp_path)


def test_the_flood_rate_is_a_setting(tmp_path: Path) -> None:
    assert load_settings({}, instance_path=tmp_path).sms_flood_per_minute == 12
    env = {**PRODUCTION, "HOTLINE_SMS_FLOOD_PER_MINUTE": "30"}
    assert load_settings(env, instance_path=tmp_path).sms_flood_per_minute == 30


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in PRODUCTION.items()
        if k not in ("PUBLIC_BASE_URL", "HOTLINE_NUMBER", "SECRET_KEY")
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env, instance_path=tmp_path)
    assert len(info.value.problems) == 3


def test_mock_api_base_allows_plain_http_origin(tmp_path: Path) -> None:
    env = {
        **PRODUCTION,
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:4010/",
    }
    s = load_settings(env, instance_path=tmp_path)
    assert s.twilio_api_base_url == "http://127.0.0.1:4010"


def test_app_refuses_to_start(tmp_path: Path) -> None:
    from hotline import create_app

    with pytest.raises(ConfigError):
        create_app(environ={"REDIS_URL": "redis://localhost"}, instance_path=tmp_path)


def test_make_run_takes_a_port(tmp_path: Path) -> None:
    assert load_settings({}, instance_path=tmp_path).public_base_url == "http://127.0.0.1:5000"
    s = load_settings({"PORT": "5050"}, instance_path=tmp_path)
    assert s.public_base_url == "http://127.0.0.1:5050"
    assert "PORT must be a TCP port" in refusal({"PORT": "http"}, tmp_path)


def test_cli_help_prints_no_migration_log_lines(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOTLINE_INSTANCE_PATH": str(tmp_path)}
    for name in ("DATABASE_URL", "REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "hotline", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "directory" in out.stdout
    assert "alembic" not in out.stdout + out.stderr

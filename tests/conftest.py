from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from hotline import create_app, migrate
from hotline.background.jobs import JobQueue
from hotline.config import load_settings
from hotline.core.clock import ManualClock
from hotline.email import EmailSender
from hotline.email.fake import FakeEmail
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from tests.support.services import throwaway_postgres_database
from tests.support.twilio_driver import TwilioDriver

# Every test runs behind the live-network guard: reaching past the loopback fails it loudly.
pytest_plugins = [
    "tests.support.live_network_guard",
    "tests.support.twilio_fake.pytest_plugin",
    "tests.support.dispatch_world",
    "tests.support.live_twilio",
    "tests.support.dev_phone",
    "tests.support.calendars",
    "tests.support.email_servers",
]

TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
TEST_PUBLIC_BASE_URL = "https://hotline.example.org"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'hotline.sqlite3').as_posix()}"


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Run the test on both backends, each migrated by Alembic from empty."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path, clock: ManualClock) -> Iterator[AppFactory]:
    apps: list[Flask] = []

    def factory(
        database_url: str | None = None,
        *,
        migrated: bool = True,
        telephony: FakeTelephony | None = None,
        email: EmailSender | None = None,
        jobs: JobQueue | None = None,
        **env: str,
    ) -> Flask:
        environ = {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "PUBLIC_BASE_URL": TEST_PUBLIC_BASE_URL,
            "HOTLINE_NUMBER": "+13125550100",
            # Required with Twilio credentials; the e-mail port itself is the injected fake.
            "SMTP_URL": "smtp://127.0.0.1:2525",
            "SECRET_KEY": "test-secret-key",
            "HOTLINE_IDENTITY_KEY": "5fS3y1jGm8oqsp2zC2d0qgE9Bq9tRJrj6f2mX0m8n1Y=",
            # Most tests are not about the calls-per-second budget (tests/test_call_budget.py is).
            "HOTLINE_CALLS_PER_SECOND": "50",
            "DATABASE_URL": database_url or f"sqlite:///{(tmp_path / 'app.sqlite3').as_posix()}",
            **env,
        }
        settings = load_settings(environ, instance_path=tmp_path / "instance")
        app = create_app(
            settings,
            clock=clock,
            telephony=telephony or FakeTelephony(),
            email=email or FakeEmail(),
            jobs=jobs,
        )
        app.config["TESTING"] = True
        if migrated:
            migrate.upgrade(hotline(app).db.engine)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        hotline(app).db.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def twilio(app: Flask) -> TwilioDriver:
    return TwilioDriver(app.test_client(), TEST_PUBLIC_BASE_URL, TEST_AUTH_TOKEN)

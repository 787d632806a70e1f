"""The ``live`` fixture: the app sending through the production Twilio adapter to the local
fake of Twilio's REST API (a pytest plugin, registered in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from hotline.core.clock import ManualClock
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.services import hotline
from hotline.telephony.twilio_adapter import TwilioTelephony
from tests.support.dispatch_world import SCHOOL_HOURS, World
from tests.support.twilio_fake import PATIENT_READ_TIMEOUT, TwilioFake


@pytest.fixture
def live(
    request: pytest.FixtureRequest,
    make_app: Callable[..., Flask],
    clock: ManualClock,
    twilio_fake: TwilioFake,
) -> Iterator[tuple[World, TwilioFake]]:
    """The app on the real adapter; ``indirect`` parametrization sets its read timeout."""
    clock.set(SCHOOL_HOURS)
    adapter = TwilioTelephony(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        api_base_url=twilio_fake.base_url,
        read_timeout=getattr(request, "param", PATIENT_READ_TIMEOUT),
    )
    app = make_app(telephony=adapter, email=FakeEmail(), HOTLINE_NUMBER="+15005550006")
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    yield World(app, clock, adapter, FakeEmail()), twilio_fake  # type: ignore[arg-type]
    adapter.close()

"""The simulated network and the real app over real HTTP: the app cannot tell it from Twilio."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from hotline import create_app, migrate
from hotline.core.clock import ManualClock
from hotline.models import Call, Recording, WebhookReceipt
from hotline.services import hotline
from hotline.telephony.ports import CallRequest
from hotline.telephony.simulated import SimulatedPhoneNetwork

CONTACT = "+13125550142"


@pytest.fixture
def served(tmp_path: Path, clock: ManualClock) -> Iterator[Flask]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(
        environ={
            "DATABASE_URL": f"sqlite:///{(tmp_path / 'dev.sqlite3').as_posix()}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        },
        instance_path=tmp_path / "instance",
        clock=clock,
    )
    migrate.upgrade(hotline(app).db.engine)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(5)
    hotline(app).db.dispose()


def test_development_app_runs_on_the_simulated_network(served: Flask) -> None:
    services = hotline(served)
    assert isinstance(services.telephony, SimulatedPhoneNetwork)
    assert services.simulator is services.telephony
    assert services.settings.development
    assert not services.settings.uses_twilio


def test_outbound_call_status_callbacks_reach_the_app_signed(
    served: Flask, clock: ManualClock
) -> None:
    services = hotline(served)
    sim = services.simulator
    assert sim is not None
    base = services.settings.public_base_url
    placed = sim.place_call(
        CallRequest(
            to=CONTACT,
            from_=services.settings.hotline_number,
            twiml=(
                "<Response><Say>Critical report.</Say>"
                # Inline TwiML has no URL of its own, so <Record> needs an absolute action; an
                # empty TwiML answer from it ends the call.
                f'<Record maxLength="10" action="{base}/twilio/recording/status" '
                f'recordingStatusCallback="{base}/twilio/recording/status"/></Response>'
            ),
            status_callback=f"{base}/twilio/voice/status",
        )
    )
    sim.tick()
    sim.answer(placed.sid, by="human")
    sim.record(placed.sid, text_or_audio="I got it", finish_key="#", duration=3)
    clock.advance(5)
    sim.tick()
    with services.db.sessionmaker() as s:
        call = s.scalars(select(Call).where(Call.sid == placed.sid)).one()
        assert call.status == "completed"
        assert call.last_sequence_number >= 2
        recording = s.scalars(select(Recording)).one()
        assert recording.status == "completed"
        assert recording.call_id == call.id
        endpoints = sorted(r.endpoint for r in s.scalars(select(WebhookReceipt)))
    # Every delivery was accepted (signed correctly), none refused.
    refused = [d for d in sim.deliveries(call_sid=placed.sid) if d.status == 403]
    assert refused == []
    assert "voice.status" in endpoints
    assert "recording.status" in endpoints


def test_a_redelivered_callback_changes_nothing(served: Flask) -> None:
    services = hotline(served)
    sim = services.simulator
    assert sim is not None
    base = services.settings.public_base_url
    placed = sim.place_call(
        CallRequest(
            to=CONTACT,
            from_=services.settings.hotline_number,
            twiml="<Response><Say>Hello</Say></Response>",
            status_callback=f"{base}/twilio/voice/status",
        )
    )
    sim.tick()
    sim.answer(placed.sid, by="human")
    sim.tick()
    with services.db.sessionmaker() as s:
        before = len(s.scalars(select(WebhookReceipt)).all())
    first = sim.deliveries(call_sid=placed.sid)[0]
    again = sim.redeliver(first.id)
    assert again.status == 200
    with services.db.sessionmaker() as s:
        assert len(s.scalars(select(WebhookReceipt)).all()) == before
        assert s.scalars(select(Call)).one().status == "completed"

"""Playing an alert call (the call a contact receives) with the Twilio-faithful driver."""

from __future__ import annotations

from hotline.models import Notification, NotificationChannel
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import World
from tests.support.ivr_driver import VoiceDriver


def alert_driver(world: World, notification_id: int, *, callbacks: bool = True) -> VoiceDriver:
    return VoiceDriver(
        world.app.test_client(),
        TEST_PUBLIC_BASE_URL,
        TEST_AUTH_TOKEN,
        voice_path=f"/twilio/alert/voice?n={notification_id}",
        status_path=f"/twilio/alert/status?n={notification_id}" if callbacks else None,
    )


def first_call(world: World, tip_id: int) -> Notification:
    return world.rows(tip_id, channel=NotificationChannel.VOICE, position=0)[0]

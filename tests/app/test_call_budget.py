"""The calls-per-second budget (shared through Redis), spacing of calls to one number, and one
call for several open Critical tips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotline.background.ratelimit import LocalRateLimiter, RedisRateLimiter, routine_share
from hotline.core.clock import ManualClock
from hotline.directory import import_directory, sample_directory
from hotline.email.fake import FakeEmail
from hotline.models import LegKind, LegState, NotificationChannel
from hotline.services import hotline
from hotline.telephony.fake import FakeTelephony
from tests.conftest import TEST_AUTH_TOKEN, TEST_PUBLIC_BASE_URL
from tests.support.dispatch_world import SCHOOL_HOURS, World
from tests.support.ivr_driver import VoiceDriver
from tests.support.services import require_redis


def test_local_budget_grants_per_second_and_keeps_half_for_critical(clock: ManualClock) -> None:
    limiter = LocalRateLimiter(4, clock.now)
    assert [limiter.acquire(critical=False) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert [limiter.acquire(critical=True) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    clock.advance(1)
    assert limiter.acquire(critical=True) == 0.0


def test_a_budget_of_one_leaves_routine_calls_every_other_second() -> None:
    assert [routine_share(1, w) for w in range(4)] == [1, 0, 1, 0]
    assert routine_share(5, 0) == 2


@pytest.mark.redis
def test_two_workers_share_one_budget_through_redis(clock: ManualClock) -> None:
    url = require_redis()
    client_a, client_b = redis.Redis.from_url(url), redis.Redis.from_url(url)
    prefix = f"test-cps-{id(clock)}"
    a = RedisRateLimiter(client_a, 3, clock.now, prefix=prefix)
    b = RedisRateLimiter(client_b, 3, clock.now, prefix=prefix)
    granted = [lim.acquire(critical=True) == 0.0 for lim in (a, b, a, b, a, b, a, b)]
    assert granted.count(True) == 3  # across both workers, not 3 each
    clock.advance(1)
    assert b.acquire(critical=True) == 0.0
    assert a.acquire(critical=True) == 0.0


def test_an_unreachable_budget_lets_the_call_go(clock: ManualClock) -> None:
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    assert RedisRateLimiter(client, 1, clock.now).acquire(critical=True) == 0.0


@pytest.fixture
def slow_world(make_app: Callable[..., Flask], clock: ManualClock) -> World:
    """The dispatch world with Twilio's default budget: one call per second."""
    phone, mail = FakeTelephony(), FakeEmail()
    clock.set(SCHOOL_HOURS)
    app = make_app(telephony=phone, email=mail, HOTLINE_CALLS_PER_SECOND="1")
    assert import_directory(hotline(app).db, clock, sample_directory()).ok
    return World(app, clock, phone, mail)


def numbers(world: World) -> list[str]:
    return [c.to for c in world.phone.calls]


def test_the_budget_spreads_calls_over_seconds(slow_world: World) -> None:
    slow_world.tip()
    slow_world.run()
    assert numbers(slow_world) == ["+13125550111"]
    slow_world.clock.advance(1)
    slow_world.run()
    assert numbers(slow_world) == ["+13125550111", "+13125550190"]


def test_several_critical_tips_for_one_person_become_one_call(world: World) -> None:
    first, second = world.tip(), world.tip(tip_type="self_harm")
    world.run()
    principal = [c for c in world.phone.calls if c.to == "+13125550111"]
    assert len(principal) == 1
    assert principal[0].url is not None
    assert principal[0].url.count("n=") == 2
    driver = VoiceDriver(
        world.app.test_client(),
        TEST_PUBLIC_BASE_URL,
        TEST_AUTH_TOKEN,
        voice_path=principal[0].url.removeprefix(TEST_PUBLIC_BASE_URL),
        status_path=None,
    )
    call = driver.call(to="+13125550111")
    assert "There are 2 critical safety reports" in call.heard_text_since_last_action()
    call.press("1")
    assert "is recorded" in call.last_heard_text()
    for tip_id in (first, second):
        assert world.legs(tip_id)[LegKind.POC].state is LegState.CONFIRMED


def test_repeat_calls_to_one_number_are_spaced(world: World) -> None:
    world.tip()
    world.run()
    world.clock.advance(10)
    later = world.tip("1101", tip_type="bomb_threat")
    world.run()
    assert numbers(world).count("+13125550111") == 1  # not again 10 seconds later
    world.clock.advance(20)
    world.run()
    assert numbers(world).count("+13125550111") == 2
    assert world.rows(later, channel=NotificationChannel.VOICE, position=0)[0].sent_at == (
        SCHOOL_HOURS + timedelta(seconds=30)
    )


def test_spacing_never_delays_a_critical_call_past_its_deadline(world: World) -> None:
    world.tip()
    world.run()
    world.clock.advance(5)
    late = world.tip(
        "1101", tip_type="weapon", received_at=world.clock.now() - timedelta(minutes=19)
    )
    world.run()
    assert numbers(world).count("+13125550111") == 2  # called at once despite the spacing
    assert world.rows(late, channel=NotificationChannel.VOICE, position=0)[0].sent_at == (
        world.clock.now()
    )

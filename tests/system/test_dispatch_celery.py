"""The dispatcher's Celery path for real: ``celery worker`` and ``celery beat`` processes, Redis,
a throwaway PostgreSQL database, the production Twilio adapter pointed at the local Twilio fake,
and a clock file the test moves for every process (HOTLINE_CLOCK_FILE).

Nothing here runs a task eagerly or in-process: tips are created from this process through the
app's services (their plan job goes through Redis after commit; where a test must decide which
send job a worker takes first, the tip is planned in the transaction that creates it and the
test hands the send jobs over), and what came of them is read from the fake's recorded requests
and from the database. No wall-clock duration is asserted: every wait polls for a condition
with a generous limit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select

from dispatcher.confirm import confirm
from dispatcher.outbox import LEASE
from dispatcher.plan_writer import plan_tip
from dispatcher.sender import CALL_SPACING, PAUSE_AFTER_CLAIM_ENV
from dispatcher.tasks import SEND
from hotline.core.tips import create_tip
from hotline.models import (
    Channel,
    Contact,
    LegKind,
    LegState,
    Notification,
    NotificationChannel,
    NotificationLeg,
    NotificationState,
    School,
    Tip,
    TipLevel,
)
from tests.support.celery_support import FINAL_STATES, Bench, RedisServer, bench
from tests.support.services import (
    SHARED_REDIS_URL,
    require_redis,
    throwaway_postgres_database,
)
from tests.support.twilio_fake import TwilioFake

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CHICAGO = ZoneInfo("America/Chicago")
#: A school day: Tuesday 2026-03-10, 10:00 in Chicago (in session: no police leg).
SCHOOL_HOURS = datetime(2026, 3, 10, 10, 0, tzinfo=CHICAGO).astimezone(UTC)

# Lakeview High School (1101) and its district, from the sample directory.
PRINCIPAL = "+13125550111"
ASSISTANT_PRINCIPAL = "+13125550112"
SRO = "+13125550113"
DISTRICT = ("+13125550101", "+13125550102", "+13125550103")
PSAP = "+13125550190"
#: Seconds between the tiers of a sequential POC chain (the sample districts' setting).
TIER_WAIT = 150
#: Foothills High School's third contact, called two tiers after its principal.
FOOTHILLS_THIRD_TIER = "+13035550113"


@pytest.fixture
def database_url() -> Iterator[str]:
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def shared_redis() -> str:
    url = require_redis(SHARED_REDIS_URL)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def world(
    tmp_path: Path, database_url: str, shared_redis: str, twilio_fake: TwilioFake
) -> Iterator[Bench]:
    """Everything on the shared Redis (database 14 unless TEST_SHARED_REDIS_URL says otherwise);
    processes are started by each test."""
    with bench(
        tmp_path,
        database_url=database_url,
        redis_url=shared_redis,
        fake=twilio_fake,
        start=SCHOOL_HOURS,
    ) as b:
        yield b


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def create_and_plan(b: Bench, school_code: str = "1101") -> int:
    """A Critical tip planned in the transaction that creates it: the plan job it still sends
    through Redis then finds it planned and does nothing, so the test alone decides which send
    task a worker gets first."""
    with b.app.app_context(), b.services.db.session() as s:
        school = s.scalars(select(School).where(School.code == school_code)).one()
        tip = create_tip(
            s,
            b.services.keyring,
            channel=Channel.VOICE,
            level=TipLevel.CRITICAL,
            tip_type="weapon",
            received_at=b.clock.now(),
            school=school,
        ).tip
        assert plan_tip(s, tip.id, b.clock.now()) is not None
        return tip.id


def assert_contract_kept(b: Bench) -> None:
    assert b.fake.problems == []
    for request in [*b.call_requests(), *b.sms_requests()]:
        assert request.authorized, request
        assert request.field("From") == "+15005550006", request


# 1. The happy path, end to end -----------------------------------------------------------------


def test_a_critical_tip_is_called_escalated_and_stopped_by_a_confirmation(world: Bench) -> None:
    b = world
    b.start("worker", "worker")
    b.start("beat", "beat")
    tip_id = b.tip("1101")
    # Another school's tip, only to show later that the sweeps ran at the advanced time.
    b.tip("2201")

    b.wait_for(
        "the principal and the PSAP called, everything due now sent",
        lambda: b.calls_to(PRINCIPAL) and b.calls_to(PSAP) and b.all_due_final(),
    )
    assert {n: c for n, c in b.call_counts().items() if n.startswith("+1312")} == {
        PRINCIPAL: 1,
        PSAP: 1,
    }
    due = b.rows(tip_id)
    due = [r for r in due if r.due_at <= b.clock.now()]
    assert {r.state for r in due} == {NotificationState.SENT}
    assert Counter(r.channel for r in due) == {
        NotificationChannel.EMAIL: 3,
        NotificationChannel.SMS: 3,
        NotificationChannel.VOICE: 2,
    }
    # Texts to the three school contacts who opted in, once each.
    texts = [t for r in b.sms_requests() if (t := r.field("To") or "").startswith("+1312")]
    assert sorted(texts) == [PRINCIPAL, ASSISTANT_PRINCIPAL, SRO]
    # What the call asks of Twilio: the alert TwiML, status and answering-machine callbacks.
    call = next(r for r in b.call_requests() if r.field("To") == PRINCIPAL)
    assert "/twilio/alert/voice?n=" in (call.field("Url") or "")
    assert call.field("MachineDetection") == "DetectMessageEnd"
    assert call.field("AsyncAmd") == "true"

    # 2.5 minutes later nobody confirmed: the assistant principal is next.
    b.advance(TIER_WAIT)
    b.wait_for(
        "the second tier's call",
        lambda: b.calls_to(ASSISTANT_PRINCIPAL) and b.all_due_final(),
    )
    assert b.calls_to(PRINCIPAL) == 1
    assert b.calls_to(PSAP) == 1
    assert b.calls_to(ASSISTANT_PRINCIPAL) == 1
    assert b.calls_to(SRO) == 0

    # The assistant principal confirms (as the alert call's keypress does).
    with b.app.app_context(), b.services.db.session() as s:
        kim = s.get_one(Contact, b.contact_by_number(ASSISTANT_PRINCIPAL))
        result = confirm(s, tip=s.get_one(Tip, tip_id), contact=kim, via="voice", now=b.clock.now())
    assert result.ended_leg
    assert result.leg is LegKind.POC
    assert result.cancelled_notifications == 4  # the SRO and the three district contacts

    # The SRO's turn: the other school's third tier, due at the same instant, is called, so
    # sweeps ran at that time; the confirmed leg calls nobody else.
    b.advance(2 * TIER_WAIT)
    b.wait_for(
        "the other school's third tier, everything due settled",
        lambda: b.calls_to(FOOTHILLS_THIRD_TIER) and b.all_due_final(),
    )
    counts = b.call_counts()
    assert counts[PRINCIPAL] == 1
    assert counts[ASSISTANT_PRINCIPAL] == 1
    assert not {SRO, *DISTRICT} & set(counts), counts
    with b.services.db.sessionmaker() as s:
        legs = {
            leg.kind: leg
            for leg in s.scalars(select(NotificationLeg).where(NotificationLeg.tip_id == tip_id))
        }
    assert legs[LegKind.POC].state is LegState.CONFIRMED
    assert legs[LegKind.PSAP].state is LegState.OPEN  # a confirmation ends its own leg only
    b.assert_each_row_went_out_once()
    assert_contract_kept(b)


# 2. Workers killed in the two gaps ---------------------------------------------------------------


def test_a_worker_killed_between_claim_and_send_leaves_a_call_sent_once(world: Bench) -> None:
    b = world
    tip_id = create_and_plan(b)
    principal = b.voice_row_for(tip_id, PRINCIPAL)
    b.start(
        "doomed",
        "worker",
        pool="prefork",
        extra_env={PAUSE_AFTER_CLAIM_ENV: "30"},
    )
    assert b.services.jobs.enqueue_now(SEND, principal.id)
    claimed = b.wait_for(
        "the paused worker's claim",
        lambda: (row := b.row(principal.id)).state is NotificationState.CLAIMED and row,
    )
    b.kill("doomed")  # the worker and its pool child, in the pause after the claim

    b.start("worker", "worker")
    b.start("beat", "beat")
    b.wait_for(
        "everything else due sent by the new worker",
        lambda: all(r.state in FINAL_STATES for r in b.due_rows() if r.id != principal.id),
    )
    assert b.row(principal.id).state is NotificationState.CLAIMED  # the lease still holds
    assert b.calls_to(PRINCIPAL) == 0
    assert b.calls_to(PSAP) == 1

    b.advance(LEASE.total_seconds() + 1)
    b.wait_for("the released row sent", lambda: b.row(principal.id).state is NotificationState.SENT)
    after = b.row(principal.id)
    assert b.calls_to(PRINCIPAL) == 1
    assert after.attempts == 2
    assert after.claimed_by != claimed.claimed_by
    assert b.call_counts() == {PRINCIPAL: 1, PSAP: 1}
    b.assert_each_row_went_out_once()
    assert_contract_kept(b)


def test_a_worker_killed_while_sending_leaves_an_unknown_row_never_resent(world: Bench) -> None:
    b = world
    tip_id = create_and_plan(b)
    principal = b.voice_row_for(tip_id, PRINCIPAL)
    # The call is created at the fake, whose answer never comes back before the kill.
    b.fake.hang_next(seconds=120, method="POST", path_contains="/Calls.json")
    b.start("doomed", "worker", pool="prefork")
    assert b.services.jobs.enqueue_now(SEND, principal.id)
    b.wait_for(
        "the call request at the fake, the row SENDING",
        lambda: (
            b.calls_to(PRINCIPAL) == 1 and b.row(principal.id).state is NotificationState.SENDING
        ),
    )
    b.kill("doomed")

    b.start("worker", "worker")
    b.start("beat", "beat")
    b.wait_for(
        "everything else due sent by the new worker",
        lambda: all(r.state in FINAL_STATES for r in b.due_rows() if r.id != principal.id),
    )
    # Killed, not timed out: the row still says SENDING until its lease runs out.
    assert b.row(principal.id).state is NotificationState.SENDING

    b.advance(LEASE.total_seconds() + 1)
    b.wait_for("the row UNKNOWN", lambda: b.row(principal.id).state is NotificationState.UNKNOWN)
    after = b.row(principal.id)
    assert after.outcome == "worker-lost"
    assert ("notification_unknown", f"unknown:{principal.id}") in b.alerts()
    b.wait_for("everything due settled", b.all_due_final)
    assert b.calls_to(PRINCIPAL) == 1
    assert b.call_counts() == {PRINCIPAL: 1, PSAP: 1}
    b.assert_each_row_went_out_once()
    assert_contract_kept(b)


# 3. Redis goes away and comes back ----------------------------------------------------------------


@pytest.fixture
def outage(
    tmp_path: Path, database_url: str, private_redis: RedisServer, twilio_fake: TwilioFake
) -> Iterator[Bench]:
    """A bench whose worker, beat and web side all use the private redis-server."""
    with bench(
        tmp_path,
        database_url=database_url,
        redis_url=private_redis.url,
        fake=twilio_fake,
        start=SCHOOL_HOURS,
    ) as b:
        yield b


def pid_of(claimed_by: str | None) -> int:
    assert claimed_by is not None
    # host:pid/attempt (dispatcher.sender.attempt_token)
    return int(claimed_by.rsplit("/", 1)[0].rsplit(":", 1)[1])


def test_redis_outage_due_calls_go_out_inline_and_the_workers_come_back(
    outage: Bench, private_redis: RedisServer
) -> None:
    b = outage
    worker = b.start("worker", "worker")
    beat = b.start("beat", "beat")
    b.wait_for_worker()
    tip_id = b.tip("1101")
    b.wait_for(
        "the first tier and the PSAP called through Redis",
        lambda: b.calls_to(PRINCIPAL) and b.calls_to(PSAP) and b.all_due_final(),
    )
    assert {pid_of(r.claimed_by) for r in b.due_rows()} == {worker.pid}

    # Redis goes away; the second tier falls due: beat cannot hand it over and calls itself.
    private_redis.stop()
    b.advance(TIER_WAIT)
    second = b.voice_row_for(tip_id, ASSISTANT_PRINCIPAL)
    b.wait_for(
        "the second tier called with Redis down",
        lambda: b.row(second.id).state in FINAL_STATES,
    )
    assert b.row(second.id).state is NotificationState.SENT
    assert pid_of(b.row(second.id).claimed_by) == beat.pid
    assert b.calls_to(ASSISTANT_PRINCIPAL) == 1

    # Redis is back on the same port (empty): the worker reconnects and consumes again (a ping
    # through the queue reaches it), and the third tier goes out once.
    private_redis.start()
    b.wait_for_worker(limit=60)
    b.advance(TIER_WAIT)
    third = b.voice_row_for(tip_id, SRO)
    b.wait_for(
        "the third tier called after Redis came back",
        lambda: b.row(third.id).state in FINAL_STATES and b.all_due_final(),
    )
    assert b.row(third.id).state is NotificationState.SENT
    # Through the queue to the worker, or, while beat still holds the broker for down (it
    # stops trying for a few seconds after a failed publish), from beat: sent once either way.
    assert pid_of(b.row(third.id).claimed_by) in {worker.pid, beat.pid}
    counts = b.call_counts()
    assert counts[PRINCIPAL] == counts[ASSISTANT_PRINCIPAL] == counts[SRO] == 1
    assert Counter(r.field("To") for r in b.sms_requests()) == {
        PRINCIPAL: 1,
        ASSISTANT_PRINCIPAL: 1,
        SRO: 1,
    }
    b.assert_each_row_went_out_once()
    assert_contract_kept(b)


def test_redis_down_new_critical_tips_are_called_without_waiting_on_the_broker(
    outage: Bench, private_redis: RedisServer
) -> None:
    b = outage
    b.start("worker", "worker")
    beat = b.start("beat", "beat")
    b.wait_for_worker()

    private_redis.stop()
    # Three schools with three different PSAPs; their plan jobs cannot be published.
    tips = [b.tip(code) for code in ("1101", "1103", "2201")]
    # Beat sweeps every 2 s; planning and sending 22 rows inline takes well under a second.
    # 20 s is generous for any sweep that does not wait on the broker row by row.
    b.wait_for(
        "every due row of the three tips settled with Redis down",
        lambda: all(b.rows(t) for t in tips) and b.all_due_final(),
        limit=20,
    )
    due = b.due_rows()
    assert {r.state for r in due} == {NotificationState.SENT}
    assert {pid_of(r.claimed_by) for r in due} == {beat.pid}
    assert b.call_counts() == {
        PRINCIPAL: 1,
        PSAP: 1,
        "+13125550131": 1,  # Northshore's principal
        "+13125550192": 1,  # and its own PSAP
        "+13035550111": 1,  # Foothills High's principal
        "+13035550190": 1,  # and the Foothills PSAP
    }
    b.assert_each_row_went_out_once()
    assert_contract_kept(b)


# 4. Two workers racing for many rows --------------------------------------------------------------


def test_two_workers_send_every_due_row_exactly_once(world: Bench) -> None:
    b = world
    schools = ["1101", "1102", "1103", "1104", "2201", "2202"] * 2
    tips = [create_and_plan(b, code) for code in schools]
    # Every due row handed to the queue twice, side by side, as a redelivery does; beat's sweep
    # hands each over a third time: the workers race for every row.
    due = [r.id for r in b.due_rows()]
    for notification_id in due:
        assert b.services.jobs.enqueue_now(SEND, notification_id)
        assert b.services.jobs.enqueue_now(SEND, notification_id)
    # Threads: prefork children share the parent's database connection (the last test).
    b.start("w1", "worker", pool="threads", concurrency=2)
    b.start("w2", "worker", pool="threads", concurrency=2)
    b.start("beat", "beat")
    b.wait_for("every due row settled", b.all_due_final)
    # Two tips of one school (and many of one PSAP) call the same numbers: due together they
    # share one call; one that comes after a call to its number waits the spacing. Step the
    # clock over it (well before any second tier) until the first wave is out.
    first_wave = [
        r.id for r in b.rows() if r.channel is not NotificationChannel.VOICE or r.position == 0
    ]
    for _ in range(4):
        if all(b.row(n).state in FINAL_STATES for n in first_wave):
            break
        b.advance(CALL_SPACING.total_seconds() + 1)
        b.wait_for("every due row settled", b.all_due_final)
    assert b.clock.now() < SCHOOL_HOURS + timedelta(seconds=TIER_WAIT)
    rows = [b.row(n) for n in first_wave]
    assert {r.state for r in rows} == {NotificationState.SENT}, b.row_summary()
    voice = [r for r in rows if r.channel is NotificationChannel.VOICE]
    assert len(voice) == 2 * len(tips)  # the first POC tier and the PSAP of each tip
    # Every call and text row reached the fake in exactly one request, none twice.
    b.assert_each_row_went_out_once()
    assert set(b.requests_per_row()) == {
        r.id for r in rows if r.channel is not NotificationChannel.EMAIL
    }
    assert len({r.claimed_by for r in rows}) >= 2  # more than one process did the work
    assert b.task_failures() == []
    assert_contract_kept(b)


def test_prefork_children_do_not_share_the_parents_database_connection(world: Bench) -> None:
    b = world
    tip_id = create_and_plan(b)
    due = [r.id for r in b.rows(tip_id) if r.due_at <= b.clock.now()]
    # One child to start with; more are forked once jobs wait, when the parent process has
    # certainly written its heartbeat through the engine. (Whether the children forked at
    # start inherit a connection depends on the order Celery happens to start its bootsteps
    # in, which is why other tests here see the bug only some of the time.)
    b.start("worker", "worker", pool="prefork", concurrency=4, extra_args=["--autoscale", "4,1"])

    def log_lines(*marks: str) -> int:
        lines = (b.tmp_path / "worker.log").read_text(errors="replace").splitlines()
        return sum(1 for line in lines if all(m in line for m in marks))

    b.wait_for(
        "the worker's own heartbeat, the tip's (idle) plan job done",
        lambda: b.heartbeat("worker") and log_lines("dispatcher.plan_tip[", " succeeded "),
    )

    def waiting_on_a_lock() -> int:
        with b.services.db.engine.connect() as conn:
            count = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).scalar()
        return int(count or 0)

    # The rows are locked here, so every child's send job stops in its claim: children with
    # connections of their own just wait; children sharing one socket queue their statements
    # behind each other's and then read each other's answers.
    with b.services.db.engine.connect() as conn, conn.begin():
        conn.execute(select(Notification.id).where(Notification.tip_id == tip_id).with_for_update())
        for notification_id in due[:4]:
            assert b.services.jobs.enqueue_now(SEND, notification_id)
        b.wait_for(
            "the pool grown for the waiting jobs, one job waiting on the lock",
            lambda: (
                log_lines("Scaling up")
                and log_lines("dispatcher.send[", " received") >= 4
                and waiting_on_a_lock()
            ),
        )
        time.sleep(1)  # the new children reach their first statement too
    b.wait_for(
        "every send job finished, well or badly",
        lambda: (
            log_lines("dispatcher.send[", " succeeded ") + log_lines("dispatcher.send[", " raised ")
            >= 4
        ),
        limit=20,
    )
    assert b.task_failures() == []

"""The Procfile's worker and beat, as real processes against the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline import create_app, migrate
from hotline.background import heartbeat
from hotline.models import Heartbeat
from hotline.services import hotline
from tests.support.services import require_redis

pytestmark = pytest.mark.redis
KEY = "5fS3y1jGm8oqsp2zC2d0qgE9Bq9tRJrj6f2mX0m8n1Y="


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = require_redis()
    redis.Redis.from_url(url).flushdb()
    return {
        "DATABASE_URL": f"sqlite:///{(tmp_path / 'hotline.sqlite3').as_posix()}",
        "REDIS_URL": url,
        "HOTLINE_SIMULATE": "1",
        "SECRET_KEY": "celery-test-secret",
        "HOTLINE_IDENTITY_KEY": KEY,
        "HOTLINE_INSTANCE_PATH": str(tmp_path / "instance"),
    }


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(kind: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "celery", "-A", "hotline.make_celery", kind, "--loglevel", "INFO"]
    if kind == "worker":
        args += ["--pool", "solo", "--without-gossip", "--without-mingle"]
    log = (tmp_path / f"{kind}.log").open("wb")
    return subprocess.Popen(
        args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )


def wait_for_heartbeat(
    app_env: dict[str, str], name: str, detail: str | None, tmp_path: Path, limit: float = 40
) -> Heartbeat:
    app = create_app(environ=app_env)
    services = hotline(app)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with services.db.sessionmaker() as s:
            row = s.get(Heartbeat, name)
            if row is not None and (detail is None or row.detail == detail):
                return row
        time.sleep(0.2)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
    pytest.fail(f"no {name} heartbeat ({detail}) within {limit}s; process output:\n{logs}")


def test_worker_and_beat_report_and_run_tasks_through_redis(
    env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    app = create_app(environ=env)
    migrate.upgrade(hotline(app).db.engine)

    processes.append(start("worker", env, tmp_path))
    wait_for_heartbeat(env, heartbeat.WORKER, None, tmp_path)

    # A task enqueued here travels through Redis to the worker process.
    app.extensions["celery"].send_task("hotline.ping")
    wait_for_heartbeat(env, heartbeat.WORKER, "ping", tmp_path)

    processes.append(start("beat", env, tmp_path))
    wait_for_heartbeat(env, heartbeat.BEAT, "celery beat", tmp_path)

    r = app.test_client().get("/healthz")
    body = r.get_json()
    assert r.status_code == 200, body
    assert body["ok"], body
    assert body["worker"]["age_seconds"] < heartbeat.STALE_AFTER_SECONDS

"""Reaching the real PostgreSQL and Redis servers from tests.

Outside CI a missing server skips the tests that need it, with the reason. With CI=true it
fails them: CI must never go green because a service was down and its tests quietly skipped.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: A second database, for the tests whose several processes share one broker and budget. Two
#: suites run at once (two checkouts) need two different pairs, or they flush each other's.
SHARED_REDIS_URL = os.environ.get("TEST_SHARED_REDIS_URL", "redis://127.0.0.1:6379/14")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(service: str, reason: str) -> None:
    message = f"{service} is unreachable ({reason})"
    if in_ci():
        pytest.fail(f"{message}: CI=true, so the tests that need it fail instead of skipping")
    pytest.skip(f"{message}; start it to run these tests")


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """A fresh, empty database on the real server; dropped afterwards. Yields its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_ADMIN_URL)
    conninfo = dict(
        host=admin.host or "127.0.0.1",
        port=admin.port or 5432,
        user=admin.username or "postgres",
        dbname=admin.database or "postgres",
        connect_timeout=3,
    )
    if admin.password:
        conninfo["password"] = admin.password
    try:
        conn = psycopg.connect(autocommit=True, **conninfo)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", str(exc).strip().splitlines()[0])
        raise  # unreachable: unavailable() skips or fails
    name = f"hotline_test_{secrets.token_hex(6)}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(autocommit=True, **conninfo) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_redis(url: str = REDIS_URL) -> str:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port

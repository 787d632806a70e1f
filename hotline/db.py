"""Engine and sessions: plain SQLAlchemy, one way in for the web app, workers and CLI."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

#: How long a SQLite writer waits for another's lock before failing: well below the ~15 s Twilio
#: waits for a webhook, so the webhook still answers (with its fallback) in time.
SQLITE_BUSY_TIMEOUT_SECONDS = 5


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Foreign keys are off by default in SQLite; WAL lets the web server, the in-process
            # worker and the simulated network read while one of them writes.
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


# Work to do once a transaction has committed (enqueueing a Celery task that takes an id):
# enqueued earlier, a fast worker could look for a row that is not there yet; enqueued on a
# transaction that then rolls back, it would act on nothing.

_AFTER_COMMIT = "hotline_after_commit"


def run_after_commit(session: Session, callback: Callable[[], None]) -> None:
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit_callbacks(session: Session) -> None:
    callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The commit stands; a failed enqueue is picked up by the periodic sweep.
            logging.getLogger(__name__).exception("after-commit callback failed")


@event.listens_for(Session, "after_rollback")
def _drop_after_commit_callbacks(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)

"""Making the database fail under the app, as a restarting or unreachable server does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event

from hotline.services import hotline


@contextmanager
def database_fails(
    app: Flask, when: Callable[[str], bool] = lambda _statement: True
) -> Iterator[None]:
    """Every statement ``when`` picks raises the driver's own OperationalError, as a database
    that is restarting does."""
    engine = hotline(app).db.engine
    dbapi = engine.dialect.loaded_dbapi

    def fail(_conn, _cursor, statement, _parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if when(statement):
            raise dbapi.OperationalError("the database system is starting up")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", fail)

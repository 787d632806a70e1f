from __future__ import annotations

from flask import Flask

from hotline.core.identity import IdentityKeyring
from hotline.core.reporters import (
    find_or_create_reporter,
    reporter_number,
    rotate_reporters,
)
from hotline.models import Reporter
from hotline.services import hotline
from tests.support.identity_keys import new_key


def test_rotation_old_values_still_read_then_are_rewritten(app: Flask) -> None:
    services = hotline(app)
    old_key, new = new_key(), new_key()
    old_ring = IdentityKeyring(old_key)
    new_ring = IdentityKeyring(new, (old_key,))
    now = services.clock.now()
    with services.db.session() as session:
        first = find_or_create_reporter(session, old_ring, "+14155550123", now)
        second = find_or_create_reporter(session, old_ring, "+14155550199", now)
        assert first
        assert second
        digest, pin_key = old_ring.hash_pin("1234567", "4321")
    # After rotation the same caller is recognised (and lazily resealed) ...
    with services.db.session() as session:
        again = find_or_create_reporter(session, new_ring, "+1 (415) 555-0123", now)
        assert again is not None
        assert again.id == first.id
        assert again.key_id == new_ring.current.key_id
    # ... the rest is rewritten by the rotate command's service ...
    with services.db.session() as session:
        assert rotate_reporters(session, new_ring) == 1
        rows = session.query(Reporter).all()
        assert {r.key_id for r in rows} == {new_ring.current.key_id}
        assert sorted(reporter_number(new_ring, r) for r in rows) == [
            "+14155550123",
            "+14155550199",
        ]
    # ... and PINs hashed under the old key still check while it is kept.
    assert new_ring.check_pin("1234567", "4321", digest, pin_key)
    assert not IdentityKeyring(new).check_pin("1234567", "4321", digest, pin_key)


def test_reporter_rows_hold_no_clear_number(app: Flask) -> None:
    services = hotline(app)
    with services.db.session() as session:
        find_or_create_reporter(session, services.keyring, "+14155550123", services.clock.now())
    raw = services.db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT * FROM reporters")
        dump = repr(cur.fetchall())
    finally:
        raw.close()
    assert "4155550123" not in dump

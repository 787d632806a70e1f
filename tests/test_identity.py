from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from hotline.core.identity import IdentityKeyring, SealedNumber, development_identity_key
from hotline.core.reporters import (
    find_or_create_reporter,
    normalize_reporter_number,
    reporter_number,
    rotate_reporters,
)
from hotline.models import Reporter
from hotline.services import hotline


def new_key() -> bytes:
    return base64.urlsafe_b64decode(Fernet.generate_key())


def test_lookup_hash_is_stable_and_keyed() -> None:
    key = new_key()
    a, b = IdentityKeyring(key), IdentityKeyring(key)
    assert a.seal_number("+14155550123").number_hash == b.seal_number("+14155550123").number_hash
    assert a.seal_number("+14155550123").number_hash != a.seal_number("+14155550124").number_hash
    other = IdentityKeyring(new_key())
    assert (
        other.seal_number("+14155550123").number_hash != a.seal_number("+14155550123").number_hash
    )


def test_sealed_number_never_contains_the_number_and_opens_again() -> None:
    ring = IdentityKeyring(new_key())
    sealed = ring.seal_number("+14155550123")
    assert "4155550123" not in sealed.number_hash + sealed.number_encrypted
    assert ring.open_number(sealed) == "+14155550123"
    # Encryption is randomised: two seals of one number differ, their lookup hash does not.
    again = ring.seal_number("+14155550123")
    assert again.number_encrypted != sealed.number_encrypted
    assert again.number_hash == sealed.number_hash


def test_hash_and_encryption_keys_are_distinct_subkeys() -> None:
    key = IdentityKeyring(new_key()).current
    assert key.hash_key != key.pin_key


def test_tampered_ciphertext_is_refused() -> None:
    ring = IdentityKeyring(new_key())
    sealed = ring.seal_number("+14155550123")
    bad = SealedNumber(sealed.number_hash, sealed.number_encrypted[:-4] + "AAAA", sealed.key_id)
    with pytest.raises(ValueError):
        ring.open_number(bad)


def test_pin_hash_checks_and_is_bound_to_the_report() -> None:
    ring = IdentityKeyring(new_key())
    digest, key_id = ring.hash_pin("1234567", "4321")
    assert ring.check_pin("1234567", "4321", digest, key_id)
    assert not ring.check_pin("1234567", "4322", digest, key_id)
    assert not ring.check_pin("7654321", "4321", digest, key_id)
    assert ring.hash_pin("7654321", "4321")[0] != digest
    assert not ring.check_pin("1234567", "4321", digest, "unknown-key")


def test_rotation_old_values_still_read_then_are_rewritten(app: Flask) -> None:
    services = hotline(app)
    old_key, new = new_key(), new_key()
    old_ring = IdentityKeyring(old_key)
    new_ring = IdentityKeyring(new, (old_key,))
    now = services.clock.now()
    with services.db.session() as session:
        first = find_or_create_reporter(session, old_ring, "+14155550123", now)
        second = find_or_create_reporter(session, old_ring, "+14155550199", now)
        assert first and second
        digest, pin_key = old_ring.hash_pin("1234567", "4321")
    # After rotation the same caller is recognised (and lazily resealed) ...
    with services.db.session() as session:
        again = find_or_create_reporter(session, new_ring, "+1 (415) 555-0123", now)
        assert again is not None and again.id == first.id
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


@pytest.mark.parametrize("raw", ["anonymous", "", "+266696687", "Restricted", "x" * 500, "\x00+1"])
def test_withheld_or_garbage_numbers_make_no_reporter(raw: str) -> None:
    assert normalize_reporter_number(raw) is None


def test_development_key_is_created_once_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = development_identity_key(tmp_path)
    assert development_identity_key(tmp_path) == first and len(first) == 32
    assert (tmp_path / "identity.key").stat().st_mode & 0o077 == 0

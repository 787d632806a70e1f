from __future__ import annotations

import pytest

from hotline.core.identity import IdentityKeyring, SealedNumber, development_identity_key
from hotline.core.reporters import (
    normalize_reporter_number,
)
from tests.support.identity_keys import new_key


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
    with pytest.raises(ValueError, match="does not decrypt"):
        ring.open_number(bad)


def test_pin_hash_checks_and_is_bound_to_the_report() -> None:
    ring = IdentityKeyring(new_key())
    digest, key_id = ring.hash_pin("1234567", "4321")
    assert ring.check_pin("1234567", "4321", digest, key_id)
    assert not ring.check_pin("1234567", "4322", digest, key_id)
    assert not ring.check_pin("7654321", "4321", digest, key_id)
    assert ring.hash_pin("7654321", "4321")[0] != digest
    assert not ring.check_pin("1234567", "4321", digest, "unknown-key")


@pytest.mark.parametrize("raw", ["anonymous", "", "+266696687", "Restricted", "x" * 500, "\x00+1"])
def test_withheld_or_garbage_numbers_make_no_reporter(raw: str) -> None:
    assert normalize_reporter_number(raw) is None


def test_development_key_is_created_once_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = development_identity_key(tmp_path)
    assert development_identity_key(tmp_path) == first
    assert len(first) == 32
    assert (tmp_path / "identity.key").stat().st_mode & 0o077 == 0

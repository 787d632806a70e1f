"""Reporter identity: a keyed hash to find a reporter again, an encrypted copy to text them back.

Neither is the number in clear. Both keys are derived (HKDF-SHA256) from HOTLINE_IDENTITY_KEY with
different labels, so the hashing key never doubles as the encryption key. Every stored value
carries the id of the key that made it, so a key can be rotated: the new key writes, older keys
(HOTLINE_IDENTITY_KEY_PREVIOUS) still read until ``flask --app hotline identity rotate`` has
rewritten every row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(master: bytes, label: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"hotline/{label}".encode()
    ).derive(master)


@dataclass(frozen=True)
class IdentityKey:
    """The subkeys derived from one master key."""

    key_id: str
    hash_key: bytes
    pin_key: bytes
    fernet: Fernet
    #: For what the app keeps briefly but must not keep in clear (webhook answers that read out
    #: a PIN, kept to answer Twilio's retries the same way).
    receipt_fernet: Fernet

    @classmethod
    def from_master(cls, master: bytes) -> IdentityKey:
        if len(master) != 32:
            raise ValueError("an identity key is 32 bytes")
        key_id = _derive(master, "key-id/v1", 8).hex()
        return cls(
            key_id=key_id,
            hash_key=_derive(master, "reporter-hash/v1"),
            pin_key=_derive(master, "pin-hash/v1"),
            fernet=Fernet(base64.urlsafe_b64encode(_derive(master, "reporter-encrypt/v1"))),
            receipt_fernet=Fernet(base64.urlsafe_b64encode(_derive(master, "webhook-receipt/v1"))),
        )


class UnknownIdentityKey(LookupError):
    """A value was written with a key this install no longer has."""


@dataclass(frozen=True)
class SealedNumber:
    number_hash: str
    number_encrypted: str
    key_id: str


class IdentityKeyring:
    """The current key (writes) and older ones (reads)."""

    def __init__(self, current: bytes, previous: tuple[bytes, ...] = ()) -> None:
        self.current = IdentityKey.from_master(current)
        self._by_id = {self.current.key_id: self.current}
        for old in previous:
            key = IdentityKey.from_master(old)
            self._by_id.setdefault(key.key_id, key)

    def key(self, key_id: str) -> IdentityKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise UnknownIdentityKey(key_id) from None

    @property
    def all_keys(self) -> list[IdentityKey]:
        return list(self._by_id.values())

    def seal_receipt(self, body: str) -> str:
        return self.current.receipt_fernet.encrypt(body.encode("utf-8")).decode("ascii")

    def open_receipt(self, sealed: str) -> str:
        """The body sealed under any key this install has (rotation-safe)."""
        fernet = MultiFernet([k.receipt_fernet for k in self.all_keys])
        try:
            return fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("webhook receipt does not decrypt with any key") from exc

    # Reporter numbers -----------------------------------------------------------------------

    @staticmethod
    def _hash(key: IdentityKey, number: str) -> str:
        return hmac.new(key.hash_key, number.encode("utf-8"), hashlib.sha256).hexdigest()

    def number_hashes(self, number: str) -> dict[str, str]:
        """The lookup hash of ``number`` under every key (key id → hash), for finding a reporter
        whose row has not been rotated yet."""
        return {k.key_id: self._hash(k, number) for k in self.all_keys}

    def seal_number(self, number: str) -> SealedNumber:
        key = self.current
        return SealedNumber(
            number_hash=self._hash(key, number),
            number_encrypted=key.fernet.encrypt(number.encode("utf-8")).decode("ascii"),
            key_id=key.key_id,
        )

    def open_number(self, sealed: SealedNumber) -> str:
        key = self.key(sealed.key_id)
        try:
            return key.fernet.decrypt(sealed.number_encrypted.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("reporter number does not decrypt with its key") from exc

    # PINs -----------------------------------------------------------------------------------

    def hash_pin(self, report_number: str, pin: str, key_id: str | None = None) -> tuple[str, str]:
        """(hash, key id). The report number is mixed in so equal PINs hash differently."""
        key = self.current if key_id is None else self.key(key_id)
        digest = hmac.new(
            key.pin_key, f"{report_number}:{pin}".encode(), hashlib.sha256
        ).hexdigest()
        return digest, key.key_id

    def check_pin(self, report_number: str, pin: str, stored_hash: str, key_id: str) -> bool:
        try:
            candidate, _ = self.hash_pin(report_number, pin, key_id)
        except UnknownIdentityKey:
            return False
        return hmac.compare_digest(candidate, stored_hash)


def development_identity_key(instance_path: Path) -> bytes:
    """The development key, created once under ``instance/`` (readable by its owner only)."""
    path = instance_path / "identity.key"
    if path.exists():
        return base64.urlsafe_b64decode(path.read_bytes().strip())
    instance_path.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return base64.urlsafe_b64decode(key)

"""Crypto-shredding: a data key per subject (AES-256-GCM), wrapped by the service's master key,
and a keyed hash (HMAC-SHA256 with a per-tenant secret) to index personal values by.

A subject is whatever personal data is keyed by (a customer profile, an interaction). Sealed
text is `v1.<base64url(nonce || ciphertext+tag)>`; the associated data binds it to the tenant
and the subject, so a ciphertext copied to another subject does not open. Destroying a
subject's wrapped key makes everything sealed with it unreadable, wherever copies went
(event stores, read models, Kafka topics).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX: Final = "v1."
_NONCE: Final = 12
#: What readers get in place of a personal value whose key was destroyed.
ERASED: Final = "[erased]"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_sealed(text: str | None) -> bool:
    return text is not None and text.startswith(PREFIX)


class Cipher(Protocol):
    def seal(self, plaintext: str) -> str: ...

    def open(self, sealed: str) -> str | None: ...


class SubjectCipher:
    """Seals and opens with one subject's data key."""

    def __init__(self, key: bytes, aad: bytes) -> None:
        self._aead = AESGCM(key)
        self._aad = aad

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        return PREFIX + _b64(nonce + self._aead.encrypt(nonce, plaintext.encode(), self._aad))

    def open(self, sealed: str) -> str | None:
        """The plaintext; None when it does not open (another subject's, tampered)."""
        if not sealed.startswith(PREFIX):
            raise ValueError("not a sealed value")
        raw = _unb64(sealed[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._aad).decode()
        except InvalidTag:
            return None


class ShreddedCipher:
    """The cipher of a subject whose key is gone: opens nothing, seals nothing."""

    def seal(self, plaintext: str) -> str:
        raise RuntimeError("the subject's key was destroyed")

    def open(self, sealed: str) -> str | None:
        return None


class KeyRing:
    """Derives tenant secrets from and wraps data keys with a master key (32 bytes).

    `context` separates the keys of one master key used for several purposes (the derivation
    labels are `<context>/key-wrap/v1` and `<context>/identity-index/v1`); `subject_kind`
    prefixes the associated data of sealed values (`<kind>/<tenant>/<subject>`).
    """

    def __init__(self, master_key: bytes, *, context: str, subject_kind: str) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._wrap = AESGCM(hashlib.sha256(f"{context}/key-wrap/v1".encode() + master_key).digest())
        self._index = hashlib.sha256(f"{context}/identity-index/v1".encode() + master_key).digest()
        self._kind = subject_kind
        self._secrets: dict[str, bytes] = {}

    def tenant_secret(self, tenant_id: str) -> bytes:
        """The tenant's secret for keyed hashes (HMAC-SHA256) of personal values."""
        secret = self._secrets.get(tenant_id)
        if secret is None:
            secret = hmac.new(self._index, tenant_id.encode(), hashlib.sha256).digest()
            self._secrets[tenant_id] = secret
        return secret

    def digest(self, tenant_id: str, value: str) -> str:
        return hmac.digest(self.tenant_secret(tenant_id), value.encode(), "sha256").hex()

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, tenant_id: str, subject_id: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._wrap.encrypt(nonce, key, f"{tenant_id}/{subject_id}".encode())

    def unwrap(self, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        return self._wrap.decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], f"{tenant_id}/{subject_id}".encode()
        )

    def cipher(
        self, tenant_id: str, subject_id: str, wrapped: bytes | None
    ) -> SubjectCipher | ShreddedCipher:
        """The subject's cipher from its wrapped key (None: the key was destroyed)."""
        if wrapped is None:
            return ShreddedCipher()
        key = self.unwrap(tenant_id, subject_id, wrapped)
        return SubjectCipher(key, f"{self._kind}/{tenant_id}/{subject_id}".encode())


def open_or_erased(cipher: Cipher, value: str | None) -> str | None:
    """A stored value for a reader: sealed ones opened, `ERASED` when they no longer open,
    values that were never sealed as they are."""
    if value is None or not is_sealed(value):
        return value
    text = cipher.open(value)
    return ERASED if text is None else text


def seal_or_erased(cipher: Cipher, value: str | None) -> str | None:
    """`value` sealed; `ERASED` when the subject's key is gone (nothing personal is written
    after an erasure); None and already sealed values as they are."""
    if value is None or is_sealed(value) or value == ERASED:
        return value
    if isinstance(cipher, ShreddedCipher):
        return ERASED
    return cipher.seal(value)

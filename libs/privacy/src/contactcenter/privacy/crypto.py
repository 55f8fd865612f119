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
from collections.abc import Sequence
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX: Final = "v1."
_NONCE: Final = 12
#: The first byte of a key wrapped under a versioned master key.
_WRAP_V2: Final = 0x02
_KEY_ID_BYTES: Final = 8
#: `nonce || AES-256 key || tag`: the wrapped format from before master key versions.
_LEGACY_WRAPPED_LENGTH: Final = _NONCE + 32 + 16
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


class UnknownMasterKey(Exception):
    """A stored key is wrapped by a master key that is not configured (current or retired)."""


def master_key_id(master_key: bytes, context: str) -> str:
    """The fingerprint that names a master key version (16 hex digits, not secret)."""
    digest = hashlib.sha256(f"{context}/master-key-id/v1".encode() + master_key).hexdigest()
    return digest[: 2 * _KEY_ID_BYTES]


class _MasterKey:
    def __init__(self, key: bytes, context: str) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self.key_id = master_key_id(key, context)
        self.id_bytes = bytes.fromhex(self.key_id)
        self.aead = AESGCM(hashlib.sha256(f"{context}/key-wrap/v1".encode() + key).digest())
        #: The identity index root as derived from this key before roots were stored.
        self.legacy_index_root = hashlib.sha256(
            f"{context}/identity-index/v1".encode() + key
        ).digest()


class KeyRing:
    """Wraps data keys with the current master key (32 bytes), unwraps them with it or any
    retired one, and derives tenant secrets from an identity-index root secret.

    `context` separates the keys of one master key used for several purposes (the derivation
    labels are `<context>/key-wrap/v1`, `<context>/identity-index/v1` and
    `<context>/master-key-id/v1`); `subject_kind` prefixes the associated data of sealed values
    (`<kind>/<tenant>/<subject>`).

    A wrapped key is `0x02 || master key id (8 bytes) || nonce || ciphertext+tag`; a key wrapped
    before master key versions existed (`nonce || ciphertext+tag`, 60 bytes) opens with whichever
    configured master key fits. Rotation: make a new key current and the old one retired,
    rewrap every stored key (`contactcenter.privacy.rewrap_keys`), then drop the retired key.

    The identity-index root (`index_root`) is a stored secret (see `load_index_root`), so the
    keyed hashes outlive the master key it was first derived from; without one, `digest`
    refuses.
    """

    def __init__(
        self,
        master_key: bytes,
        retired_master_keys: Sequence[bytes] = (),
        *,
        context: str,
        subject_kind: str,
        index_root: bytes | None = None,
    ) -> None:
        self._current = _MasterKey(master_key, context)
        self._keys = {self._current.key_id: self._current}
        for retired in retired_master_keys:
            key = _MasterKey(retired, context)
            self._keys.setdefault(key.key_id, key)
        self._kind = subject_kind
        self._index: bytes | None = None
        self._secrets: dict[str, bytes] = {}
        if index_root is not None:
            self.set_index_root(index_root)

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    @property
    def key_ids(self) -> list[str]:
        """Every configured master key version, current first."""
        return list(self._keys)

    # --- the identity index ---------------------------------------------------------------

    @property
    def has_index_root(self) -> bool:
        return self._index is not None

    def set_index_root(self, root: bytes) -> None:
        if len(root) != 32:
            raise ValueError("the identity index root must be 32 bytes")
        if self._index != root:
            self._secrets.clear()
        self._index = root

    def legacy_index_root(self, key_id: str | None = None) -> bytes:
        """The root as derived from a master key (`key_id`, default the current one) before
        roots were stored: what the keyed hashes of existing data were made with."""
        return self._keys[key_id or self._current.key_id].legacy_index_root

    def tenant_secret(self, tenant_id: str) -> bytes:
        """The tenant's secret for keyed hashes (HMAC-SHA256) of personal values."""
        secret = self._secrets.get(tenant_id)
        if secret is None:
            if self._index is None:
                raise RuntimeError("the identity index root secret is not loaded")
            secret = hmac.new(self._index, tenant_id.encode(), hashlib.sha256).digest()
            self._secrets[tenant_id] = secret
        return secret

    def digest(self, tenant_id: str, value: str) -> str:
        return hmac.digest(self.tenant_secret(tenant_id), value.encode(), "sha256").hex()

    # --- data keys ------------------------------------------------------------------------

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, tenant_id: str, subject_id: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._current.aead.encrypt(nonce, key, f"{tenant_id}/{subject_id}".encode())
        return bytes([_WRAP_V2]) + self._current.id_bytes + nonce + sealed

    @staticmethod
    def wrapped_by(wrapped: bytes) -> str | None:
        """The master key id a wrapped key names (None: the format from before versions)."""
        if len(wrapped) == _LEGACY_WRAPPED_LENGTH:
            return None
        if len(wrapped) <= 1 + _KEY_ID_BYTES + _NONCE or wrapped[0] != _WRAP_V2:
            raise ValueError("not a wrapped key")
        return wrapped[1 : 1 + _KEY_ID_BYTES].hex()

    def is_current(self, wrapped: bytes) -> bool:
        """Whether `wrapped` is under the current master key (nothing to rewrap)."""
        return self.wrapped_by(wrapped) == self._current.key_id

    def unwrap(self, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        return self._unwrap(tenant_id, subject_id, wrapped)[0]

    def unwrapping_key_id(self, tenant_id: str, subject_id: str, wrapped: bytes) -> str:
        """The configured master key that opens `wrapped`."""
        return self._unwrap(tenant_id, subject_id, wrapped)[1]

    def _unwrap(self, tenant_id: str, subject_id: str, wrapped: bytes) -> tuple[bytes, str]:
        aad = f"{tenant_id}/{subject_id}".encode()
        key_id = self.wrapped_by(wrapped)
        if key_id is None:
            for candidate in self._keys.values():
                try:
                    key = candidate.aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
                except InvalidTag:
                    continue
                return key, candidate.key_id
            raise UnknownMasterKey(
                f"no configured master key ({', '.join(self._keys)}) opens the key of "
                f"{tenant_id}/{subject_id}"
            )
        master = self._keys.get(key_id)
        if master is None:
            raise UnknownMasterKey(
                f"the key of {tenant_id}/{subject_id} is wrapped by master key {key_id}, "
                "which is not configured (current or retired)"
            )
        body = wrapped[1 + _KEY_ID_BYTES :]
        return master.aead.decrypt(body[:_NONCE], body[_NONCE:], aad), key_id

    def rewrap(self, tenant_id: str, subject_id: str, wrapped: bytes) -> bytes:
        """`wrapped` under the current master key (itself when it already is)."""
        if self.is_current(wrapped):
            return wrapped
        return self.wrap(tenant_id, subject_id, self.unwrap(tenant_id, subject_id, wrapped))

    def cipher(
        self, tenant_id: str, subject_id: str, wrapped: bytes | None
    ) -> SubjectCipher | ShreddedCipher:
        """The subject's cipher from its wrapped key (None: the key was destroyed)."""
        if wrapped is None:
            return ShreddedCipher()
        key = self.unwrap(tenant_id, subject_id, wrapped)
        return SubjectCipher(key, f"{self._kind}/{tenant_id}/{subject_id}".encode())


def parse_master_keys(text: str, setting: str) -> list[bytes]:
    """Master keys from a setting: base64 of 32 bytes each, comma-separated (empty: none)."""
    keys = []
    for part in text.split(","):
        if part.strip():
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise ValueError(f"{setting}: each key must be base64 of 32 bytes")
            keys.append(key)
    return keys


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

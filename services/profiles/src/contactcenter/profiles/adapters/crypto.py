"""Crypto-shredding: a data key per profile (AES-256-GCM), wrapped by the service's master key,
and the keyed hash (HMAC-SHA256 with a per-tenant secret) the identity index is searched by.

Sealed text is `v1.<base64url(nonce || ciphertext+tag)>`. The associated data binds it to the
tenant and profile, so a ciphertext copied to another profile does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactcenter.profiles.domain import Identity

_PREFIX: Final = "v1."
_NONCE: Final = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ProfileKeyCipher:
    """`ProfileCipher` with a profile's data key."""

    def __init__(self, key: bytes, tenant_id: str, profile_id: str) -> None:
        self._aead = AESGCM(key)
        self._aad = f"profile/{tenant_id}/{profile_id}".encode()

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        return _PREFIX + _b64(nonce + self._aead.encrypt(nonce, plaintext.encode(), self._aad))

    def open(self, sealed: str) -> str | None:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        raw = _unb64(sealed[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._aad).decode()
        except InvalidTag:
            return None


class ShreddedCipher:
    """The cipher of a profile whose key is gone: opens nothing, seals nothing."""

    def seal(self, plaintext: str) -> str:
        raise RuntimeError("the profile's key was destroyed")

    def open(self, sealed: str) -> str | None:
        return None


class HmacRefs:
    """`IdentityRefs` of one tenant."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def ref(self, identity: Identity) -> str:
        return hmac.digest(self._secret, identity.key.encode(), "sha256").hex()


class KeyRing:
    """Derives tenant secrets from and wraps data keys with the master key (32 bytes)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._wrap = AESGCM(hashlib.sha256(b"profiles/key-wrap/v1" + master_key).digest())
        self._index = hashlib.sha256(b"profiles/identity-index/v1" + master_key).digest()
        self._refs: dict[str, HmacRefs] = {}

    def refs(self, tenant_id: str) -> HmacRefs:
        refs = self._refs.get(tenant_id)
        if refs is None:
            secret = hmac.new(self._index, tenant_id.encode(), hashlib.sha256).digest()
            refs = self._refs[tenant_id] = HmacRefs(secret)
        return refs

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, tenant_id: str, profile_id: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._wrap.encrypt(nonce, key, f"{tenant_id}/{profile_id}".encode())

    def unwrap(self, tenant_id: str, profile_id: str, wrapped: bytes) -> bytes:
        return self._wrap.decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], f"{tenant_id}/{profile_id}".encode()
        )

    def cipher(
        self, tenant_id: str, profile_id: str, wrapped: bytes | None
    ) -> ProfileKeyCipher | ShreddedCipher:
        if wrapped is None:
            return ShreddedCipher()
        return ProfileKeyCipher(self.unwrap(tenant_id, profile_id, wrapped), tenant_id, profile_id)

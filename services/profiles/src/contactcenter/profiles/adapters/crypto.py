"""Crypto-shredding: a data key per profile (AES-256-GCM), wrapped by the service's master key,
and the keyed hash (HMAC-SHA256 with a per-tenant secret) the identity index is searched by.

Sealed text is `v1.<base64url(nonce || ciphertext+tag)>`. The associated data binds it to the
tenant and profile, so a ciphertext copied to another profile does not open.

Master key versions and rotation: a wrapped key is `0x02 || key id (8 bytes) || nonce ||
ciphertext+tag`, the key id being a fingerprint of the master key that wrapped it; keys wrapped
before versions existed (`nonce || ciphertext+tag`, 60 bytes) open with whichever configured
master key fits. The key ring wraps with the current master key and unwraps with it or any
retired one, so a rotation is: make the new key current and the old one retired, rewrap every
stored key (`contactcenter.profiles.adapters.rotation`), then drop the retired key.

The identity index's root secret (from which each tenant's HMAC secret derives, and which the
identity references in events depend on) is a stored secret wrapped like a data key, so it
survives the master key it was first derived from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactcenter.profiles.domain import Identity

_PREFIX: Final = "v1."
_NONCE: Final = 12
#: The first byte of a key wrapped under a versioned master key.
_WRAP_V2: Final = 0x02
_KEY_ID_BYTES: Final = 8
#: `nonce || AES-256 key || tag`: the format from before master key versions.
_LEGACY_WRAPPED_LENGTH: Final = _NONCE + 32 + 16
#: The name of the identity index's root secret among the stored secrets.
INDEX_ROOT: Final = "identity-index"


class UnknownMasterKey(Exception):
    """A stored key is wrapped by a master key that is not configured (current or retired)."""


def master_key_id(master_key: bytes) -> str:
    """The fingerprint that names a master key version (16 hex digits, not secret)."""
    return hashlib.sha256(b"profiles/master-key-id/v1" + master_key).hexdigest()[
        : 2 * _KEY_ID_BYTES
    ]


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


class _MasterKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a master key must be 32 bytes")
        self.key_id = master_key_id(key)
        self.id_bytes = bytes.fromhex(self.key_id)
        self.aead = AESGCM(hashlib.sha256(b"profiles/key-wrap/v1" + key).digest())
        #: The identity index root as it was derived before it was stored (bootstrap only).
        self.legacy_index_root = hashlib.sha256(b"profiles/identity-index/v1" + key).digest()


class KeyRing:
    """Wraps data keys with the current master key (32 bytes), unwraps them with the current or
    a retired one, and derives tenant secrets from the identity index's root secret."""

    def __init__(
        self,
        master_key: bytes,
        retired_master_keys: Sequence[bytes] = (),
        *,
        index_root: bytes | None = None,
    ) -> None:
        self._current = _MasterKey(master_key)
        self._keys = {self._current.key_id: self._current}
        for retired in retired_master_keys:
            key = _MasterKey(retired)
            self._keys.setdefault(key.key_id, key)
        self._index: bytes | None = None
        if index_root is not None:
            self.set_index_root(index_root)
        self._refs: dict[str, HmacRefs] = {}

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
        if self._index is not None and self._index != root:
            self._refs.clear()
        self._index = root

    def legacy_index_root(self, key_id: str | None = None) -> bytes:
        """The root as derived from a master key (`key_id`, default the current one) before it
        was stored: what the identity index of existing data was built with."""
        return self._keys[key_id or self._current.key_id].legacy_index_root

    def refs(self, tenant_id: str) -> HmacRefs:
        refs = self._refs.get(tenant_id)
        if refs is None:
            if self._index is None:
                raise RuntimeError("the identity index root secret is not loaded")
            secret = hmac.new(self._index, tenant_id.encode(), hashlib.sha256).digest()
            refs = self._refs[tenant_id] = HmacRefs(secret)
        return refs

    # --- data keys ------------------------------------------------------------------------

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, tenant_id: str, profile_id: str, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._current.aead.encrypt(nonce, key, f"{tenant_id}/{profile_id}".encode())
        return bytes([_WRAP_V2]) + self._current.id_bytes + nonce + sealed

    def wrapped_by(self, wrapped: bytes) -> str | None:
        """The master key id a wrapped key names (None: the format from before versions)."""
        if len(wrapped) == _LEGACY_WRAPPED_LENGTH:
            return None
        if not wrapped or wrapped[0] != _WRAP_V2:
            raise ValueError("not a wrapped key")
        return wrapped[1 : 1 + _KEY_ID_BYTES].hex()

    def is_current(self, wrapped: bytes) -> bool:
        """Whether `wrapped` is under the current master key (nothing to rewrap)."""
        return self.wrapped_by(wrapped) == self._current.key_id

    def unwrap(self, tenant_id: str, profile_id: str, wrapped: bytes) -> bytes:
        return self._unwrap(tenant_id, profile_id, wrapped)[0]

    def unwrapping_key_id(self, tenant_id: str, profile_id: str, wrapped: bytes) -> str:
        """The configured master key that opens `wrapped`."""
        return self._unwrap(tenant_id, profile_id, wrapped)[1]

    def _unwrap(self, tenant_id: str, profile_id: str, wrapped: bytes) -> tuple[bytes, str]:
        aad = f"{tenant_id}/{profile_id}".encode()
        key_id = self.wrapped_by(wrapped)
        if key_id is None:
            # Before versions: whichever configured master key opens it.
            for candidate in self._keys.values():
                try:
                    key = candidate.aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
                except InvalidTag:
                    continue
                return key, candidate.key_id
            raise UnknownMasterKey(
                f"no configured master key ({', '.join(self._keys)}) opens the key of "
                f"{tenant_id}/{profile_id}"
            )
        master = self._keys.get(key_id)
        if master is None:
            raise UnknownMasterKey(
                f"the key of {tenant_id}/{profile_id} is wrapped by master key {key_id}, "
                f"which is not configured (current or retired)"
            )
        body = wrapped[1 + _KEY_ID_BYTES :]
        return master.aead.decrypt(body[:_NONCE], body[_NONCE:], aad), key_id

    def rewrap(self, tenant_id: str, profile_id: str, wrapped: bytes) -> bytes:
        """`wrapped` under the current master key (itself when it already is)."""
        if self.is_current(wrapped):
            return wrapped
        return self.wrap(tenant_id, profile_id, self.unwrap(tenant_id, profile_id, wrapped))

    def cipher(
        self, tenant_id: str, profile_id: str, wrapped: bytes | None
    ) -> ProfileKeyCipher | ShreddedCipher:
        if wrapped is None:
            return ShreddedCipher()
        return ProfileKeyCipher(self.unwrap(tenant_id, profile_id, wrapped), tenant_id, profile_id)

"""Crypto-shredding of profiles with the shared `contactcenter.privacy` key ring: a data key per
profile (AES-256-GCM) wrapped by the service's master key, and the keyed hash (HMAC-SHA256
with a per-tenant secret) the identity index is searched by.

The associated data of a sealed value is `profile/<tenant>/<profile>`, so a ciphertext copied
to another profile does not open.

Master key versions and rotation, and the identity index's stored root secret, are the shared
key ring's (`contactcenter.privacy`); `python -m contactcenter.profiles rotate-master-key` rewraps
`profile_keys` and the stored root under the current master key.
"""

from __future__ import annotations

from collections.abc import Sequence

from contactcenter.privacy import KeyRing as SubjectKeyRing
from contactcenter.privacy import ShreddedCipher, SubjectCipher
from contactcenter.profiles.domain import Identity

#: A profile's cipher (`ProfileCipher` of the domain).
ProfileKeyCipher = SubjectCipher

__all__ = ["HmacRefs", "KeyRing", "ProfileKeyCipher", "ShreddedCipher"]


class HmacRefs:
    """`IdentityRefs` of one tenant."""

    def __init__(self, keyring: SubjectKeyRing, tenant_id: str) -> None:
        self._keyring = keyring
        self._tenant_id = tenant_id

    def ref(self, identity: Identity) -> str:
        return self._keyring.digest(self._tenant_id, identity.key)


class KeyRing(SubjectKeyRing):
    """The profiles service's key ring: subjects are profiles."""

    def __init__(
        self,
        master_key: bytes,
        retired_master_keys: Sequence[bytes] = (),
        *,
        index_root: bytes | None = None,
    ) -> None:
        super().__init__(
            master_key,
            retired_master_keys,
            context="profiles",
            subject_kind="profile",
            index_root=index_root,
        )
        self._refs: dict[str, HmacRefs] = {}

    def refs(self, tenant_id: str) -> HmacRefs:
        refs = self._refs.get(tenant_id)
        if refs is None:
            refs = self._refs[tenant_id] = HmacRefs(self, tenant_id)
        return refs

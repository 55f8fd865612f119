"""The stored side of the key ring: the identity index's root secret, and master key rotation.

Rotating the master key (operators' procedure, also in the service's README):

1. Generate a new key; set it as `CC_PROFILES_MASTER_KEY` and the old one in
   `CC_PROFILES_RETIRED_MASTER_KEYS`; roll the replicas. From then on new keys are wrapped with the
   new key and every key, old or new, opens.
2. Run `python -m contactcenter.profiles rotate-master-key` (same settings): it rewraps every
   profile key and the index root under the new key, in batches, resumable, and exits 0 only when
   none is left under another key.
3. Remove `CC_PROFILES_RETIRED_MASTER_KEYS`; roll the replicas. The old key can be destroyed.

Rewrapping changes only the wrapping: the data keys, hence every ciphertext in the events, stay.
A key erased during the rotation stays erased (a rewrap replaces a key only if it is unchanged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from contactcenter.profiles.adapters.crypto import INDEX_ROOT, KeyRing
from contactcenter.profiles.adapters.tables import Tables

_log = logging.getLogger(__name__)

#: The (tenant, profile) the index root is wrapped for (its associated data).
_INDEX_ROOT_OWNER = ("", INDEX_ROOT)


async def load_index_root(tables: Tables, keyring: KeyRing) -> None:
    """Give `keyring` the stored index root; store it first if this is the first start with a
    stored root: then it is the root the existing data was built with (derived, as before, from
    the master key that wraps the existing profile keys), or a derived one for a fresh database."""
    wrapped = await tables.keyring_secret(INDEX_ROOT)
    if wrapped is None:
        sample = await tables.any_key()
        key_id = keyring.unwrapping_key_id(*sample) if sample is not None else None
        root = keyring.legacy_index_root(key_id)
        wrapped = await tables.add_keyring_secret(
            INDEX_ROOT, keyring.wrap(*_INDEX_ROOT_OWNER, root)
        )
    keyring.set_index_root(keyring.unwrap(*_INDEX_ROOT_OWNER, wrapped))


@dataclass(frozen=True)
class RotationReport:
    master_key_id: str
    rewrapped: int
    #: Keys still under another master key (0 when the rotation is complete).
    remaining: int


async def rotate_master_key(tables: Tables, keyring: KeyRing, batch: int = 500) -> RotationReport:
    """Rewrap every stored key under `keyring`'s current master key (the old one must be among
    its retired keys). Idempotent and resumable: run it again after an interruption."""
    await load_index_root(tables, keyring)
    current = keyring.current_key_id
    stored = await tables.keyring_secret(INDEX_ROOT)
    assert stored is not None
    if not keyring.is_current(stored):
        await tables.replace_keyring_secret(
            INDEX_ROOT, stored, keyring.rewrap(*_INDEX_ROOT_OWNER, stored)
        )
    rewrapped = 0
    after = ("", "")
    while True:
        rows = await tables.keys_not_under(current, after, batch)
        if not rows:
            break
        rewrapped += await tables.replace_keys(
            [(t, p, old, keyring.rewrap(t, p, old)) for t, p, old in rows]
        )
        after = (rows[-1][0], rows[-1][1])
        _log.info("rewrapped %d profile keys under master key %s", rewrapped, current)
    remaining = await tables.count_keys_not_under(current)
    stored = await tables.keyring_secret(INDEX_ROOT)
    if stored is not None and not keyring.is_current(stored):
        remaining += 1
    return RotationReport(master_key_id=current, rewrapped=rewrapped, remaining=remaining)

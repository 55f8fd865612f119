"""The key ring's master key versions: wrap with the current key, open with any configured one."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactcenter.profiles.adapters.crypto import KeyRing, UnknownMasterKey, master_key_id

OLD, NEW = os.urandom(32), os.urandom(32)


def legacy_wrap(master: bytes, tenant: str, profile: str, key: bytes) -> bytes:
    """A key wrapped as before master key versions existed."""
    aead = AESGCM(hashlib.sha256(b"profiles/key-wrap/v1" + master).digest())
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, key, f"{tenant}/{profile}".encode())


def test_a_wrapped_key_names_its_master_key_and_opens_while_it_is_configured() -> None:
    data_key = KeyRing.new_data_key()
    wrapped = KeyRing(OLD).wrap("t", "p", data_key)
    assert KeyRing(OLD).wrapped_by(wrapped) == master_key_id(OLD)
    rotating = KeyRing(NEW, [OLD])
    assert rotating.unwrap("t", "p", wrapped) == data_key
    assert not rotating.is_current(wrapped)
    rewrapped = rotating.rewrap("t", "p", wrapped)
    assert rotating.is_current(rewrapped) and rotating.rewrap("t", "p", rewrapped) == rewrapped
    assert KeyRing(NEW).unwrap("t", "p", rewrapped) == data_key
    with pytest.raises(UnknownMasterKey, match=master_key_id(OLD)):
        KeyRing(NEW).unwrap("t", "p", wrapped)


def test_keys_from_before_versions_open_with_whichever_key_fits() -> None:
    data_key = KeyRing.new_data_key()
    legacy = legacy_wrap(OLD, "t", "p", data_key)
    rotating = KeyRing(NEW, [OLD])
    assert rotating.wrapped_by(legacy) is None
    assert rotating.unwrapping_key_id("t", "p", legacy) == master_key_id(OLD)
    assert KeyRing(NEW).unwrap("t", "p", rotating.rewrap("t", "p", legacy)) == data_key
    with pytest.raises(UnknownMasterKey):
        KeyRing(NEW).unwrap("t", "p", legacy)


def test_a_wrapped_key_is_bound_to_its_profile() -> None:
    wrapped = KeyRing(OLD).wrap("t", "p", KeyRing.new_data_key())
    with pytest.raises(Exception):  # noqa: B017 (InvalidTag)
        KeyRing(OLD).unwrap("t", "other", wrapped)


def test_tenant_secrets_come_from_the_index_root_not_the_master_key() -> None:
    root = os.urandom(32)
    before = KeyRing(OLD, index_root=root).refs("t").ref
    after = KeyRing(NEW, index_root=root).refs("t").ref
    from contactcenter.profiles.domain import IdentityKind, normalise

    identity = normalise(IdentityKind.EMAIL, "ann@example.com")
    assert before(identity) == after(identity)
    with pytest.raises(RuntimeError, match="not loaded"):
        KeyRing(NEW).refs("t")

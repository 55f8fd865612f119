"""Sealing, opening and shredding with the key ring (pure: no I/O)."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from contactcenter.privacy import (
    ERASED,
    KeyRing,
    ShreddedCipher,
    UnknownMasterKey,
    is_sealed,
    open_or_erased,
    seal_or_erased,
)

MASTER = bytes(range(32))


def test_a_sealed_value_opens_only_for_its_tenant_and_subject() -> None:
    ring = KeyRing(MASTER, context="test", subject_kind="thing")
    wrapped = ring.wrap("t1", "s1", KeyRing.new_data_key())
    cipher = ring.cipher("t1", "s1", wrapped)
    sealed = cipher.seal("Ann Example, +41 44 555 12 34")
    assert is_sealed(sealed) and "Ann" not in sealed
    assert cipher.open(sealed) == "Ann Example, +41 44 555 12 34"
    other = ring.cipher("t1", "s2", ring.wrap("t1", "s2", KeyRing.new_data_key()))
    assert other.open(sealed) is None
    with pytest.raises(InvalidTag):  # the wrapped key is bound to its tenant and subject
        ring.cipher("t2", "s1", wrapped)


def test_a_destroyed_key_reads_as_erased_and_writes_nothing_personal() -> None:
    ring = KeyRing(MASTER, context="test", subject_kind="thing")
    cipher = ring.cipher("t1", "s1", ring.wrap("t1", "s1", KeyRing.new_data_key()))
    sealed = seal_or_erased(cipher, "hello")
    assert open_or_erased(cipher, sealed) == "hello"
    shredded = ring.cipher("t1", "s1", None)
    assert isinstance(shredded, ShreddedCipher)
    assert open_or_erased(shredded, sealed) == ERASED
    assert seal_or_erased(shredded, "late text") == ERASED
    assert open_or_erased(shredded, None) is None
    assert open_or_erased(shredded, "never sealed") == "never sealed"
    with pytest.raises(RuntimeError):
        shredded.seal("x")


def test_contexts_of_one_master_key_are_separate() -> None:
    a = KeyRing(MASTER, context="a", subject_kind="thing")
    b = KeyRing(MASTER, context="b", subject_kind="thing")
    a.set_index_root(a.legacy_index_root())
    b.set_index_root(b.legacy_index_root())
    assert a.digest("t1", "x") != b.digest("t1", "x")
    assert a.digest("t1", "x") != a.digest("t2", "x")
    wrapped = a.wrap("t1", "s1", KeyRing.new_data_key())
    with pytest.raises(UnknownMasterKey):  # the key id is per context too
        b.unwrap("t1", "s1", wrapped)


def test_the_master_key_has_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing(os.urandom(16), context="a", subject_kind="thing")

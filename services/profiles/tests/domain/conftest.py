"""Given events / when command / then events, for the pure profiles domain.

Test modules are imported with `--import-mode=importlib` and cannot import this file: they get
the harness through fixtures. `FakeCipher` seals reversibly (no crypto: the domain only needs
the port) and can be "shredded" to model an erased key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from contactcenter.profiles.domain import Identity


class FakeCipher:
    def __init__(self) -> None:
        self.shredded = False

    def seal(self, plaintext: str) -> str:
        return "sealed:" + plaintext[::-1]

    def open(self, sealed: str) -> str | None:
        return None if self.shredded else sealed.removeprefix("sealed:")[::-1]


class FakeRefs:
    def ref(self, identity: Identity) -> str:
        return hashlib.sha256(identity.key.encode()).hexdigest()


@pytest.fixture
def cipher() -> FakeCipher:
    return FakeCipher()


@pytest.fixture
def refs() -> FakeRefs:
    return FakeRefs()


@pytest.fixture
def t0() -> datetime:
    return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

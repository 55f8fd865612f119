"""Crypto-shredding of personal data: per-subject data keys wrapped by a master key, sealed
values, and the PostgreSQL key store whose erasure destroys the keys of an owner's subjects."""

from contactcenter.privacy.crypto import (
    ERASED,
    PREFIX,
    Cipher,
    KeyRing,
    ShreddedCipher,
    SubjectCipher,
    is_sealed,
    open_or_erased,
    seal_or_erased,
)
from contactcenter.privacy.keys import DDL, SubjectKeys

__all__ = [
    "DDL",
    "ERASED",
    "PREFIX",
    "Cipher",
    "KeyRing",
    "ShreddedCipher",
    "SubjectCipher",
    "SubjectKeys",
    "is_sealed",
    "open_or_erased",
    "seal_or_erased",
]

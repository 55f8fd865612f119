"""Crypto-shredding of personal data: per-subject data keys wrapped by a master key, sealed
values, and the PostgreSQL key store whose erasure destroys the keys of an owner's subjects."""

from contactcenter.privacy.crypto import (
    ERASED,
    PREFIX,
    Cipher,
    KeyRing,
    ShreddedCipher,
    SubjectCipher,
    UnknownMasterKey,
    is_sealed,
    master_key_id,
    open_or_erased,
    parse_master_keys,
    seal_or_erased,
)
from contactcenter.privacy.keys import DDL, SubjectKeys
from contactcenter.privacy.rotation import (
    INDEX_ROOT,
    SECRETS_DDL,
    KeyRingSecrets,
    KeyTable,
    RewrapReport,
    load_index_root,
    report_rotation,
    rewrap_keys,
    rotate_master_key,
)
from contactcenter.privacy.settings import MasterKeySettings, dev_only_master_key

__all__ = [
    "DDL",
    "ERASED",
    "INDEX_ROOT",
    "PREFIX",
    "SECRETS_DDL",
    "Cipher",
    "KeyRing",
    "KeyRingSecrets",
    "KeyTable",
    "MasterKeySettings",
    "RewrapReport",
    "ShreddedCipher",
    "SubjectCipher",
    "SubjectKeys",
    "UnknownMasterKey",
    "dev_only_master_key",
    "is_sealed",
    "load_index_root",
    "master_key_id",
    "open_or_erased",
    "parse_master_keys",
    "report_rotation",
    "rewrap_keys",
    "rotate_master_key",
    "seal_or_erased",
]

"""The profiles service's settings: environment variables prefixed `CC_PROFILES_` (nested ones
with `__`, e.g. `CC_PROFILES_AUTH__SIGNING_KEY`)."""

from __future__ import annotations

import base64
import hashlib

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactcenter.privacy import parse_master_keys
from contactcenter.servicekit import ServiceSettings

#: For local runs and tests only (it is public): production sets CC_PROFILES_MASTER_KEY.
DEV_ONLY_MASTER_KEY = base64.b64encode(
    hashlib.sha256(b"contact-center-dev-only-profiles-master-key").digest()
).decode()


class ProfilesSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_PROFILES_", env_nested_delimiter="__", extra="ignore"
    )

    #: The service's well-known local port (`make run`, docker-compose); tests pass 0.
    grpc_port: int = Field(default=50053, ge=0, le=65535)
    #: Base64 of 32 random bytes. Wraps every profile's data key and derives the tenants'
    #: identity-index secrets: losing it loses every profile's personal data.
    master_key: SecretStr = SecretStr(DEV_ONLY_MASTER_KEY)
    #: How long a tenant's settings (default region, attribute schema) are cached.
    tenant_settings_ttl_s: float = Field(default=5.0, ge=0)

    #: Earlier master keys still readable during a rotation (base64 of 32 bytes each,
    #: comma-separated): keys wrapped by them open, nothing new is wrapped with them. Unset once
    #: `python -m contactcenter.profiles rotate-master-key` reports the rotation complete.
    retired_master_keys: SecretStr | None = None

    def retired_master_keys_bytes(self) -> list[bytes]:
        if self.retired_master_keys is None:
            return []
        return parse_master_keys(
            self.retired_master_keys.get_secret_value(), "CC_PROFILES_RETIRED_MASTER_KEYS"
        )

    def master_key_bytes(self) -> bytes:
        key = base64.b64decode(self.master_key.get_secret_value())
        if len(key) != 32:
            raise ValueError("CC_PROFILES_MASTER_KEY must be base64 of 32 bytes")
        return key

    @property
    def uses_dev_master_key(self) -> bool:
        return self.master_key.get_secret_value() == DEV_ONLY_MASTER_KEY

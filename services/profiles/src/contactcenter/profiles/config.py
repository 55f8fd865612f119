"""The profiles service's settings: environment variables prefixed `CC_PROFILES_` (nested ones
with `__`, e.g. `CC_PROFILES_AUTH__SIGNING_KEY`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactcenter.privacy import MasterKeySettings, dev_only_master_key
from contactcenter.servicekit import ServiceSettings

#: For local runs and tests only (it is public): production sets CC_PROFILES_MASTER_KEY.
DEV_ONLY_MASTER_KEY = dev_only_master_key("profiles")


class ProfilesSettings(ServiceSettings, MasterKeySettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_PROFILES_", env_nested_delimiter="__", extra="ignore"
    )

    #: The service's well-known local port (`make run`, docker-compose); tests pass 0.
    #: The consumer (the interactions events behind history and last agent) is not
    #: latency-critical: Tansu answers a waiting fetch only when this expires, and polling
    #: every 25 ms costs the broker CPU at rest.
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0)
    grpc_port: int = Field(default=50053, ge=0, le=65535)
    #: Base64 of 32 random bytes. Wraps every profile's data key and derives the tenants'
    #: identity-index secrets: losing it loses every profile's personal data.
    master_key: SecretStr = SecretStr(DEV_ONLY_MASTER_KEY)
    #: How long a tenant's settings (default region, attribute schema) are cached.
    tenant_settings_ttl_s: float = Field(default=5.0, ge=0)
    #: Identity lookups each process keeps (adapters/identity_cache.py); 0 turns the cache off.
    identity_cache_entries: int = Field(default=100_000, ge=0)

"""The email service's settings: environment variables prefixed `CC_EMAIL_` (nested ones
with `__`, e.g. `CC_EMAIL_LIMITS__MAX_MESSAGE_BYTES`)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactcenter.email.adapters.mime import Limits
from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY
from contactcenter.privacy import MasterKeySettings, dev_only_master_key
from contactcenter.servicekit import ServiceSettings


class LimitSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    max_attachment_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_attachments: int = Field(default=100, gt=0)
    max_unzipped_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    max_zip_ratio: float = Field(default=100.0, gt=1)

    def limits(self) -> Limits:
        return Limits(**self.model_dump())


#: For local runs and tests only (it is public): production sets CC_EMAIL_MASTER_KEY.
DEV_ONLY_MASTER_KEY = dev_only_master_key("email")


def _peer(name: str, default: str) -> str:
    # `make run` tells each service where the services started before it listen.
    return os.environ.get(f"CC_PEER_{name}_GRPC", default)


class EmailSettings(ServiceSettings, MasterKeySettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_EMAIL_", env_nested_delimiter="__", extra="ignore"
    )

    #: The consumers (the interactions events that move a thread to its contact, profile
    #: merges and erasures) are not latency-critical: Tansu answers a waiting fetch only when
    #: this expires, and polling every 25 ms cost the broker a quarter of a core at rest.
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0)
    grpc_port: int = Field(default=50055, ge=0, le=65535)

    #: The SMTP listener (mail delivered or forwarded to the platform); port 0: a free one.
    smtp_enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = "mail.contactcenter.local"
    #: Hard cap of the listener (552 above it); tenants' limits below it quarantine instead.
    smtp_max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    #: Extra processes that receive SMTP on the same port (SO_REUSEPORT), beside the service's
    #: own event loop: receiving then uses more than one core.
    smtp_workers: int = Field(default=0, ge=0, le=32)

    #: Domain of the Message-IDs of our outgoing mail (also how our own mail is recognised).
    message_id_domain: str = "mail.contactcenter.local"

    #: Size limits; `tenant_limits` overrides them per tenant.
    limits: LimitSettings = Field(default_factory=LimitSettings)
    tenant_limits: dict[str, LimitSettings] = Field(default_factory=dict)

    #: The peers (empty: not called). Tokens for them are signed with `service_signing_key`.
    profiles_grpc_address: str = Field(default_factory=lambda: _peer("PROFILES", "127.0.0.1:50053"))
    interactions_grpc_address: str = Field(
        default_factory=lambda: _peer("INTERACTIONS", "127.0.0.1:50051")
    )
    service_signing_key: SecretStr = SecretStr(DEV_ONLY_SIGNING_KEY)
    #: Base64 of 32 random bytes: wraps the data key of every message's personal data in the
    #: events (crypto-shredding). The default is the public development key.
    master_key: SecretStr = SecretStr(DEV_ONLY_MASTER_KEY)
    #: How long processing waits for the profiles service before emitting without a profile.
    profile_wait_s: float = Field(default=60.0, ge=0)

    #: Outgoing mail relay (empty host: replies wait, retried, until one is configured).
    relay_host: str = ""
    relay_port: int = Field(default=25, ge=1, le=65535)
    relay_use_tls: bool = False
    relay_start_tls: bool = False
    relay_username: str | None = None
    relay_password: SecretStr | None = None
    reply_max_attempts: int = Field(default=8, ge=1)
    reply_base_delay_s: float = Field(default=5.0, ge=0)
    reply_max_delay_s: float = Field(default=3600.0, ge=0)

    imap_enabled: bool = True
    imap_poll_interval_s: float = Field(default=10.0, gt=0)
    imap_timeout_s: float = Field(default=60.0, gt=0)

    #: Whether this process parses and threads the stored messages (an intake-only replica
    #: sets False: it stores and answers SMTP, another process works the queue).
    processing_enabled: bool = True
    #: Worker processes that parse (0: parse in the service's event loop).
    parse_workers: int = Field(default=1, ge=0, le=32)
    process_batch_size: int = Field(default=200, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0)

    def limits_for(self, tenant_id: str) -> Limits:
        return self.tenant_limits.get(tenant_id, self.limits).limits()

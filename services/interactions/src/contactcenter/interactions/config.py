"""The interactions service's settings: environment variables prefixed `CC_INTERACTIONS_`
(nested ones with `__`, e.g. `CC_INTERACTIONS_AUTH__SIGNING_KEY`)."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY
from contactcenter.interactions.domain.personal import DEFAULT_PERSONAL_ATTRIBUTES
from contactcenter.interactions.domain.repeat import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS
from contactcenter.privacy import MasterKeySettings, dev_only_master_key
from contactcenter.servicekit import ServiceSettings

#: For local runs and tests only (it is public): production sets CC_INTERACTIONS_MASTER_KEY.
DEV_ONLY_MASTER_KEY = dev_only_master_key("interactions")


class InteractionsSettings(ServiceSettings, MasterKeySettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_INTERACTIONS_", env_nested_delimiter="__", extra="ignore"
    )

    #: Commands of concurrent callers append in shared statements (group commit).
    db_group_commit: bool = True
    #: The consumers (routing's offers, received email, profile merges and erasures) are not
    #: latency-critical: Tansu answers a waiting fetch only when this expires, and four
    #: consumers per process polling every 25 ms cost more CPU, here and in the broker, than
    #: a few hundred commands per second. 100 ms: at most that much later.
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0)

    #: The service's well-known local port (`make run`, docker-compose); tests pass 0.
    grpc_port: int = Field(default=50051, ge=0, le=65535)

    #: First-contact resolution: a contact of the same customer profile within this many days
    #: after an earlier one is marked a repeat of it (0 turns detection off).
    repeat_window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=0, le=MAX_WINDOW_DAYS)
    #: Only earlier contacts an agent connected to (or that completed) count.
    repeat_handled_only: bool = True
    #: Only earlier contacts with the same intent count.
    repeat_same_intent_only: bool = False

    #: Interactions whose state the command handlers keep in memory (0: read every stream).
    #: A stale entry (another replica appended) costs one retry, never a wrong decision.
    state_cache_size: int = Field(default=20_000, ge=0)

    #: ListInteractions: page size when the client asks for none, and the cap.
    list_default_page_size: int = Field(default=50, ge=1)
    list_max_page_size: int = Field(default=500, ge=1)
    #: The list read model reads the event store in batches of this many events.
    list_projection_batch_size: int = Field(default=1_000, ge=1)
    #: While appends keep coming, the list read model waits this long between batches.
    list_min_interval_s: float = Field(default=0.05, ge=0)
    #: Base64 of 32 random bytes: wraps the data key of every interaction's personal data
    #: (crypto-shredding; losing it loses every message, note and transcript).
    master_key: SecretStr = SecretStr(DEV_ONLY_MASTER_KEY)
    #: The email service, where the text of a received email (sealed in its events) is read
    #: (empty: not called; those fields then read as erased). `make run` tells it with
    #: CC_PEER_EMAIL_GRPC. Tokens for it are signed with `service_signing_key`.
    email_grpc_address: str = Field(
        default_factory=lambda: os.environ.get("CC_PEER_EMAIL_GRPC", "127.0.0.1:50055")
    )
    service_signing_key: SecretStr = SecretStr(DEV_ONLY_SIGNING_KEY)
    #: Attribute keys (case-insensitive) whose values are the customer's personal data:
    #: sealed like messages and erased with the customer's profile.
    personal_attributes: frozenset[str] = DEFAULT_PERSONAL_ATTRIBUTES

    #: Fallback polling of the event store when no append notification arrives (seconds).
    poll_interval_s: float = Field(default=0.5, gt=0)

"""Settings of a gRPC server; each service nests them in its own pydantic-settings config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# For local runs, tests and dev tools only: it is public (it is in this file). Production configures
# its own keys; the server logs a warning at start-up while this key is accepted.
DEV_ONLY_SIGNING_KEY = "contact-center-dev-only-signing-key-never-use-in-production"

# HS256 keys shorter than the hash output weaken the signature (RFC 7518, section 3.2).
MIN_HMAC_KEY_BYTES = 32


def _check_key(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value().encode()) < MIN_HMAC_KEY_BYTES:
        raise ValueError(f"an HS256 signing key needs at least {MIN_HMAC_KEY_BYTES} bytes")
    return key


class AuthSettings(BaseModel):
    """How bearer tokens (JWT, HS256) are verified.

    A token without a `kid` header is verified with `signing_key`; a token with a `kid` with
    `signing_keys[kid]`, which allows rotating keys without downtime. The default `signing_key`
    is the development key, so local runs need no configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    signing_key: SecretStr | None = SecretStr(DEV_ONLY_SIGNING_KEY)
    signing_keys: dict[str, SecretStr] = Field(default_factory=dict)
    issuer: str | None = None  # when set, tokens must carry this `iss`
    audience: str | None = None  # when set, tokens must carry this `aud`
    leeway_seconds: float = Field(default=30.0, ge=0)  # tolerated clock skew for exp/iat/nbf

    @field_validator("signing_key")
    @classmethod
    def _strong_key(cls, key: SecretStr | None) -> SecretStr | None:
        return None if key is None else _check_key(key)

    @field_validator("signing_keys")
    @classmethod
    def _strong_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {kid: _check_key(key) for kid, key in keys.items()}

    @property
    def uses_dev_key(self) -> bool:
        keys = [self.signing_key, *self.signing_keys.values()]
        return any(k is not None and k.get_secret_value() == DEV_ONLY_SIGNING_KEY for k in keys)


class GrpcServerSettings(BaseModel):
    """Where and how a service's gRPC server listens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Loopback by default so a dev key never listens on a public interface by accident;
    # containers set host="0.0.0.0" (or "[::]").
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)  # 0: the OS picks one; GrpcServer.port tells
    # How long in-flight RPCs may finish after stop() before they are cancelled.
    grace_period_seconds: float = Field(default=10.0, ge=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_concurrent_rpcs: int | None = Field(default=None, gt=0)
    # Share the port with other processes that set it too (SO_REUSEPORT: the kernel spreads
    # connections over them). Off by default: a taken port then fails loudly.
    reuse_port: bool = False
    reflection: bool = True
    auth: AuthSettings = Field(default_factory=AuthSettings)

"""The master key settings of a service that seals personal data, mixed into its
`ServiceSettings` subclass (which names the environment prefix and the default key)."""

from __future__ import annotations

import base64
import hashlib

from pydantic import BaseModel, SecretStr

from contactcenter.privacy.crypto import parse_master_keys


def dev_only_master_key(service: str) -> str:
    """The service's public development master key (local runs and tests only)."""
    digest = hashlib.sha256(f"contact-center-dev-only-{service}-master-key".encode()).digest()
    return base64.b64encode(digest).decode()


class MasterKeySettings(BaseModel):
    """`class XSettings(ServiceSettings, MasterKeySettings)`, with `master_key` defaulting to
    `dev_only_master_key(<service>)` there."""

    #: Base64 of 32 random bytes. Wraps every data key: losing it loses the personal data.
    master_key: SecretStr = SecretStr("")
    #: Earlier master keys still readable during a rotation (base64 of 32 bytes each,
    #: comma-separated): keys wrapped by them open, nothing new is wrapped with them. Unset once
    #: `python -m contactcenter.<service> rotate-master-key` reports the rotation complete.
    retired_master_keys: SecretStr | None = None

    def _variable(self, field: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    def master_key_bytes(self) -> bytes:
        variable = self._variable("master_key")
        keys = parse_master_keys(self.master_key.get_secret_value(), variable)
        if len(keys) != 1:
            raise ValueError(f"{variable} must be base64 of 32 bytes (one key)")
        return keys[0]

    def retired_master_keys_bytes(self) -> list[bytes]:
        if self.retired_master_keys is None:
            return []
        return parse_master_keys(
            self.retired_master_keys.get_secret_value(), self._variable("retired_master_keys")
        )

    @property
    def uses_dev_master_key(self) -> bool:
        """Whether the key is still the public development default."""
        default = type(self).model_fields["master_key"].default
        return bool(self.master_key.get_secret_value() == default.get_secret_value())

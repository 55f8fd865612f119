"""The master key settings every sealing service mixes into its settings."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contactcenter.privacy import MasterKeySettings, dev_only_master_key


class _Settings(BaseSettings, MasterKeySettings):
    model_config = SettingsConfigDict(env_prefix="CC_SEALER_", extra="ignore")
    master_key: SecretStr = SecretStr(dev_only_master_key("sealer"))


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_the_dev_key_is_the_default_and_is_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _Settings()
    assert settings.uses_dev_master_key
    assert len(settings.master_key_bytes()) == 32
    assert settings.retired_master_keys_bytes() == []
    real, old = _key(), _key()
    monkeypatch.setenv("CC_SEALER_MASTER_KEY", real)
    monkeypatch.setenv("CC_SEALER_RETIRED_MASTER_KEYS", f"{old}, ")
    configured = _Settings()
    assert not configured.uses_dev_master_key
    assert configured.master_key_bytes() == base64.b64decode(real)
    assert configured.retired_master_keys_bytes() == [base64.b64decode(old)]


@pytest.mark.parametrize("bad", ["", "abc", base64.b64encode(b"short").decode()])
def test_a_bad_key_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(ValueError, match="CC_SEALER_MASTER_KEY"):
        _Settings(master_key=SecretStr(bad)).master_key_bytes()
    with pytest.raises(ValueError, match="CC_SEALER_RETIRED_MASTER_KEYS"):
        _Settings(retired_master_keys=SecretStr(bad or "x")).retired_master_keys_bytes()

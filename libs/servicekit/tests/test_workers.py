"""The `workers` setting: processes of one service on one port."""

from __future__ import annotations

import pytest

from contactcenter.servicekit import ServiceSettings
from contactcenter.servicekit.app import start_workers


def test_one_worker_is_this_process_alone() -> None:
    settings = ServiceSettings(grpc_port=50999)
    assert start_workers(settings) == []
    assert settings.grpc().reuse_port is False  # a taken port still fails loudly


def test_workers_share_a_fixed_port() -> None:
    assert ServiceSettings(grpc_port=50999, workers=2).grpc().reuse_port is True
    assert ServiceSettings(grpc_port=50999, grpc_reuse_port=True).grpc().reuse_port is True
    with pytest.raises(ValueError, match="fixed gRPC port"):
        start_workers(ServiceSettings(grpc_port=0, workers=2))

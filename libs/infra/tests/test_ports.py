"""Ports for servers started a little later: never one an outgoing connection may take."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from contactcenter.infra.process import free_port, hold_port, port_is_free


def _ephemeral_from() -> int:
    path = Path("/proc/sys/net/ipv4/ip_local_port_range")
    return int(path.read_text().split()[0]) if path.exists() else 32_768


def test_free_ports_lie_below_the_ephemeral_range_and_differ() -> None:
    ports = [free_port("127.0.0.1") for _ in range(200)]  # taken before any server binds
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < _ephemeral_from() for port in ports), ports
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_a_held_port_is_taken_for_others_but_its_server_can_listen() -> None:
    port = free_port("127.0.0.1")
    hold = hold_port("127.0.0.1", port)
    try:
        plain = socket.socket()
        with pytest.raises(OSError):  # what a connect's automatic bind would meet
            plain.bind(("127.0.0.1", port))
        plain.close()
        with socket.socket() as server:  # servers bind with SO_REUSEADDR
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
    finally:
        hold.close()

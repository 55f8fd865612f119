"""A call that met a database outage gets UNAVAILABLE (clients retry it), not INTERNAL."""

from __future__ import annotations

import asyncpg
import grpc

from contactcenter.grpckit.errors import status_for
from contactcenter.servicekit.app import OUTAGE_STATUS


def test_a_lost_database_connection_is_unavailable() -> None:
    for error in (
        ConnectionResetError(104, "Connection reset by peer"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ):
        assert status_for(error, OUTAGE_STATUS).code is grpc.StatusCode.UNAVAILABLE, error


def test_other_errors_stay_internal() -> None:
    assert status_for(KeyError("x"), OUTAGE_STATUS).code is grpc.StatusCode.INTERNAL

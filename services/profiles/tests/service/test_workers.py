"""CC_PROFILES_GRPC_WORKERS=2: a second process serves the same gRPC port (SO_REUSEPORT) as a
replica: connections land on both processes, both resolve against the one identity index
(one profile for one new identity, whichever process is asked), and the worker stops with the
primary."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import grpc
import psutil
import pytest

from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import create_app
from contactcenter.profiles.v1 import profiles_pb2 as pb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pb_grpc
from contactcenter.testing.services import service_test_settings, serving, temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _tcp(pid: int, port: int, status: str) -> int:
    return sum(
        1
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == status
    )


async def test_a_worker_process_serves_the_same_port_as_a_replica(infra: TestInfra) -> None:
    async with temporary_database(infra.database_url, "test_profiles_workers") as url:
        settings = ProfilesSettings(
            **service_test_settings(url, infra.kafka_bootstrap), grpc_workers=2
        )
        app = create_app(settings)
        async with serving(app):
            assert app.grpc is not None and app.workers is not None
            port = app.grpc.port
            deadline = time.monotonic() + 60
            while True:
                (worker,) = app.workers.processes
                if worker is not None and worker.pid and _tcp(worker.pid, port, "LISTEN"):
                    break
                assert time.monotonic() < deadline, "the worker did not listen within 60 s"
                await asyncio.sleep(0.2)
            assert worker.pid is not None
            tenant = f"t-{uuid.uuid4().hex[:8]}"
            metadata = metadata_for(issue_token(tenant, [Role.SERVICE], "ivr"))
            # Separate connections (gRPC shares one between channels unless told not to):
            # the kernel spreads them over both processes.
            channels = [
                grpc.aio.insecure_channel(
                    app.grpc.address, options=[("grpc.use_local_subchannel_pool", 1)]
                )
                for _ in range(16)
            ]
            try:
                stubs = [pb_grpc.ProfilesServiceStub(c) for c in channels]
                identity = pb.Identity(kind=pb.IDENTITY_KIND_EMAIL, value="both@example.com")
                answers = await asyncio.gather(
                    *(
                        s.ResolveIdentity(
                            pb.ResolveIdentityRequest(
                                request_id=str(uuid.uuid4()), identity=identity
                            ),
                            metadata=metadata,
                            timeout=30,
                        )
                        for s in stubs
                    )
                )
                assert len({a.profile_id for a in answers}) == 1
                assert sum(a.created for a in answers) == 1
                assert _tcp(worker.pid, port, "ESTABLISHED") > 0
                assert _tcp(psutil.Process().pid, port, "ESTABLISHED") > 0
            finally:
                for channel in channels:
                    await channel.close()
        worker.join(10)
        assert not worker.is_alive()

"""What the running services offer, read from the servers themselves (gRPC reflection) and the
protobuf descriptors, so that a new service or RPC is covered by the suites that use it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from contactcenter.infra.paths import project_root

PUBLIC = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
PUBLIC_PREFIXES = ("grpc.",)


def import_all_stubs() -> None:
    """Load every generated `*_pb2` module of `proto/`, filling the default descriptor pool."""
    for proto in sorted((project_root() / "proto").rglob("*.proto")):
        parts = proto.relative_to(project_root() / "proto").with_suffix("").parts
        module = ".".join(parts[:-1]) + f".{parts[-1]}_pb2"
        importlib.import_module(module)


def served_services(address: str) -> list[str]:
    """The full names of the services a server serves (reflection), without the public ones."""
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: list[str] = []
        for reply in stub.ServerReflectionInfo(iter([request]), timeout=10):
            names += [s.name for s in reply.list_services_response.service]
    return sorted(n for n in names if n not in PUBLIC and not n.startswith(PUBLIC_PREFIXES))


@dataclass(frozen=True)
class Rpc:
    service: str  # the service's name in the system (interactions, routing ...)
    descriptor: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    @property
    def key(self) -> str:
        return f"{self.descriptor.containing_service.name}/{self.descriptor.name}"

    @property
    def streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.descriptor.input_type)

    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.descriptor.output_type)

    def callable(self, channel: grpc.Channel) -> Any:
        response = self.response_class()
        if self.streaming:
            return channel.unary_stream(
                self.path,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )
        return channel.unary_unary(
            self.path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )


def service_rpcs(name: str, address: str) -> Iterator[Rpc]:
    import_all_stubs()
    pool = descriptor_pool.Default()
    for full_name in served_services(address):
        service: ServiceDescriptor = pool.FindServiceByName(full_name)
        for method in service.methods:
            yield Rpc(name, method)

"""gRPC server kit: server factory, health, reflection, JWT auth, error mapping, deadlines."""

from contactcenter.grpckit.auth import (
    TokenVerifier,
    bearer_token,
    issue_token,
    metadata_for,
    requires_roles,
)
from contactcenter.grpckit.context import (
    ALL_ROLES,
    Caller,
    Role,
    bind_rpc,
    current_caller,
    current_caller_or_none,
    current_tenant_id,
    time_remaining,
)
from contactcenter.grpckit.errors import pydantic_violations, status_for
from contactcenter.grpckit.health import HealthState
from contactcenter.grpckit.server import GrpcServer, ServiceRegistration, create_server
from contactcenter.grpckit.settings import DEV_ONLY_SIGNING_KEY, AuthSettings, GrpcServerSettings
from contactcenter.grpckit.validation import (
    invalid_fields,
    missing_fields,
    require_fields,
    require_valid_fields,
)

__all__ = [
    "ALL_ROLES",
    "DEV_ONLY_SIGNING_KEY",
    "AuthSettings",
    "Caller",
    "GrpcServer",
    "GrpcServerSettings",
    "HealthState",
    "Role",
    "ServiceRegistration",
    "TokenVerifier",
    "bearer_token",
    "bind_rpc",
    "create_server",
    "current_caller",
    "current_caller_or_none",
    "current_tenant_id",
    "invalid_fields",
    "issue_token",
    "metadata_for",
    "missing_fields",
    "pydantic_violations",
    "require_fields",
    "require_valid_fields",
    "requires_roles",
    "status_for",
    "time_remaining",
]

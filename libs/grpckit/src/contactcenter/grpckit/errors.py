"""Exceptions -> gRPC statuses with rich error details (google.rpc.Status).

Every status carries an `ErrorInfo` (domain `contactcenter`, a stable `reason`, metadata);
INVALID_ARGUMENT adds `BadRequest` field violations, NOT_FOUND / ALREADY_EXISTS a `ResourceInfo`
when the resource is named, FAILED_PRECONDITION a `PreconditionFailure`. Clients read them with
`grpc_status.rpc_status.from_call(error)`.

An exception nobody named becomes INTERNAL with an incident id; its traceback is logged under
that id and never sent to the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping

import grpc
import pydantic
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from contactcenter.contracts.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "contactcenter"

# Looked up along the exception's MRO, so subclasses (e.g. IllegalTransition) inherit a code.
DOMAIN_ERROR_CODES: Mapping[type[DomainError], grpc.StatusCode] = {
    ValidationFailed: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ConcurrencyConflict: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    # A bare DomainError is a business rule the system's state does not allow.
    DomainError: grpc.StatusCode.FAILED_PRECONDITION,
}


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _code_for(
    error: BaseException, extra_codes: Mapping[type[BaseException], grpc.StatusCode]
) -> grpc.StatusCode | None:
    for cls in type(error).__mro__:
        if cls in extra_codes:
            return extra_codes[cls]
        if cls in DOMAIN_ERROR_CODES:
            return DOMAIN_ERROR_CODES[cls]
    return None


def _rich_status(
    code: grpc.StatusCode, message: str, details: Iterable[Message] = ()
) -> grpc.Status:
    status = status_pb2.Status(
        code=code.value[0], message=message, details=[_pack(d) for d in details]
    )
    return rpc_status.to_status(status)


def bad_request(violations: Iterable[FieldViolation]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )


def _domain_details(error: DomainError) -> list[Message]:
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata()
        )
    ]
    if isinstance(error, ValidationFailed):
        details.append(bad_request(error.field_violations))
    elif isinstance(error, NotFound | AlreadyExists) and error.resource_type:
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=error.resource_type,
                resource_name=error.resource_name or "",
                description=error.message,
            )
        )
    elif isinstance(error, FailedPrecondition):
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=error.reason,
                        subject=error.current_state or "",
                        description=error.message,
                    )
                ]
            )
        )
    return details


def pydantic_violations(error: pydantic.ValidationError) -> list[FieldViolation]:
    """Field violations of a pydantic error, with paths like `identities[0].value`."""
    violations = []
    for item in error.errors(include_url=False):
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        violations.append(FieldViolation(path or "(request)", item["msg"]))
    return violations


def status_for(
    error: BaseException,
    extra_codes: Mapping[type[BaseException], grpc.StatusCode] | None = None,
    *,
    method: str = "",
) -> grpc.Status:
    """The status a client gets for `error` raised while serving `method`."""
    code = _code_for(error, extra_codes or {})
    if isinstance(error, DomainError) and code is not None:
        logger.debug("%s failed: %s %s", method, code.name, error)
        return _rich_status(code, error.message, _domain_details(error))
    if code is not None:
        logger.debug("%s failed: %s %s", method, code.name, error)
        return _rich_status(code, str(error) or code.name.lower())
    if isinstance(error, pydantic.ValidationError):
        violations = pydantic_violations(error)
        return _rich_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "; ".join(f"{v.field}: {v.description}" for v in violations),
            [
                error_details_pb2.ErrorInfo(reason=ValidationFailed.reason, domain=ERROR_DOMAIN),
                bad_request(violations),
            ],
        )
    if isinstance(error, NotImplementedError):
        return _rich_status(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
    incident = uuid.uuid4().hex
    logger.error("unhandled error in %s (incident %s)", method, incident, exc_info=error)
    return _rich_status(
        grpc.StatusCode.INTERNAL,
        f"internal error (incident {incident})",
        [
            error_details_pb2.ErrorInfo(
                reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"incident": incident}
            )
        ],
    )

"""What a handler knows about the RPC it serves: the authenticated caller and the deadline.

The server interceptor sets both before it calls a handler. Each RPC runs in its own asyncio task,
so the values never leak from one RPC to another; application code several calls below the
servicer reads them without a `context` parameter.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from contactcenter.contracts.errors import Unauthenticated


class Role(enum.StrEnum):
    """What a caller may be; a token may carry several."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SERVICE = "service"  # another backend service or a gateway (IVR, telephony, chat widget)
    #: Reads audit trails (e.g. the profiles service's access audit); granted only where a
    #: method names it, never by default.
    AUDITOR = "auditor"


#: The operational roles: what a method allows when it names none (not AUDITOR).
ALL_ROLES: frozenset[Role] = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SERVICE})


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of an RPC, from its bearer token."""

    tenant_id: str
    subject: str
    roles: frozenset[Role]

    def has_any_role(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)


_caller: ContextVar[Caller | None] = ContextVar("contactcenter_grpc_caller", default=None)
# Absolute deadline of the current RPC on the event loop's clock (None: the client set none).
_deadline: ContextVar[float | None] = ContextVar("contactcenter_grpc_deadline", default=None)


def current_caller() -> Caller:
    """The caller of the RPC being served; fails closed (UNAUTHENTICATED) outside of one."""
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller")
    return caller


def current_caller_or_none() -> Caller | None:
    return _caller.get()


def current_tenant_id() -> str:
    """The tenant every read and write of the current RPC is scoped to."""
    return current_caller().tenant_id


def time_remaining() -> float | None:
    """Seconds left before the client's deadline (never negative); None when it set no deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(0.0, deadline - asyncio.get_running_loop().time())


def bind_rpc(caller: Caller | None, time_remaining: float | None) -> None:
    """Make the caller and deadline of the RPC visible to the code that serves it.

    Called by the interceptor inside the RPC's task (and by tests that call application code
    directly). Nothing is reset afterwards: the task's context ends with the RPC.
    """
    _caller.set(caller)
    _deadline.set(
        None if time_remaining is None else asyncio.get_running_loop().time() + time_remaining
    )

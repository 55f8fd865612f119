"""Bearer tokens: issuing (tests, dev tools) and verifying (the server interceptor).

A token is a JWT signed with HS256. Claims:
- `tenant_id` (or `tid`): the tenant every read and write is scoped to;
- `roles`: a list of `agent`, `supervisor`, `admin`, `service` (unknown roles are ignored, so an
  identity provider that adds a role does not lock everybody out);
- `sub`: who calls; `exp`: when the token expires (required); `iat`; optional `iss` and `aud`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import jwt
from pydantic import SecretStr

from contactcenter.contracts.errors import Unauthenticated
from contactcenter.grpckit.context import Caller, Role
from contactcenter.grpckit.settings import DEV_ONLY_SIGNING_KEY, AuthSettings

ALGORITHM = "HS256"
MAX_TENANT_ID_LENGTH = 128  # as in DomainEvent.tenant_id


def issue_token(
    tenant_id: str,
    roles: Iterable[Role | str],
    subject: str,
    key: str | SecretStr = DEV_ONLY_SIGNING_KEY,
    ttl: timedelta = timedelta(hours=1),
    *,
    key_id: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A signed bearer token. A negative `ttl` gives an already expired token (for tests)."""
    secret = key.get_secret_value() if isinstance(key, SecretStr) else key
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant_id": tenant_id,
        "roles": sorted(str(Role(r)) for r in roles),
        "iat": now,
        "exp": now + int(ttl.total_seconds()),
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    headers = None if key_id is None else {"kid": key_id}
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers=headers)


class TokenVerifier:
    """Turns a bearer token into a Caller, or raises Unauthenticated.

    A desktop or a service sends the same token on every call until it expires; verifying it
    (PyJWT, HMAC) costs about as much CPU as a cheap RPC itself, so verified tokens are kept
    until their `exp` (bounded; only tokens that passed every check are kept).
    """

    def __init__(self, settings: AuthSettings, *, cache_size: int = 10_000) -> None:
        self._settings = settings
        self._cache_size = cache_size
        self._verified: dict[str, tuple[Caller, float]] = {}

    def _key_for(self, token: str) -> str:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise Unauthenticated("malformed bearer token") from None
        if kid is None:
            key = self._settings.signing_key
        elif isinstance(kid, str):
            key = self._settings.signing_keys.get(kid)
        else:
            key = None
        if key is None:
            raise Unauthenticated("bearer token signed with an unknown key")
        return key.get_secret_value()

    def verify(self, token: str) -> Caller:
        cached = self._verified.get(token)
        if cached is not None:
            caller, expires_at = cached
            if time.time() < expires_at:
                return caller
            del self._verified[token]
        caller, expires_at = self._verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()  # simple and bounded: a full cache starts over
        self._verified[token] = (caller, expires_at)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],  # never trust the token's own `alg`
                options={"require": ["exp", "sub"]},
                issuer=self._settings.issuer,
                audience=self._settings.audience,
                leeway=self._settings.leeway_seconds,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("bearer token expired") from None
        except jwt.InvalidTokenError:
            # The reason (bad signature, wrong audience...) stays on the server: no oracle.
            raise Unauthenticated("invalid bearer token") from None
        # Kept until exp exactly (no leeway): a cached token never outlives a fresh check.
        return _caller_from(claims), float(claims["exp"])


def _caller_from(claims: dict[str, Any]) -> Caller:
    tenant_id = claims.get("tenant_id", claims.get("tid"))
    if not isinstance(tenant_id, str) or not 0 < len(tenant_id) <= MAX_TENANT_ID_LENGTH:
        raise Unauthenticated("bearer token names no valid tenant")
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("bearer token names no subject")
    raw_roles = claims.get("roles", [])
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise Unauthenticated("bearer token roles must be a list of strings")
    known = {r.value for r in Role}
    roles = frozenset(Role(r) for r in raw_roles if r in known)
    return Caller(tenant_id=tenant_id, subject=subject, roles=roles)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of the single `authorization: Bearer <token>` metadata entry."""
    values = [v for k, v in metadata or () if k.lower() == "authorization"]
    if not values:
        raise Unauthenticated("missing bearer token (metadata `authorization: Bearer <token>`)")
    if len(values) > 1:
        raise Unauthenticated("more than one authorization metadata entry")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("authorization metadata must be `Bearer <token>`")
    return token.strip()


F = TypeVar("F", bound=Callable[..., Any])

REQUIRED_ROLES_ATTRIBUTE = "__contactcenter_required_roles__"


def requires_roles(*roles: Role) -> Callable[[F], F]:
    """Restrict a servicer method to callers holding at least one of `roles`.

        class QueueAdmin(queues_pb2_grpc.QueueAdminServiceServicer):
            @requires_roles(Role.SUPERVISOR, Role.ADMIN)
            async def UpsertQueue(self, request, context): ...

    Read by create_server when the service is registered; a ServiceRegistration's explicit
    `method_roles` entry wins over the decorator.
    """
    if not roles:
        raise ValueError("requires_roles needs at least one role")
    allowed = frozenset(Role(r) for r in roles)

    def mark(method: F) -> F:
        setattr(method, REQUIRED_ROLES_ATTRIBUTE, allowed)
        return method

    return mark


def metadata_for(token: str) -> tuple[tuple[str, str]]:
    """Call metadata that authenticates a client call: `stub.Echo(req, metadata=...)`."""
    return (("authorization", f"Bearer {token}"),)

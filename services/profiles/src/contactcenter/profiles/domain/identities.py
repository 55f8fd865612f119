"""Customer identities and their normal form.

Two spellings of one identity must compare equal, or one customer gets two profiles:
- email: trimmed and lower-cased (no mail system we deal with treats local parts as
  case-sensitive), the domain in its IDNA ASCII form (`bücher.ch` -> `xn--bcher-kva.ch`);
- phone: E.164 via `phonenumbers`; a number without a country code is read in the tenant's
  default region;
- chat and social handles: NFKC, trimmed, case-folded, a leading `@` dropped; the provider or
  network (`namespace`) is part of the identity;
- CRM ids: kept as given (ids are case-sensitive), within their system (`namespace`).

Pure: `phonenumbers` and `idna` are data libraries, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import idna
import phonenumbers

from contactcenter.contracts.errors import ValidationFailed

MAX_IDENTITY_LENGTH: Final = 320  # RFC 5321: 64 + 1 + 255, rounded to the usual limit
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_REGION = re.compile(r"^[A-Z]{2}$")
# An all-ASCII domain (the common case) needs no IDNA mapping, only the hostname rules.
_ASCII_DOMAIN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CHAT = "chat"
    SOCIAL = "social"
    CRM = "crm"

    @property
    def namespaced(self) -> bool:
        return self in (IdentityKind.CHAT, IdentityKind.SOCIAL, IdentityKind.CRM)


@dataclass(frozen=True, slots=True)
class Identity:
    """A normalised identity (build it with `normalise`)."""

    kind: IdentityKind
    value: str
    namespace: str = ""

    @property
    def key(self) -> str:
        """The text the identity index hashes: one per identity, whatever its spelling."""
        return f"{self.kind.value}\x1f{self.namespace}\x1f{self.value}"

    def masked(self) -> str:
        """What a caller without the right to see the identity gets."""
        return mask(self.kind, self.value)


def check_region(field: str, region: str) -> str:
    region = region.strip().upper()
    if not _REGION.match(region) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed([(field, f"not an ISO 3166 region with phone numbers: {region!r}")])
    return region


def normalise(
    kind: IdentityKind | None,
    value: str,
    namespace: str = "",
    *,
    default_region: str | None = None,
    field: str = "identity",
) -> Identity:
    """The identity's normal form; `ValidationFailed` names `<field>.value` (or `.kind`,
    `.namespace`) when it is not a valid identity."""
    if kind is None:
        raise ValidationFailed([(f"{field}.kind", "is required")])
    raw = value.strip()
    if not raw:
        raise ValidationFailed([(f"{field}.value", "is required")])
    if len(raw) > MAX_IDENTITY_LENGTH:
        raise ValidationFailed(
            [(f"{field}.value", f"longer than {MAX_IDENTITY_LENGTH} characters")]
        )
    if kind is IdentityKind.EMAIL:
        return Identity(kind, _email(raw, f"{field}.value"))
    if kind is IdentityKind.PHONE:
        return Identity(kind, _phone(raw, default_region, f"{field}.value"))
    ns = namespace.strip().lower()
    if not _NAMESPACE.match(ns):
        raise ValidationFailed(
            [(f"{field}.namespace", f"{kind.value} identities need a namespace ([a-z0-9._-])")]
        )
    if kind is IdentityKind.CRM:
        if any(unicodedata.category(c).startswith("C") for c in raw):
            raise ValidationFailed([(f"{field}.value", "contains control characters")])
        return Identity(kind, raw, ns)
    return Identity(kind, _handle(raw, f"{field}.value"), ns)


def _email(raw: str, field: str) -> str:
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain:
        raise ValidationFailed([(field, "not an email address (local@domain)")])
    if not _EMAIL_LOCAL.match(local) or local.startswith(".") or ".." in local:
        raise ValidationFailed([(field, "not a valid email local part")])
    if domain.isascii():
        ascii_domain = domain.rstrip(".").lower()
        if len(ascii_domain) > 253 or not _ASCII_DOMAIN.match(ascii_domain):
            raise ValidationFailed([(field, "not a valid email domain")])
        return f"{local.lower()}@{ascii_domain}"
    try:
        # UTS 46 mapping lower-cases and normalises the domain before punycode.
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationFailed([(field, f"not a valid email domain: {exc}")]) from None
    if "." not in ascii_domain:
        raise ValidationFailed([(field, "the email domain needs a dot")])
    return f"{local.lower()}@{ascii_domain.lower()}"


def _phone(raw: str, default_region: str | None, field: str) -> str:
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if raw.startswith("+") or default_region else " (no default region is set)"
        raise ValidationFailed([(field, f"not a phone number: {exc}{hint}")]) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed([(field, "not a valid phone number")])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _handle(raw: str, field: str) -> str:
    handle = unicodedata.normalize("NFKC", raw).strip().casefold().removeprefix("@")
    if not handle or any(c.isspace() or unicodedata.category(c).startswith("C") for c in handle):
        raise ValidationFailed([(field, "a handle has no spaces or control characters")])
    return handle


def mask(kind: IdentityKind, value: str) -> str:
    """Enough to recognise an identity on a call ("is this j***@example.com?"), not to use it."""
    if kind is IdentityKind.EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if kind is IdentityKind.PHONE:
        return value[:3] + "*" * max(0, len(value) - 5) + value[-2:]
    return value[:2] + "***"

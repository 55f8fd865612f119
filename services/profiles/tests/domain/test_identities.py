"""Normalisation of identities: every spelling of one identity has one normal form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.profiles.domain import IdentityKind, mask, normalise

EMAIL, PHONE = IdentityKind.EMAIL, IdentityKind.PHONE


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("jane@bücher.ch", "jane@xn--bcher-kva.ch"),
        ("JANE@BÜCHER.CH", "jane@xn--bcher-kva.ch"),
        ("jane@xn--bcher-kva.ch", "jane@xn--bcher-kva.ch"),
        ("a+tag@sub.example.org.", "a+tag@sub.example.org"),
    ],
)
def test_emails(raw: str, normal: str) -> None:
    assert normalise(EMAIL, raw).value == normal


@pytest.mark.parametrize(
    "raw",
    [
        "plain",
        "@example.com",
        "jane@",
        "jane@localhost",
        "ja ne@example.com",
        "jane..doe@example.com",
        "jane@-bad-.com",
        "jane@exa_mple.com",
    ],
)
def test_bad_emails_name_the_field(raw: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalise(EMAIL, raw, field="add_identities[2]")
    assert [v.field for v in caught.value.field_violations] == ["add_identities[2].value"]


@pytest.mark.parametrize(
    ("raw", "region", "normal"),
    [
        ("+41 44 668 18 00", None, "+41446681800"),
        ("044 668 18 00", "CH", "+41446681800"),
        ("0041446681800", "CH", "+41446681800"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("+1 201-555-0123", "CH", "+12015550123"),
    ],
)
def test_phones_in_e164(raw: str, region: str | None, normal: str) -> None:
    assert normalise(PHONE, raw, default_region=region).value == normal


@pytest.mark.parametrize(
    ("raw", "region"), [("044 668 18 00", None), ("12", "CH"), ("+99 1", None)]
)
def test_bad_phones(raw: str, region: str | None) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalise(PHONE, raw, default_region=region)
    assert caught.value.field_violations[0].field == "identity.value"


def test_handles_and_crm_ids() -> None:
    assert normalise(IdentityKind.SOCIAL, " @Jane_Doe ", "X").value == "jane_doe"
    assert normalise(IdentityKind.SOCIAL, "@Jane_Doe", "x").namespace == "x"
    fullwidth_jane = "\uff2a\uff41\uff4e\uff45"
    assert normalise(IdentityKind.CHAT, fullwidth_jane, "widget").value == "jane"  # NFKC
    crm = normalise(IdentityKind.CRM, " 003Xy00000AbCdE ", "Salesforce")
    assert (crm.value, crm.namespace) == ("003Xy00000AbCdE", "salesforce")
    with pytest.raises(ValidationFailed) as caught:
        normalise(IdentityKind.CRM, "1", "")
    assert caught.value.field_violations[0].field == "identity.namespace"
    with pytest.raises(ValidationFailed):
        normalise(None, "x")


def test_masking() -> None:
    assert mask(EMAIL, "jane@example.com") == "j***@example.com"
    assert mask(PHONE, "+41446681800") == "+41*******00"


@given(
    local=st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,20}[a-z0-9])?", fullmatch=True),
    domain=st.sampled_from(["example.com", "Bücher.ch", "EXAMPLE.org", "münchen.de"]),
    upper=st.booleans(),
)
def test_email_normalisation_is_idempotent_and_case_blind(
    local: str, domain: str, upper: bool
) -> None:
    if ".." in local:
        return
    raw = f"{local}@{domain}"
    once = normalise(EMAIL, raw.upper() if upper else raw)
    assert normalise(EMAIL, once.value) == once
    assert once == normalise(EMAIL, raw.lower())


@given(st.integers(min_value=200_0000, max_value=999_9999))
def test_phone_normalisation_is_idempotent(number: int) -> None:
    raw = f"+1 212 {number}"
    try:
        once = normalise(PHONE, raw)
    except ValidationFailed:
        return
    assert normalise(PHONE, once.value) == once

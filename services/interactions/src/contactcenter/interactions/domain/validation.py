"""Input checks that collect every field violation before raising ValidationFailed once.

Field paths follow the gRPC request fields (`queue.required_skills[1].min_proficiency`), so
the adapter can send them as BadRequest field violations unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from contactcenter.contracts.errors import FieldViolation, ValidationFailed
from contactcenter.interactions.domain.values import AttachmentRef, SkillRequirement

MAX_ID_LENGTH: Final = 128
MAX_CODE_LENGTH: Final = 64
MAX_SHORT_TEXT: Final = 256
MAX_ADDRESS_LENGTH: Final = 512
MAX_SUBJECT_LENGTH: Final = 1_000
MAX_BODY_LENGTH: Final = 100_000
MAX_NOTE_LENGTH: Final = 10_000
MAX_COMMENT_LENGTH: Final = 4_000
MAX_TRANSCRIPT_TEXT: Final = 10_000
MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_VALUE: Final = 1_024
MAX_SKILLS: Final = 32
MAX_ATTACHMENTS: Final = 50
MAX_DISPOSITION_CODES: Final = 20
MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 100
MAX_PROFICIENCY: Final = 10

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*(;.*)?$", re.IGNORECASE)
#: Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Whitespace as str.isspace() sees it (an id must not contain any).
_WHITESPACE = re.compile(r"\s")


def given(value: str | None) -> bool:
    """proto3 sends "" for an unset string: both None and "" mean "not given"."""
    return bool(value)


def or_none(value: str | None) -> str | None:
    return value or None


def _has_controls(text: str, allow_newlines: bool) -> bool:
    """Control characters (category Cc); tab, LF and CR allowed with `allow_newlines`."""
    return (_CONTROLS_BUT_NEWLINES if allow_newlines else _CONTROLS).search(text) is not None


class Checks:
    """Collects violations; `done()` raises ValidationFailed naming all of them."""

    def __init__(self, prefix: str = "") -> None:
        self.violations: list[FieldViolation] = []
        self._prefix = prefix

    def at(self, prefix: str) -> Checks:
        """Checks of a nested message, reporting into the same list."""
        nested = Checks(self._prefix + prefix)
        nested.violations = self.violations
        return nested

    def fail(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(self._prefix + field, description))

    def done(self) -> None:
        if self.violations:
            raise ValidationFailed(self.violations)

    # --- scalar checks ---------------------------------------------------------------------------

    def identifier(self, field: str, value: str | None, *, required: bool = False) -> None:
        """An id: at most 128 characters, no whitespace, control characters or '/'."""
        if not given(value):
            if required:
                self.fail(field, "is required")
            return
        assert value is not None
        if len(value) > MAX_ID_LENGTH:
            self.fail(field, f"must be at most {MAX_ID_LENGTH} characters")
        elif "/" in value or _WHITESPACE.search(value) or _has_controls(value, False):
            self.fail(field, "must not contain whitespace, control characters or '/'")

    def code(self, field: str, value: str | None, *, required: bool = False) -> None:
        """A short machine-readable code such as `customer_hangup` or `billing.refund`."""
        if not given(value):
            if required:
                self.fail(field, "is required")
            return
        assert value is not None
        if len(value) > MAX_CODE_LENGTH:
            self.fail(field, f"must be at most {MAX_CODE_LENGTH} characters")
        elif not _CODE.match(value):
            self.fail(field, "must be letters, digits and '_', '.', ':', '-'")

    def text(
        self,
        field: str,
        value: str | None,
        max_length: int,
        *,
        required: bool = False,
        multiline: bool = False,
    ) -> None:
        if not given(value):
            if required:
                self.fail(field, "is required")
            return
        assert value is not None
        if len(value) > max_length:
            self.fail(field, f"must be at most {max_length:,} characters")
        elif _has_controls(value, multiline):
            self.fail(field, "must not contain control characters")

    def language(self, field: str, value: str | None) -> None:
        if given(value) and not (value is not None and len(value) <= 35 and _LANGUAGE.match(value)):
            self.fail(field, "must be a BCP 47 language tag such as 'en' or 'fr-CA'")

    def between(self, field: str, value: int | float, low: int | float, high: int | float) -> None:
        if not low <= value <= high:
            self.fail(field, f"must be between {low} and {high}")

    def content_type(self, field: str, value: str | None) -> None:
        if given(value) and not (
            value is not None and len(value) <= MAX_SHORT_TEXT and _CONTENT_TYPE.match(value)
        ):
            self.fail(field, "must be a MIME type such as 'text/plain'")

    # --- composite checks ------------------------------------------------------------------------

    def attributes(self, field: str, value: Mapping[str, str]) -> None:
        if len(value) > MAX_ATTRIBUTES:
            self.fail(field, f"must have at most {MAX_ATTRIBUTES} entries")
            return
        for key, item in value.items():
            if not _ATTRIBUTE_KEY.match(key):
                self.fail(
                    f"{field}[{key!r}]",
                    "keys must match [A-Za-z_][A-Za-z0-9_.-]* and be at most 64 characters",
                )
            elif len(item) > MAX_ATTRIBUTE_VALUE:
                self.fail(f"{field}[{key!r}]", f"must be at most {MAX_ATTRIBUTE_VALUE} characters")
            elif _has_controls(item, False):
                self.fail(f"{field}[{key!r}]", "must not contain control characters")

    def skills(self, field: str, value: Sequence[SkillRequirement]) -> None:
        if len(value) > MAX_SKILLS:
            self.fail(field, f"must have at most {MAX_SKILLS} entries")
            return
        seen: set[str] = set()
        for i, requirement in enumerate(value):
            self.identifier(f"{field}[{i}].skill", requirement.skill, required=True)
            self.between(f"{field}[{i}].min_proficiency", requirement.min_proficiency, 0, 10)
            if requirement.skill in seen:
                self.fail(f"{field}[{i}].skill", f"{requirement.skill!r} is listed twice")
            seen.add(requirement.skill)

    def priority(self, field: str, value: int) -> None:
        self.between(field, value, MIN_PRIORITY, MAX_PRIORITY)

    def attachments(self, field: str, value: Sequence[AttachmentRef]) -> None:
        if len(value) > MAX_ATTACHMENTS:
            self.fail(field, f"must have at most {MAX_ATTACHMENTS} entries")
            return
        for i, attachment in enumerate(value):
            self.text(f"{field}[{i}].uri", attachment.uri, 2_048, required=True)
            self.identifier(f"{field}[{i}].attachment_id", attachment.attachment_id)
            self.text(f"{field}[{i}].file_name", attachment.file_name, MAX_SHORT_TEXT)
            self.content_type(f"{field}[{i}].content_type", attachment.content_type)
            if attachment.size_bytes is not None and attachment.size_bytes < 0:
                self.fail(f"{field}[{i}].size_bytes", "must not be negative")

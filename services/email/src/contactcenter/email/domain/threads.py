"""Threading: which conversation a received message belongs to. Pure, table-tested.

A reply joins its thread by (in this order) In-Reply-To, References (newest first), the
reply token in a recipient address (`support+<token>@...`), or the token in the subject
(`[#<token>]`) when a client stripped the headers. Anything else starts a new thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

#: Reply tokens (and thread ids): 16 characters of lower-case base32.
TOKEN_PATTERN: Final = r"[a-z2-7]{16}"
_SUBJECT_TOKEN: Final = re.compile(r"\[#(" + TOKEN_PATTERN + r")\]", re.I)
_ADDRESS_TOKEN: Final = re.compile(r"^[^@+]+\+(" + TOKEN_PATTERN + r")@", re.I)
_MSGID: Final = re.compile(r"<([^<>\s]+)>")
_REPLY_PREFIX: Final = re.compile(
    r"^\s*((re|aw|sv|vs|antw|fw|fwd|wg|tr|rv|r)\s*(\[\d+\])?\s*:\s*)+", re.I
)


def normalize_message_id(value: str | None) -> str | None:
    """`<AbC@Example.COM>` -> `AbC@example.com` (the domain is case-insensitive)."""
    if not value:
        return None
    found = _MSGID.search(value)
    raw = found.group(1) if found else value.strip().strip("<>").strip()
    if not raw or any(c.isspace() for c in raw):
        return None
    if "@" in raw:
        local, domain = raw.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    return raw


def message_ids(value: str | None) -> list[str]:
    """Every Message-ID in a References / In-Reply-To header, in order."""
    if not value:
        return []
    found = [normalize_message_id(m) for m in _MSGID.findall(value)]
    if not found:
        single = normalize_message_id(value)
        return [single] if single else []
    return [m for m in found if m]


def address_token(address: str) -> str | None:
    m = _ADDRESS_TOKEN.match(address.strip())
    return m.group(1).lower() if m else None


def subject_token(subject: str) -> str | None:
    m = _SUBJECT_TOKEN.search(subject or "")
    return m.group(1).lower() if m else None


def base_address(address: str) -> str:
    """`Support+token@Example.com` -> `support@example.com` (the mailbox it belongs to)."""
    address = address.strip().lower()
    if "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local.split('+', 1)[0]}@{domain}"


def strip_reply_prefix(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject or "").strip()


def reply_subject(subject: str, token: str) -> str:
    base = _SUBJECT_TOKEN.sub("", strip_reply_prefix(subject)).strip()
    return f"Re: {base} [#{token}]".replace("  ", " ")


def token_address(mailbox_address: str, token: str) -> str:
    local, domain = mailbox_address.rsplit("@", 1)
    return f"{local}+{token}@{domain}"


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    """What a received message says about its thread."""

    internet_message_id: str | None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    subject: str = ""

    def referenced_ids(self) -> list[str]:
        """Ids to look up, most specific first: In-Reply-To, then References newest first."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return seen

    def tokens(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for r in self.recipients:
            t = address_token(r)
            if t:
                found.append(("address_token", t))
        t = subject_token(self.subject)
        if t:
            found.append(("subject_token", t))
        return found


@dataclass(frozen=True, slots=True)
class ThreadDecision:
    thread_id: str
    new_thread: bool
    matched_by: str | None


def decide_thread(
    keys: ThreadKeys,
    *,
    thread_of_message: Callable[[str], str | None],
    thread_exists: Callable[[str], bool],
    new_thread_id: Callable[[], str],
) -> ThreadDecision:
    """The thread of a received message. The lookups come from the caller's index of known
    Message-IDs (received and sent) and threads of the same tenant."""
    for mid in keys.in_reply_to:
        thread = thread_of_message(mid)
        if thread is not None:
            return ThreadDecision(thread, False, "in_reply_to")
    for mid in reversed(keys.references):
        thread = thread_of_message(mid)
        if thread is not None:
            return ThreadDecision(thread, False, "references")
    for how, token in keys.tokens():
        if thread_exists(token):
            return ThreadDecision(token, False, how)
    return ThreadDecision(new_thread_id(), True, None)


def references_for_reply(
    original_message_id: str | None, original_references: Sequence[str]
) -> tuple[str, ...]:
    """RFC 5322 3.6.4: the parent's References (or In-Reply-To) followed by its Message-ID."""
    refs = list(original_references)
    if original_message_id and original_message_id not in refs:
        refs.append(original_message_id)
    # Keep the header a sane length: the first and the last 19 ids.
    if len(refs) > 20:
        refs = [refs[0], *refs[-19:]]
    return tuple(refs)


def dedupe_key(internet_message_id: str | None, raw_sha256: str) -> str:
    """The same Message-ID delivered twice (SMTP retry, IMAP and forward) is one message;
    a message without one is identified by its bytes."""
    return f"mid:{internet_message_id}" if internet_message_id else f"sha256:{raw_sha256}"


def all_known(ids: Iterable[str | None]) -> list[str]:
    return [i for i in ids if i]

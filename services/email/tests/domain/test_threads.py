"""Threading decisions, table-driven: headers first, then reply tokens, else a new thread."""

from __future__ import annotations

import pytest

from contactcenter.email.domain import (
    ThreadKeys,
    base_address,
    decide_thread,
    dedupe_key,
    message_ids,
    normalize_message_id,
    references_for_reply,
    reply_subject,
    token_address,
)

TOKEN = "abcdefghijklmnop"
KNOWN = {"m1@x.example": "thread-a", "m2@x.example": "thread-b"}
THREADS = {TOKEN, "thread-a", "thread-b"}

CASES = [
    ("in-reply-to", ThreadKeys("n@c", in_reply_to=("m1@x.example",)), "thread-a", "in_reply_to"),
    (
        "in-reply-to wins over references",
        ThreadKeys("n@c", in_reply_to=("m2@x.example",), references=("m1@x.example",)),
        "thread-b",
        "in_reply_to",
    ),
    (
        "newest reference first",
        ThreadKeys("n@c", references=("m1@x.example", "m2@x.example")),
        "thread-b",
        "references",
    ),
    (
        "unknown in-reply-to, known reference",
        ThreadKeys("n@c", in_reply_to=("zz@c",), references=("m1@x.example",)),
        "thread-a",
        "references",
    ),
    (
        "address token when headers are stripped",
        ThreadKeys("n@c", recipients=(f"support+{TOKEN}@acme.example",)),
        TOKEN,
        "address_token",
    ),
    (
        "subject token when headers are stripped",
        ThreadKeys("n@c", subject=f"Re: my router [#{TOKEN.upper()}]"),
        TOKEN,
        "subject_token",
    ),
    (
        "unknown token opens a new thread",
        ThreadKeys("n@c", subject="Re: x [#qqqqqqqqqqqqqqqq]"),
        "new",
        None,
    ),
    ("nothing known opens a new thread", ThreadKeys("n@c", subject="Hello"), "new", None),
]


@pytest.mark.parametrize(("name", "keys", "thread", "how"), CASES, ids=[c[0] for c in CASES])
def test_thread_decision(name: str, keys: ThreadKeys, thread: str, how: str | None) -> None:
    decision = decide_thread(
        keys,
        thread_of_message=KNOWN.get,
        thread_exists=THREADS.__contains__,
        new_thread_id=lambda: "new",
    )
    assert (decision.thread_id, decision.matched_by) == (thread, how)
    assert decision.new_thread is (how is None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<AbC@Example.COM>", "AbC@example.com"),
        ("  <a.b@c>  ", "a.b@c"),
        ("a@b", "a@b"),
        ("", None),
        ("<>", None),
        ("<with space@x>", None),
    ],
)
def test_normalize_message_id(raw: str, expected: str | None) -> None:
    assert normalize_message_id(raw) == expected


def test_references_header() -> None:
    assert message_ids("<a@x> <b@X>\r\n <c@y>") == ["a@x", "b@x", "c@y"]
    assert message_ids(None) == []


def test_reply_headers() -> None:
    assert references_for_reply("p@x", ["a@x", "b@x"]) == ("a@x", "b@x", "p@x")
    assert references_for_reply("p@x", ["p@x"]) == ("p@x",)
    long = references_for_reply("p@x", [f"{i}@x" for i in range(40)])
    assert len(long) == 20 and long[0] == "0@x" and long[-1] == "p@x"
    assert reply_subject("RE: AW: Invoice [#abcdefghijklmnop]", TOKEN) == f"Re: Invoice [#{TOKEN}]"
    assert token_address("support@acme.example", TOKEN) == f"support+{TOKEN}@acme.example"
    assert base_address(f"Support+{TOKEN}@ACME.example") == "support@acme.example"


def test_dedupe_key() -> None:
    assert dedupe_key("m@x", "ff") == "mid:m@x"
    assert dedupe_key(None, "ff") == "sha256:ff"

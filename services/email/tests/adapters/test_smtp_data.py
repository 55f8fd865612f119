"""The chunked DATA reader (`FastDataSMTP`) against aiosmtpd's own line-at-a-time one: the same
bytes on the wire give the same answers and the same content, over real TCP connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from contactcenter.email import corpus
from contactcenter.email.adapters.smtp import FastDataSMTP

LIMIT = 300_000


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        assert envelope.original_content == envelope.content
        self.contents.append(envelope.content)
        return f"250 OK {len(envelope.content)}"


Server = tuple[int, Recorder]


async def _serve(cls: type[SMTP]) -> tuple[asyncio.base_events.Server, Recorder]:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(recorder, data_size_limit=LIMIT, decode_data=False, enable_SMTPUTF8=True),
        "127.0.0.1",
        0,
    )
    return server, recorder


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, Server]]:
    started = {name: await _serve(cls) for name, cls in (("ours", FastDataSMTP), ("aio", SMTP))}
    yield {name: (s.sockets[0].getsockname()[1], r) for name, (s, r) in started.items()}
    for server, _ in started.values():
        server.close()
        await server.wait_closed()


async def _answer(reader: asyncio.StreamReader) -> bytes:
    lines = []
    while True:
        line = await reader.readline()
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def converse(port: int, datas: list[bytes], *, pieces: int = 1) -> list[bytes]:
    """One connection delivering each of `datas` (raw DATA bytes, terminator included), sent
    in `pieces` writes each; the answers to every DATA and to the command after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        await _answer(reader)
        writer.write(b"EHLO client.example\r\n")
        await _answer(reader)
        for data in datas:
            for command in (b"MAIL FROM:<a@customer.example>", b"RCPT TO:<s@acme.example>"):
                writer.write(command + b"\r\n")
                await _answer(reader)
            writer.write(b"DATA\r\n")
            assert (await _answer(reader)).startswith(b"354")
            step = max(1, -(-len(data) // pieces))
            for i in range(0, len(data), step):
                writer.write(data[i : i + step])
                await writer.drain()
                await asyncio.sleep(0)
            answers.append((await _answer(reader)).split(b" ")[0])
            writer.write(b"NOOP\r\n")
            answers.append(await _answer(reader))
        writer.write(b"QUIT\r\n")
        await _answer(reader)
    finally:
        writer.close()
    return answers


def crlf(message: bytes) -> bytes:
    """Line ends as on the wire (the corpus writes bare LF; SMTP clients send CRLF)."""
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def stuffed(message: bytes) -> bytes:
    """What a client sends: dot-stuffed lines, then the terminator."""
    lines = message.split(b"\r\n")
    body = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    return body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"


MB = "support@acme.example"
DOTS = b".starts\r\n..two\r\n.\r\nmid . dot\r\nend.\r\n.x\r\n"
CASES: dict[str, bytes] = {
    "plain": stuffed(crlf(corpus.realistic(1, MB))),
    "attachment": stuffed(crlf(corpus.realistic(0, MB))),
    "corpus in bare LF": stuffed(corpus.realistic(2, MB)),
    "dots": stuffed(DOTS),
    "empty": b".\r\n",
    "one line": b"hello\r\n.\r\n",
    "bare lf and cr": b"a\nb\rc\r\n.\n\r\n.\r\n",
    "line of 999": b"x" * 999 + b"\r\n.\r\n",
    "line too long": b"ok\r\n" + b"x" * 1000 + b"\r\nafter\r\n.\r\n",
    "too large": (b"y" * 998 + b"\r\n") * (LIMIT // 1000 + 5) + b".\r\n",
    "long line then too large": b"z" * 5000 + b"\r\n" + (b"y" * 998 + b"\r\n") * 400 + b".\r\n",
}


@pytest.mark.parametrize("pieces", [1, 7, 333])
@pytest.mark.parametrize("case", list(CASES))
async def test_same_answers_and_content_as_aiosmtpd(
    servers: dict[str, Server], case: str, pieces: int
) -> None:
    data = CASES[case]
    answers = {
        name: await converse(port, [data, CASES["dots"]], pieces=pieces)
        for name, (port, _) in servers.items()
    }
    assert answers["ours"] == answers["aio"]
    assert servers["ours"][1].contents == servers["aio"][1].contents
    # The connection goes on after a refused DATA: the second message always arrives.
    assert servers["ours"][1].contents[-1] == DOTS


async def test_a_realistic_stream_of_messages_on_one_connection(
    servers: dict[str, Server],
) -> None:
    messages = [crlf(corpus.realistic(n, MB)) + b".dot-started last line\r\n" for n in range(30)]
    datas = [stuffed(m) for m in messages]
    port, recorder = servers["ours"]
    answers: Any = await converse(port, datas, pieces=3)
    assert all(a == b"250" for a in answers[::2])
    assert recorder.contents == messages


PATHS = [
    "<a@b.c>",
    "<a@b.c> SIZE=100",
    "<a@b.c>  SIZE=100 BODY=8BITMIME ",
    "<a@b.c>\tSIZE=1",
    "<a@b.c> (comment) SIZE=1",
    "<a@b.c>x",
    "<a@b.c> ",
    "<a@b.c> ü",
    " <a@b.c>",
    "<>",
    "<a.b+tag=x@sub.example.com>",
    "<A!#$%&'*+/=?^_`{|}~-Z@B.C>",
    "<a..b@c.d>",
    "<.a@b.c>",
    "<a.@b.c>",
    '<"q u"@b.c>',
    "<a@[1.2.3.4]>",
    "<a@b-.c>",
    "<a@-b.c>",
    "<@x.y:a@b.c>",
    "<a@b.c",
    "a@b.c",
    "<" + "x" * 64 + "@b.c>",
    "<" + "x" * 65 + "@b.c>",
    "<a@b.c> SIZE=100\r",
    "",
]


@pytest.mark.parametrize("path", PATHS)
def test_paths_are_parsed_as_aiosmtpd_parses_them(path: str) -> None:
    ours, theirs = FastDataSMTP(Recorder()), SMTP(Recorder())
    assert ours._getaddr(path) == theirs._getaddr(path)

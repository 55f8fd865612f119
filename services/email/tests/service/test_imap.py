"""The IMAP poller against Debian's dovecot, started by the test as a process of its own
(config in a temp dir: passwd-file auth, maildir, a free port, no system service). Mails are
delivered with IMAP APPEND. The poller fetches new messages, keeps its place (UIDVALIDITY,
UID), survives a server restart without missing or duplicating, and logs no credentials."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioimaplib
import pytest

from contactcenter.email import corpus
from contactcenter.email.v1 import email_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

PASSWORD = "s3cret-imap-Passw0rd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not listen: " + self.log())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log(self) -> str:
        parts = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    async def append(self, user: str, raw: bytes) -> None:
        client = aioimaplib.IMAP4(host="127.0.0.1", port=self.port, timeout=10)
        await client.wait_hello_from_server()
        assert (await client.login(user, PASSWORD)).result == "OK"
        assert (await client.append(raw, mailbox="INBOX")).result == "OK"
        await client.logout()


@pytest.fixture(scope="session")
def dovecot() -> Any:
    if shutil.which("dovecot") is None:
        pytest.fail(
            "dovecot is not installed: the Debian packages dovecot-core and dovecot-imapd "
            "(services/email/system-packages.txt; `make sync` installs them as root)"
        )
    root = Path(tempfile.mkdtemp(prefix="cc-dovecot-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        account = pwd.getpwnam("nobody")
        login_user, internal_user = "dovenull", "dovecot"
    else:
        account = pwd.getpwuid(os.geteuid())
        login_user = internal_user = account.pw_name
    (root / "home").mkdir()
    os.chown(root / "home", account.pw_uid, account.pw_gid)
    (root / "passwd").write_text(f"user0:{{PLAIN}}{PASSWORD}::::::\n")
    port = _free_port()
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {min(account.pw_uid, 100)}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={account.pw_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
    )
    server = Dovecot(root, port)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


async def test_poller_fetches_keeps_its_place_and_survives_a_server_restart(
    api: Any, dovecot: Dovecot, eventually: Any, caplog: Any
) -> None:
    user = "user-" + api.tenant_id[-6:]
    with (dovecot.root / "passwd").open("a") as f:
        f.write(f"{user}:{{PLAIN}}{PASSWORD}::::::\n")
    ids = [corpus.new_message_id() for _ in range(4)]
    await dovecot.append(user, corpus.plain(to=api.mailbox, message_id=ids[0]))
    await dovecot.append(user, corpus.iso_2022_jp("taro@customer.example", api.mailbox, ids[1]))
    await api.register(
        imap=pb.ImapAccount(
            host="127.0.0.1", port=dovecot.port, username=user, password=PASSWORD, use_tls=False
        )
    )
    events = await api.wait_events("email.EmailReceived.v1", 2)
    assert {e.data["internet_message_id"] for e in events} == set(ids[:2])

    async def checkpoint(uid: int) -> None:
        rows = await api.sql(
            "select last_uid from email.imap_state where address = $1", api.mailbox
        )
        assert rows and rows[0]["last_uid"] == uid, rows

    await eventually(lambda: checkpoint(2))

    # The server goes away and comes back; mail delivered meanwhile is fetched once.
    dovecot.stop()
    await asyncio.sleep(1.0)
    dovecot.start()
    await dovecot.append(user, corpus.plain(to=api.mailbox, message_id=ids[2]))
    await dovecot.append(user, corpus.plain(to=api.mailbox, message_id=ids[3]))
    events = await api.wait_events("email.EmailReceived.v1", 4, within_s=40)
    assert sorted(e.data["internet_message_id"] for e in events) == sorted(ids)
    await eventually(lambda: checkpoint(4))
    await asyncio.sleep(1.0)  # a few more polls: nothing fetched twice
    rows = await api.inbox_settled(4)
    assert len(rows) == 4 and all(r["source"] == "imap" for r in rows)
    mailbox = (await api.call("GetMailbox", address=api.mailbox)).mailbox
    assert mailbox.imap.username == user and mailbox.imap.password == ""
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_retried_and_never_logged(
    api: Any, dovecot: Dovecot, caplog: Any
) -> None:
    wrong = "Wr0ng-" + api.tenant_id
    await api.register(
        imap=pb.ImapAccount(
            host="127.0.0.1", port=dovecot.port, username="user0", password=wrong, use_tls=False
        )
    )
    deadline = time.monotonic() + 15
    while "ImapError" not in caplog.text and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert f"IMAP poller of {api.mailbox}: ImapError" in caplog.text
    assert wrong not in caplog.text
    rows = await api.sql(
        "select view::text as v from email.mailboxes where address = $1", api.mailbox
    )
    assert wrong not in rows[0]["v"]
    assert wrong not in str(await api.events())


async def test_imap_intake_over_the_tenant_rate_is_quarantined_and_reprocessable(
    api: Any, dovecot: Dovecot, eventually: Any
) -> None:
    user = "rate-" + api.tenant_id[-6:]
    with (dovecot.root / "passwd").open("a") as f:
        f.write(f"{user}:{{PLAIN}}{PASSWORD}::::::\n")
    await api.call("ConfigureTenant", limits=pb.TenantLimits(max_inbound_per_minute=1))
    ids = [corpus.new_message_id() for _ in range(3)]
    for message_id in ids:
        await dovecot.append(user, corpus.plain(to=api.mailbox, message_id=message_id))
    await api.register(
        imap=pb.ImapAccount(
            host="127.0.0.1", port=dovecot.port, username=user, password=PASSWORD, use_tls=False
        )
    )
    quarantined = await api.wait_events("email.EmailQuarantined.v1", 2)
    assert {e.data["reason"] for e in quarantined} == {"rate_limited"}
    (received,) = await api.wait_events("email.EmailReceived.v1")
    rows = await api.inbox_settled(3)
    assert sorted(r["status"] for r in rows) == ["done", "quarantined", "quarantined"]
    # Kept with its raw bytes: reprocessed later, it goes through.
    await api.call("ReprocessQuarantined", quarantine_id=quarantined[0].data["quarantine_id"])
    events = await api.wait_events("email.EmailReceived.v1", 2)
    assert {e.data["internet_message_id"] for e in events} < set(ids)
    assert received.data["internet_message_id"] in ids

"""ccctl without services: help everywhere, bad input refused with exit 2, an unreachable
service is exit 4, a missing reporting service is exit 7."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from contactcenter.ccctl.cli import Exit, app
from contactcenter.ccctl.tail import format_record, summarize
from contactcenter.contracts.events import utc_now
from contactcenter.messaging.cloudevents import EventEnvelope, encode

runner = CliRunner()

COMMANDS = [
    [],
    ["tenants"],
    ["tenants", "token"],
    ["tenants", "configure"],
    ["queues"],
    ["queues", "upsert"],
    ["queues", "show"],
    ["agents"],
    ["agents", "upsert"],
    ["agents", "state"],
    ["skills", "check"],
    ["skills", "list"],
    ["queues", "list"],
    ["queue", "list"],
    ["agents", "list"],
    ["agents", "show"],
    ["agents", "skills"],
    ["agent", "skills", "set"],
    ["agent", "skills", "add"],
    ["agent", "skills", "remove"],
    ["replay"],
    ["contacts", "list"],
    ["explain"],
    ["tail"],
    ["report", "intervals"],
    ["rebuild"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ccctl")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: ccctl" in result.output


def test_the_exit_codes_are_documented_in_the_help() -> None:
    result = runner.invoke(app, ["--help"])
    for code in Exit:
        assert f"  {int(code)}  " in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["queues", "upsert", "q", "--skill", "billing:9"], "level must be 1..5"),
        (["queues", "upsert", "q", "--skill", "billing:x"], "not a number"),
        (["queues", "upsert", "q", "--channel", "fax"], "'fax' is not one of"),
        (["queues", "upsert", "q", "--strategy", "random"], "--strategy"),
        (["queues", "upsert", "q", "--priority", "101"], "--priority"),
        (["agents", "state", "a-1", "sleeping"], "'sleeping' is not one of"),
        (["--role", "root", "queues", "show", "q"], "unknown role"),
        (["tail", "billing"], "'billing' is not one of"),
        (["report", "intervals", "--interval", "20"], "20 is not 15 or 30"),
        (["report", "intervals", "--from", "yesterday"], "is not a time"),
        (["report", "intervals", "--from", "now", "--to", "-1h"], "must be after --from"),
        (["contacts", "list", "--state", "sleeping"], "--state"),
        (["tenants", "token", "t", "--role", "king"], "'king' is not one of"),
        (["skills", "check", ":3"], "expected NAME"),
        (["queues", "nosuch"], "No such command"),
        (["agents", "list", "--state", "sleeping"], "'sleeping' is not one of"),
        (["agent", "skills", "add", "a-1", "--skill", "billing"], "needs a level"),
        (["agent", "skills", "set", "a-1", "--skill", "billing:0"], "level must be 1..5"),
        (["agent", "skills", "set", "a-1", "-s", "billing:2", "-s", "billing:3"], "given twice"),
        (["agent", "skills", "add", "a-1"], "Missing option '--skill'"),
        (["agent", "skills", "remove", "a-1", "--skill", "billing:2"], "NAME only"),
        (["replay", "billing"], "'billing' is not one of"),
        (["replay", "reporting", "--tenant", "t"], "every tenant at once"),
        (["replay", "routing", "--tenant", " "], "must not be empty"),
    ],
)
def test_bad_input_is_refused_with_exit_2_and_says_why(args: list[str], words: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == Exit.BAD_INPUT, result.output
    assert words in result.output


def test_skills_check_and_token_print_what_they_parsed() -> None:
    result = runner.invoke(app, ["skills", "check", "billing:3", "support"])
    assert result.exit_code == 0
    assert "billing: level 3" in result.output and "support: any level" in result.output
    token = runner.invoke(app, ["tenants", "token", "acme", "--role", "supervisor"])
    assert token.exit_code == 0
    assert token.output.count(".") == 2  # a JWT


def test_an_unreachable_service_is_exit_4_naming_it() -> None:
    result = runner.invoke(
        app, ["--routing", "127.0.0.1:1", "--timeout", "2", "queues", "show", "sales"]
    )
    assert result.exit_code == Exit.UNAVAILABLE, result.output
    assert "routing at 127.0.0.1:1 did not answer" in result.output


@pytest.mark.parametrize(
    "command",
    [["queue", "list"], ["agent", "list"], ["skills", "list"], ["replay", "routing"]],
    ids=" ".join,
)
def test_new_commands_against_no_routing_are_exit_4(command: list[str]) -> None:
    result = runner.invoke(app, ["--routing", "127.0.0.1:1", "--timeout", "1", *command])
    assert result.exit_code == Exit.UNAVAILABLE, result.output
    assert "routing at 127.0.0.1:1 did not answer" in result.output


def test_tail_against_no_broker_is_exit_4() -> None:
    result = runner.invoke(
        app, ["--bootstrap", "127.0.0.1:1", "--timeout", "1", "tail", "interactions"]
    )
    assert result.exit_code == Exit.UNAVAILABLE, result.output


def test_rebuild_against_no_database_is_exit_4() -> None:
    result = runner.invoke(app, ["rebuild", "--database-url", "postgresql://x@127.0.0.1:1/db"])
    assert result.exit_code == Exit.UNAVAILABLE, result.output
    assert "reporting's database did not answer" in result.output


def test_one_readable_line_per_cloudevent() -> None:
    event_id = uuid.uuid4()
    envelope = EventEnvelope(
        id=event_id,
        type="interactions.InteractionQueued.v1",
        source="/contactcenter/interactions",
        subject="interaction/acme/i-1",
        time=utc_now(),
        tenant_id="acme",
        data={
            "event_id": str(event_id),
            "interaction_id": "i-1",
            "queue_id": "sales",
            "priority": 5,
        },
    )
    record = encode(envelope)
    tenant, line = format_record(record.headers, record.value, record.key)  # type: ignore[arg-type]
    assert tenant == "acme"
    assert "acme InteractionQueued" in line
    assert "interaction_id=i-1 queue_id=sales priority=5" in line
    assert "event_id" not in line
    tenant, line = format_record([], b"garbage", b"acme")
    assert tenant == "acme" and line.startswith("!! not a valid CloudEvent")
    assert summarize({"note": "x" * 100}).endswith("…")

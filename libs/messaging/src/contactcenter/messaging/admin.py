"""Topic administration: create our topics idempotently at service start-up (and in tests).

Brokers may auto-create a topic on first use (Tansu does; Apache Kafka does unless
`auto.create.topics.enable=false`), but then the broker picks the partition count, and the
partition count is what the routing service shards tenants by. So topics are created here,
explicitly, with the count we choose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 6
_TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic, or its partitions got no leader in time."""


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of any topic (the registry's `Topic.dlq` for registry topics)."""
    return f"{topic}.dlq"


async def ensure_topics(
    bootstrap: str | Sequence[str],
    names: Iterable[str],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication: int = 1,
    timeout_s: float = 30.0,
    client_id: str = "contactcenter-admin",
) -> list[str]:
    """Create the topics that do not exist yet; return the names created (sorted).

    Existing topics are left as they are, even with another partition count: changing it would
    move tenants to other partitions and break their ordering, so that is an operator's call
    (logged as a warning). Returns once every named topic has a leader for every partition.
    """
    wanted = sorted(set(names))
    if not wanted:
        return []
    if partitions < 1 or replication < 1:
        raise ValueError("partitions and replication must be at least 1")
    servers = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id=client_id)
    await admin.start()
    try:
        async with asyncio.timeout(timeout_s):
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            created = await _create(admin, missing, partitions, replication)
            described = await _wait_for_leaders(admin, wanted)
    except TimeoutError:
        raise TopicAdminError(
            f"topics {wanted} not ready on {servers} within {timeout_s} s"
        ) from None
    finally:
        await admin.close()
    for topic in described:
        if len(topic["partitions"]) != partitions:
            log.warning(
                "Kafka topic %s has %d partitions, not %d; left unchanged",
                topic["topic"],
                len(topic["partitions"]),
                partitions,
            )
    return created


async def repair_topics(
    bootstrap: str | Sequence[str],
    names: Iterable[str],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    replication: int = 1,
    timeout_s: float = 30.0,
    client_id: str = "contactcenter-admin",
) -> list[str]:
    """After a broker lost a topic's data: delete and create again each named topic that is
    missing or does not have `partitions` partitions; return the names recreated (sorted).

    Only for topics whose every record can be published again from an event store (an outbox
    relay's own topics). A broker that lost a topic auto-creates it on the first metadata or
    produce request, with a partition count of its own (Tansu: 4), which would move tenants
    to other partitions; and Tansu, asked to create a topic over such a half-made one, writes
    new records over the old ones' offsets and loses them. A clean delete and create does
    neither. Topics that look right are left alone.
    """
    wanted = sorted(set(names))
    if not wanted:
        return []
    servers = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id=client_id)
    await admin.start()
    recreated: set[str] = set()
    try:
        async with asyncio.timeout(timeout_s):
            # Again while any is wrong: a consumer's metadata request between the delete and
            # the create auto-creates the topic once more.
            while broken := await _not_as_wanted(admin, wanted, partitions):
                await admin.delete_topics(broken)  # an unknown topic is no error here
                await _create(admin, broken, partitions, replication)
                recreated.update(broken)
            await _wait_for_leaders(admin, wanted)
    except TimeoutError:
        raise TopicAdminError(
            f"topics {wanted} not repaired on {servers} within {timeout_s} s"
        ) from None
    finally:
        await admin.close()
    if recreated:
        log.warning("Kafka topics %s recreated with %d partitions", sorted(recreated), partitions)
    return sorted(recreated)


async def topic_partitions(
    admin: AIOKafkaAdminClient, topics: Iterable[str]
) -> dict[str, set[int]]:
    """The partition numbers of each named topic, asked by name. A consumer's `topics()` asks
    for every topic at once, and Tansu's answer to that can leave some out: a reader that
    trusted it saw no partitions, or stale ones. Asking by name makes a broker that
    auto-creates topics (Tansu) create a missing one, with its own partition count: for topics
    that should exist."""
    names = sorted(set(topics))
    if not names:
        return {}
    described: list[dict[str, Any]] = await admin.describe_topics(names)
    return {
        t["topic"]: {p["partition"] for p in t["partitions"]}
        for t in described
        if t["error_code"] == 0 and t["partitions"]
    }


async def _not_as_wanted(
    admin: AIOKafkaAdminClient, names: list[str], partitions: int
) -> list[str]:
    """The topics of `names` that are missing or have another partition count, asked by name
    (`topic_partitions`): a topic left out of a "list every topic" answer must not be taken
    for missing and deleted with what it holds."""
    found = await topic_partitions(admin, names)
    return [n for n in names if len(found.get(n, ())) != partitions]


async def _create(
    admin: AIOKafkaAdminClient, names: list[str], partitions: int, replication: int
) -> list[str]:
    if not names:
        return []
    response = await admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in names]
    )
    created: list[str] = []
    for result in response.to_object()["topic_errors"]:
        code = result["error_code"]
        if code == 0:
            created.append(result["topic"])
        elif code != _TOPIC_ALREADY_EXISTS:  # a concurrent start-up created it first: fine
            raise TopicAdminError(
                f"cannot create topic {result['topic']!r}: error {code} "
                f"{result.get('error_message') or ''}".rstrip()
            )
    if created:
        log.info("created Kafka topics %s with %d partitions", created, partitions)
    return sorted(created)


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """Apache Kafka creates topics asynchronously: wait until metadata shows every partition led."""
    delay = 0.01
    while True:
        try:
            described: list[dict[str, Any]] = await admin.describe_topics(names)
        except KafkaError:
            described = []
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0
            and t["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(names):
            return described
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)

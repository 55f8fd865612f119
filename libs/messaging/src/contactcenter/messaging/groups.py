"""Consumer groups that learn a topic's new partition count rejoin as new members.

Tansu 0.6 answers the rejoin of a member it knows with the assignment that member had, not
the one the leader has just computed (its group generation stays 0). aiokafka rejoins that way
when a subscribed topic's partition count changes: after a broker came back empty, the topic
first auto-created with Tansu's own count (4) and then made again by the relay with ours (6)
left partitions 4 and 5 unread by every group that had joined in between, for good (measured:
a lone member's rejoin got [0, 1, 2, 3] back, the leader having sent [0..5]). Leaving the group
first and joining as a new member gets the leader's assignment, on Tansu as on Kafka, where it
costs one rebalance more on an event as rare as a partition count change.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

_log = logging.getLogger(__name__)


async def _leave_and_rejoin(coordinator: GroupCoordinator, member_id: str) -> None:
    # aiokafka sends LeaveGroup only for a generation above 0, which Tansu never gives.
    try:
        await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, member_id))
    except KafkaError as exc:
        _log.info("leaving group %s failed (%r): it rejoins anyway", coordinator.group_id, exc)
    if coordinator.member_id == member_id:  # else it has already joined again meanwhile
        coordinator.reset_generation()  # requests the rejoin


def _on_metadata_change(coordinator: GroupCoordinator) -> None:
    member_id = coordinator.member_id
    # Not a member yet (the first metadata at start-up), or a static one: aiokafka's own way.
    if member_id == JoinGroupRequest.UNKNOWN_MEMBER_ID or coordinator._group_instance_id:
        coordinator.request_rejoin()
        return
    _log.info("group %s rejoins as a new member: its partitions changed", coordinator.group_id)
    task = asyncio.get_running_loop().create_task(_leave_and_rejoin(coordinator, member_id))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


_tasks: set[asyncio.Task[None]] = set()


def rejoin_as_new_member_on_partition_changes() -> None:
    """Make every aiokafka group consumer of this process do so (idempotent)."""
    GroupCoordinator._on_metadata_change = _on_metadata_change

"""Event store per service in its PostgreSQL schema, its in-memory twin, SQL migrations and
consumer tracking (exactly-once effects on at-least-once delivery)."""

from typing import TYPE_CHECKING

from contactcenter.eventstore._pg import (
    PG_OUTAGE_ERRORS,
    PgConnection,
    PgPool,
    create_pool,
    notify_channel,
)
from contactcenter.eventstore.errors import (
    IdempotencyKeyReused,
    MigrationChecksumMismatch,
    MigrationError,
)
from contactcenter.eventstore.memory import InMemoryEventStore
from contactcenter.eventstore.migrate import apply_migrations
from contactcenter.eventstore.model import (
    ANY,
    NO_STREAM,
    AppendResult,
    GlobalPosition,
    RecordedEvent,
    Snapshot,
)
from contactcenter.eventstore.postgres import PostgresEventStore
from contactcenter.eventstore.store import AppendListener, EventStore, TailPacer, Wakeup
from contactcenter.eventstore.tracking import (
    STORE_SOURCE,
    Checkpoint,
    apply_once,
    load_global_position,
    load_position,
    load_stream_heads,
    prune_applied,
    reset_consumer,
    reset_position,
    save_position,
    save_stream_heads,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "PG_OUTAGE_ERRORS",
    "STORE_SOURCE",
    "AppendListener",
    "AppendResult",
    "Checkpoint",
    "EventStore",
    "GlobalPosition",
    "IdempotencyKeyReused",
    "InMemoryEventStore",
    "MigrationChecksumMismatch",
    "MigrationError",
    "PgConnection",
    "PgPool",
    "PostgresEventStore",
    "RecordedEvent",
    "Snapshot",
    "TailPacer",
    "Wakeup",
    "apply_migrations",
    "apply_once",
    "create_pool",
    "load_global_position",
    "load_position",
    "load_stream_heads",
    "notify_channel",
    "prune_applied",
    "reset_consumer",
    "reset_position",
    "save_position",
    "save_stream_heads",
]

if TYPE_CHECKING:

    def _both_stores_implement_the_port(
        pg: PostgresEventStore, memory: InMemoryEventStore
    ) -> tuple[EventStore, EventStore]:
        return pg, memory  # mypy checks the structural match; nothing runs

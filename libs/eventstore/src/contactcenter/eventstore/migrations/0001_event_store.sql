-- The event store of one service. Applied with search_path set to the service's schema.

-- One row per event. (stream_id, version) is the optimistic-concurrency key: two writers that
-- both append version n+1 of a stream collide on it and one of them fails.
-- Readers tailing the whole store order by (transaction_id, position) and only read rows of
-- transactions older than every transaction still running (see PostgresEventStore.read_all);
-- `position` alone is not a safe tail order, a lower position can commit later.
create table events (
    position       bigint generated always as identity,
    transaction_id xid8 not null default pg_current_xact_id(),
    stream_id      text not null,
    version        bigint not null check (version > 0),
    event_id       uuid not null,
    event_type     text not null,
    tenant_id      text not null,
    occurred_at    timestamptz not null,
    recorded_at    timestamptz not null default now(),
    correlation_id uuid not null,
    causation_id   uuid,
    data           jsonb not null,
    metadata       jsonb not null default '{}'::jsonb,
    constraint events_pkey primary key (stream_id, version),
    constraint events_event_id_key unique (event_id)
);

create index events_global_order_idx on events (transaction_id, position);

-- Idempotent commands: the first append of a (tenant, request_id) records its outcome in the
-- same transaction; a retry finds it here and gets the same answer without appending again.
create table requests (
    tenant_id     text not null,
    request_id    text not null,
    request_hash  text not null,
    stream_id     text not null,
    first_version bigint not null,
    last_version  bigint not null,
    event_ids     uuid[] not null,
    result        jsonb,
    recorded_at   timestamptz not null default now(),
    constraint requests_pkey primary key (tenant_id, request_id)
);

-- Optional aggregate snapshots; the event stream stays the source of truth.
create table snapshots (
    stream_id      text not null,
    version        bigint not null check (version > 0),
    schema_version integer not null,
    state          jsonb not null,
    saved_at       timestamptz not null default now(),
    constraint snapshots_pkey primary key (stream_id)
);

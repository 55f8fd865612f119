-- Consumers (projections, process managers) record what they applied in the same transaction
-- as their own writes, so a redelivered batch changes nothing.

create table consumer_applied (
    consumer   text not null,
    event_id   uuid not null,
    applied_at timestamptz not null default now(),
    constraint consumer_applied_pkey primary key (consumer, event_id)
);

-- How far a consumer got in a source: a Kafka `topic:partition` (position = offset,
-- transaction_id null) or an event store (the pair transaction_id, position).
create table consumer_positions (
    consumer       text not null,
    source         text not null,
    transaction_id xid8,
    position       bigint not null,
    updated_at     timestamptz not null default now(),
    constraint consumer_positions_pkey primary key (consumer, source)
);

-- The reporting read models. Everything here is derived from the consumed streams and can be
-- rebuilt from `inbox` (python -m contactcenter.reporting rebuild).

-- Every consumed event reporting folds, in the order it was folded (seq): exactly once by
-- event id, and the source of a rebuild.
create table inbox (
    seq bigserial primary key,
    event_id uuid not null unique,
    tenant_id text not null,
    type text not null,
    at_ms bigint not null,
    data text not null,
    received_at timestamptz not null default now()
);

-- The live read models: entities (tenant settings, queues, agents, contacts in flight) as
-- JSON, and the interval counters (15-minute history, 1-minute rolling windows).
create table rm_entities (
    tenant_id text not null,
    kind text not null,
    key text not null,
    data jsonb not null,
    primary key (tenant_id, kind, key)
);

create table rm_buckets (
    tenant_id text not null,
    queue_id text not null,
    channel text not null,
    minutes smallint not null,
    start_ms bigint not null,
    offered bigint not null,
    answered bigint not null,
    abandoned bigint not null,
    answered_within_threshold bigint not null,
    abandoned_within_threshold bigint not null,
    short_abandons bigint not null,
    flow_outs bigint not null,
    handled bigint not null,
    handle_time_ms_total bigint not null,
    answer_wait_ms_total bigint not null,
    sl_threshold_s integer not null,
    short_abandon_threshold_s integer not null,
    primary key (tenant_id, minutes, start_ms, queue_id, channel)
);

-- Bumped by every rebuild swap: a live projection holding older state reloads.
create table rm_meta (
    id integer primary key check (id = 1),
    generation bigint not null
);
insert into rm_meta (id, generation) values (1, 0);

-- The list read model: one row per interaction, for ListInteractions and for the earlier
-- contacts of a customer profile (first-contact resolution).
-- Maintained by projections/interaction_list.py, which tails this schema's event store
-- (read_all) and records its checkpoint in consumer_positions in the same transaction.
-- Rows only move forward (version); rebuilt from zero by deleting them and the checkpoint.
create table interaction_list (
    tenant_id           text not null,
    interaction_id      text not null,
    version             bigint not null check (version > 0),
    state               text not null,
    channel             text not null,
    -- The current queue, else the last one.
    queue_id            text,
    -- The current agent, else the last one.
    agent_id            text,
    customer_profile_id text,
    intent              text,
    -- An agent connected to it, or it completed (not abandoned, not failed): counts for FCR.
    handled             boolean not null,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    -- The folded aggregate without messages, notes and transcript (the BASIC view).
    view                json not null,
    constraint interaction_list_pkey primary key (tenant_id, interaction_id)
);

-- Newest first, per tenant, optionally narrowed by one equality filter.
create index interaction_list_created_idx
    on interaction_list (tenant_id, created_at desc, interaction_id desc);
create index interaction_list_queue_idx
    on interaction_list (tenant_id, queue_id, created_at desc, interaction_id desc);
create index interaction_list_agent_idx
    on interaction_list (tenant_id, agent_id, created_at desc, interaction_id desc);
create index interaction_list_profile_idx
    on interaction_list (tenant_id, customer_profile_id, created_at desc, interaction_id desc);
create index interaction_list_state_idx
    on interaction_list (tenant_id, state, created_at desc, interaction_id desc);

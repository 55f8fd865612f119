-- The contact (interaction) each email thread is with now, as the interactions service's
-- events tell (cc.interactions.events.v1): the thread's latest EMAIL interaction (its
-- external_ref is the thread id), its state and current agent and queue. A reply after the
-- contact closed goes to a new contact, which then replaces the row. Written in the
-- transaction that records the interaction event as applied.
create table thread_contacts (
    tenant_id      text not null,
    thread_id      text not null,
    interaction_id text not null,
    state          text not null,
    closed         boolean not null default false,
    agent_id       text,
    queue_id       text,
    transfer_count integer not null default 0,
    updated_at     timestamptz not null default now(),
    constraint thread_contacts_pkey primary key (tenant_id, thread_id)
);
create index thread_contacts_interaction_idx on thread_contacts (tenant_id, interaction_id);

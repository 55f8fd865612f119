-- Routing's agent-state changes as WFM needs them for adherence (projections/agent_states.py,
-- fed from cc.routing.events.v1 exactly once through the consumer runner).
create table agent_state_log (
    tenant_id   text not null,
    agent_id    text not null,
    occurred_at timestamptz not null,
    state       text not null,
    event_id    uuid not null,
    primary key (tenant_id, agent_id, occurred_at, event_id)
);

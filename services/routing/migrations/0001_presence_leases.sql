-- Presence leases: an agent desktop renews its lease with every Heartbeat (and while its
-- AgentStream is open). A lease that runs out logs the agent off (AgentStateChanged to
-- OFFLINE, reason `heartbeat_lost`), so no agent stays "available" behind a dead desktop.
-- Kept out of the event log on purpose: a renewal every few seconds per agent is not a
-- decision; only the logout it may lead to is.
create table presence_leases (
    tenant_id  text not null,
    agent_id   text not null,
    expires_at timestamptz not null,
    constraint presence_leases_pkey primary key (tenant_id, agent_id)
);

create index presence_leases_expiry_idx on presence_leases (expires_at);

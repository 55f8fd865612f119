-- Each tenant's intake limits as of its latest TenantLimitsSet event (ConfigureTenant); a
-- tenant without a row has the service's configured defaults. Written with the event.
create table tenant_limits (
    tenant_id                text primary key,
    max_message_bytes        bigint not null,
    max_attachment_bytes     bigint not null,
    max_attachments          integer not null,
    -- 0: no limit.
    max_inbound_per_minute   integer not null,
    version                  bigint not null,
    updated_at               timestamptz not null default now()
);

-- Intake held back before parsing: a reason (e.g. rate_limited) quarantines the message when
-- it is processed, unless it is reprocessed with ignore_limits.
alter table inbox add column hold_reason text;
-- The inbound rate of a tenant (messages received in the last minute).
create index inbox_tenant_received_idx on inbox (tenant_id, received_at);

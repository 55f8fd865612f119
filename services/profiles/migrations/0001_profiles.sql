-- Read models and indexes of the profiles service (the event store is the source of truth for
-- profiles; these tables serve lookups and are purged on erasure).

-- The identity index: one row per identity, so a unique key decides which profile owns it.
-- `ref` is a keyed hash (HMAC-SHA256 with a per-tenant secret) of the normalised identity: the
-- index can be searched by identity without holding emails or phone numbers in clear.
-- `confirmed` turns true once the event that records the identity is stored; an unconfirmed row
-- is a claim whose append may have been interrupted (the next resolve repairs it).
create table identities (
    tenant_id          text not null,
    kind               text not null,
    ref                text not null,
    profile_id         text not null,
    origin             text not null check (origin in ('create', 'add')),
    claimed_by_request text,
    confirmed          boolean not null default false,
    claimed_at         timestamptz not null default now(),
    constraint identities_pkey primary key (tenant_id, kind, ref)
);
create index identities_profile_idx on identities (tenant_id, profile_id);

-- Merged profiles redirect to the profile they were merged into (always one hop: a merge of the
-- target moves the redirects that pointed at it).
create table redirects (
    tenant_id         text not null,
    profile_id        text not null,
    target_profile_id text not null,
    merge_id          text not null,
    merged_at         timestamptz not null default now(),
    constraint redirects_pkey primary key (tenant_id, profile_id)
);
create index redirects_target_idx on redirects (tenant_id, target_profile_id);

-- The per-profile data keys, apart from the events (deleting a row is crypto-shredding). Each
-- key is itself wrapped (AES-GCM) with the service's master key.
create table profile_keys (
    tenant_id   text not null,
    profile_id  text not null,
    wrapped_key bytea not null,
    created_at  timestamptz not null default now(),
    constraint profile_keys_pkey primary key (tenant_id, profile_id)
);

-- For Search by name prefix and the profile's status; personal data in clear, purged on erasure.
create table profile_view (
    tenant_id    text not null,
    profile_id   text not null,
    status       text not null,
    display_name text,
    name_key     text,
    version      bigint not null,
    updated_at   timestamptz not null default now(),
    constraint profile_view_pkey primary key (tenant_id, profile_id)
);
create index profile_view_name_idx on profile_view (tenant_id, name_key text_pattern_ops)
    where name_key is not null;

-- Erased profiles (ids only): late interaction events are not linked to them again.
create table erasures (
    tenant_id  text not null,
    profile_id text not null,
    erasure_id text not null,
    erased_at  timestamptz not null default now(),
    constraint erasures_pkey primary key (tenant_id, profile_id)
);

-- Who read or changed whose personal data, when and why. Holds ids, never personal data.
create table access_audit (
    id          bigint generated always as identity primary key,
    tenant_id   text not null,
    profile_id  text not null,
    actor       text not null,
    roles       text[] not null,
    action      text not null,
    purpose     text not null,
    request_id  text,
    occurred_at timestamptz not null default now()
);
create index access_audit_profile_idx on access_audit (tenant_id, profile_id, occurred_at);

-- The tenant's settings as of the latest TenantConfigured event.
create table tenant_settings (
    tenant_id           text primary key,
    default_region      text,
    attributes          jsonb not null default '[]'::jsonb,
    unmerge_window_days integer not null,
    version             bigint not null
);

-- The customer's interactions (projection of cc.interactions.events.v1).
create table history (
    tenant_id         text not null,
    interaction_id    text not null,
    profile_id        text,
    channel           text,
    direction         text,
    state             text not null,
    created_at        timestamptz not null,
    ended_at          timestamptz,
    queue_id          text,
    agent_id          text,
    disposition_codes text[] not null default '{}',
    updated_at        timestamptz not null default now(),
    constraint history_pkey primary key (tenant_id, interaction_id)
);
create index history_profile_idx on history (tenant_id, profile_id, created_at desc, interaction_id desc)
    where profile_id is not null;

-- Crypto-shredding (contactcenter.privacy.SubjectKeys): a data key per message (the
-- personal fields of its events are sealed with it); ProfileErased destroys the keys of the
-- erased customers' messages.
create table subject_keys (
    tenant_id   text not null,
    subject_id  text not null,
    -- The data key wrapped by the master key; NULL once destroyed (erasure).
    wrapped_key bytea,
    created_at  timestamptz not null default now(),
    shredded_at timestamptz,
    constraint subject_keys_pkey primary key (tenant_id, subject_id)
);
create table subject_owners (
    tenant_id  text not null,
    owner_id   text not null,
    subject_id text not null,
    constraint subject_owners_pkey primary key (tenant_id, owner_id, subject_id)
);
create index subject_owners_subject_idx on subject_owners (tenant_id, subject_id);

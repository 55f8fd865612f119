-- Customer profiles merged into another one (from cc.profiles.events.v1): a merged profile's
-- contacts count under the profile it was merged into (first-contact resolution, the customer
-- filter of ListInteractions). One hop: a merge of the target moves the rows that pointed at
-- it. An unmerge deletes the row (and gives back the profiles that had been merged into the
-- source). Written in the transaction that records the profile event as applied.
create table profile_merges (
    tenant_id         text not null,
    profile_id        text not null,
    target_profile_id text not null,
    merge_id          text not null,
    updated_at        timestamptz not null default now(),
    constraint profile_merges_pkey primary key (tenant_id, profile_id)
);
create index profile_merges_target_idx on profile_merges (tenant_id, target_profile_id);

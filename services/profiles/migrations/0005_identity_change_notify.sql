-- Every change that can move an identity to another profile (an identity deleted or re-owned,
-- a redirect added, moved or dropped by a merge, an unmerge or an erasure) notifies the
-- service's processes, at commit, on channel `cc_profiles_identity_changed` with
-- `<schema>:<tenant_id>`: each process drops the tenant's cached identity lookups
-- (adapters/identity_cache.py). A rolled-back change notifies nobody. Confirming a claim
-- (`update ... set confirmed`) moves nothing and notifies nobody.
create function notify_identity_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify(
        'cc_profiles_identity_changed',
        tg_table_schema || ':' || coalesce(old.tenant_id, new.tenant_id)
    );
    return null;
end
$$;

create trigger identities_changed
    after delete or update of tenant_id, kind, ref, profile_id, origin, claimed_by_request
    on identities for each row execute function notify_identity_changed();

create trigger redirects_changed
    after insert or delete or update on redirects
    for each row execute function notify_identity_changed();

-- ListAccessAudit reads the trail newest first, by tenant alone or by actor.
create index access_audit_time_idx on access_audit (tenant_id, occurred_at desc, id desc);
create index access_audit_actor_idx on access_audit (tenant_id, actor, occurred_at desc, id desc);

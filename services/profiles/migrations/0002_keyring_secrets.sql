-- Secrets of the key ring other than the per-profile keys, each wrapped (AES-GCM) with the
-- service's master key like a profile key: the identity index's root secret, from which the
-- tenants' HMAC secrets derive. Stored so that it survives a rotation of the master key.
create table keyring_secrets (
    name       text primary key,
    wrapped    bytea not null,
    updated_at timestamptz not null default now()
);

-- The key ring's secrets other than the profile keys (contactcenter.privacy.SECRETS_DDL), each
-- wrapped with the master key like a profile key: the identity index's root secret, from which
-- the tenants' HMAC secrets derive. Stored so that it survives a rotation of the master key.
create table keyring_secrets (
    name       text primary key,
    -- The secret wrapped (like a data key) by the master key.
    wrapped    bytea not null,
    updated_at timestamptz not null default now()
);

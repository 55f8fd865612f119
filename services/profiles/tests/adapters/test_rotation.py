"""Master key rotation against the real PostgreSQL: every profile opens after the rotation with
the new master key alone, identities still resolve to their profiles, and the command says when
the old key can go."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactcenter.eventstore import PostgresEventStore, apply_migrations, create_pool
from contactcenter.privacy import INDEX_ROOT, master_key_id, rewrap_keys
from contactcenter.profiles.__main__ import rotate
from contactcenter.profiles.adapters.crypto import KeyRing
from contactcenter.profiles.adapters.tables import Tables
from contactcenter.profiles.application import ProfilesApplication
from contactcenter.profiles.application.service import Actor, IdentityInput
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.domain import IdentityKind
from contactcenter.profiles.main import SERVICE_NAME
from contactcenter.servicekit import migrations_dir
from contactcenter.testing.services import temporary_database

pytestmark = pytest.mark.infra

OLD, NEW = os.urandom(32), os.urandom(32)
TENANTS = ("t-rot-1", "t-rot-2")


def legacy_wrap(master: bytes, tenant: str, profile: str, key: bytes) -> bytes:
    """A key wrapped as before master key versions existed (`nonce || ciphertext+tag`)."""
    aead = AESGCM(hashlib.sha256(b"profiles/key-wrap/v1" + master).digest())
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, key, f"{tenant}/{profile}".encode())


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def test_rotation_rewraps_every_key_and_the_old_key_can_go(database_url: str) -> None:
    async with temporary_database(database_url, "test_profiles_rotation") as url:
        await _rotation(url)


async def _rotation(database_url: str) -> None:
    import contactcenter.profiles.main as profiles_main

    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        await apply_migrations(pool, SERVICE_NAME, [migrations_dir(profiles_main.__file__)])
        store = PostgresEventStore(pool, SERVICE_NAME)
        tables = Tables(pool, SERVICE_NAME)

        def app(keyring: KeyRing) -> ProfilesApplication:
            return ProfilesApplication(store, tables, keyring, settings_ttl_s=0)

        # Profiles made under the old key; one of them wrapped as before key versions.
        before = app(KeyRing(OLD))
        made: dict[tuple[str, str], str] = {}
        for tenant in TENANTS:
            actor = Actor(tenant, "gateway", frozenset({"service"}))
            for n in range(5):
                email = f"customer{n}@example.com"
                resolved = await before.resolve(
                    actor,
                    str(uuid.uuid4()),
                    IdentityInput(IdentityKind.EMAIL, email),
                    display_name=f"Customer {n} of {tenant}",
                )
                made[(tenant, email)] = resolved.profile_id
        tenant, email = TENANTS[0], "customer0@example.com"
        legacy_id = made[(tenant, email)]
        data_key = KeyRing(OLD).unwrap(
            tenant, legacy_id, (await tables.keys(tenant, [legacy_id]))[legacy_id]
        )
        async with pool.acquire() as conn:
            await conn.execute(
                f"update {SERVICE_NAME}.profile_keys set wrapped_key = $3 "
                "where tenant_id = $1 and profile_id = $2",
                tenant,
                legacy_id,
                legacy_wrap(OLD, tenant, legacy_id, data_key),
            )
        # An erased profile (no key) stays erased.
        async with pool.acquire() as conn:
            await conn.execute(
                f"delete from {SERVICE_NAME}.profile_keys where tenant_id = $1 and profile_id = $2",
                TENANTS[1],
                made[(TENANTS[1], "customer4@example.com")],
            )

        # Without the old key nothing opens yet.
        with pytest.raises(Exception, match=master_key_id(OLD, "profiles")):
            await app(KeyRing(NEW)).view(tenant, made[(tenant, "customer1@example.com")])

        # The command, with the new key current and the old one retired.
        settings = ProfilesSettings(
            database_url=database_url, master_key=b64(NEW), retired_master_keys=b64(OLD)
        )
        report = await rotate(settings)
        assert (report.master_key_id, report.rewrapped, report.remaining) == (
            master_key_id(NEW, "profiles"),
            10,  # nine profile keys and the identity-index root
            0,
        )
        again = await rewrap_keys(
            pool, KeyRing(NEW, [OLD]), tables.key_table, secrets=tables.secrets
        )
        assert (again.rewrapped, again.remaining) == (0, 0)
        stored = await tables.secrets.get(INDEX_ROOT)
        assert stored is not None and KeyRing(NEW).is_current(stored)

        # The old key removed: every profile opens, identities land on the same profiles.
        after = app(KeyRing(NEW))
        for (tenant, email), profile_id in made.items():
            actor = Actor(tenant, "gateway", frozenset({"service"}))
            if email == "customer4@example.com" and tenant == TENANTS[1]:
                continue
            view = await after.view(tenant, profile_id)
            assert view.state.display_name == f"Customer {email[8]} of {tenant}"
            assert [i.value for i in view.identities] == [email]
            resolved = await after.resolve(
                actor, str(uuid.uuid4()), IdentityInput(IdentityKind.EMAIL, email)
            )
            assert (resolved.profile_id, resolved.created) == (profile_id, False)
        # New profiles are wrapped with the new key.
        actor = Actor(TENANTS[0], "gateway", frozenset({"service"}))
        new = await after.resolve(
            actor, str(uuid.uuid4()), IdentityInput(IdentityKind.EMAIL, "new@example.com")
        )
        wrapped = (await tables.keys(TENANTS[0], [new.profile_id]))[new.profile_id]
        assert KeyRing(NEW).is_current(wrapped)
    finally:
        await pool.close()

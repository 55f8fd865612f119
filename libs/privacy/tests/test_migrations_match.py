"""The services' migrations that add the key tables are copies of `DDL` (a migration is a
file frozen once released, so it cannot import the library's text): they must not drift."""

from __future__ import annotations

import re
from pathlib import Path

from contactcenter.privacy import DDL

ROOT = Path(__file__).resolve().parents[3]


def _sql(text: str) -> str:
    without_comments = re.sub(r"--[^\n]*", "", text)
    return " ".join(without_comments.split())


def test_every_service_migration_of_the_key_tables_is_the_librarys_ddl() -> None:
    migrations = sorted(ROOT.glob("services/*/migrations/*_subject_keys.sql"))
    assert len(migrations) >= 2, migrations  # interactions and email seal personal data
    for migration in migrations:
        assert _sql(DDL) in _sql(migration.read_text()), f"{migration.name} drifted from DDL"

"""Stream ids in the event stores: `<category>/<tenant_id>/<entity_id>`.

The tenant is part of the id so that two tenants' aggregates never share a stream even when
they choose the same entity id (a queue named `sales`, say).
"""

from __future__ import annotations

import re

_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")


def stream_id(category: str, tenant_id: str, entity_id: str) -> str:
    if not _CATEGORY.match(category):
        raise ValueError(f"stream category must be lower_snake_case, got {category!r}")
    if not tenant_id or "/" in tenant_id:
        raise ValueError(f"invalid tenant id {tenant_id!r}")
    return f"{category}/{tenant_id}/{entity_id}"

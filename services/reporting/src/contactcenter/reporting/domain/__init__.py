"""The pure domain of the reporting service: facts in, a fold into per-tenant state, the
metric definitions, interval alignment in the tenant's time zone, and the views.

Imports nothing but the standard library and `contactcenter.contracts`.
"""

from contactcenter.reporting.domain import facts
from contactcenter.reporting.domain.metrics import Counters
from contactcenter.reporting.domain.state import ReportingState, TenantState
from contactcenter.reporting.domain.values import Activity, ServiceLevelVariant, Window

__all__ = [
    "Activity",
    "Counters",
    "ReportingState",
    "ServiceLevelVariant",
    "TenantState",
    "Window",
    "facts",
]

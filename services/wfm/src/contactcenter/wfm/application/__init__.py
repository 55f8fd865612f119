"""Command handlers and queries of the WFM service."""

from contactcenter.wfm.application.ports import IntervalHistory
from contactcenter.wfm.application.service import WfmApplication

__all__ = ["IntervalHistory", "WfmApplication"]

"""Application layer: command handlers (load, decide, append), reads, and the process manager
that turns other services' events into commands."""

from contactcenter.interactions.application.handlers import (
    CommandOutcome,
    InteractionsApplication,
    WatchEvent,
    WatchSnapshot,
)
from contactcenter.interactions.application.ports import PreviousContacts
from contactcenter.interactions.application.process_manager import (
    InboundEmail,
    ProcessManager,
)
from contactcenter.interactions.application.signals import AppendSignals

__all__ = [
    "AppendSignals",
    "CommandOutcome",
    "InboundEmail",
    "InteractionsApplication",
    "PreviousContacts",
    "ProcessManager",
    "WatchEvent",
    "WatchSnapshot",
]

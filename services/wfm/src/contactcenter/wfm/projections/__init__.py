"""WFM's read models: the agent-state log (adapters/inbound.py) feeds adherence."""

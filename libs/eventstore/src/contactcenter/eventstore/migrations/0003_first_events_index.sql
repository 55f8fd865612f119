-- `list_streams(prefix)`: one small index entry per stream (its first event), so listing a
-- service's streams (e.g. routing's tenants after a rebalance) never scans every event.
create index if not exists events_first_event_idx on events (stream_id) where version = 1;

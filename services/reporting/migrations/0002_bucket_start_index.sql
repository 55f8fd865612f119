-- Memory holds only today's buckets and the minute ones: loading them (at start and after a
-- rebuild swap) reads a range of start times instead of the whole history.
create index rm_buckets_start on rm_buckets (start_ms);

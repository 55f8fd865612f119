-- The last version of each stream a consumer applied (`contactcenter.messaging.ordering`):
-- an event whose predecessors it has not applied yet is held back, not applied out of order.
create table if not exists consumer_stream_heads (
    consumer text not null,
    source   text not null,
    subject  text not null,
    version  bigint not null,
    constraint consumer_stream_heads_pkey primary key (consumer, source, subject)
);

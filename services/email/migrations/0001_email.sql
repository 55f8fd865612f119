-- Raw messages and attachments, content-addressed: the key is the sha256 of the bytes.
create table blobs (
    sha256     text primary key,
    size_bytes bigint not null,
    data       bytea not null,
    created_at timestamptz not null default now()
);

-- The durable work queue: one row per received message and mailbox. A row is committed
-- (with its blob) before SMTP answers 250 or the IMAP checkpoint moves; processing then
-- marks it done, duplicate or quarantined in the transaction of its events.
create table inbox (
    id              bigserial primary key,
    tenant_id       text not null,
    mailbox_address text not null,
    raw_sha256      text not null references blobs (sha256),
    source          text not null,
    envelope_from   text,
    envelope_to     text not null default '',
    received_at     timestamptz not null default now(),
    status          text not null default 'pending',
    ignore_limits   boolean not null default false,
    message_id      text,
    processed_at    timestamptz
);
create index inbox_pending_idx on inbox (id) where status = 'pending';

-- Every received and sent message (threading, dedupe, GetMessage); written with its events.
create table messages (
    tenant_id           text not null,
    message_id          text not null,
    dedupe_key          text not null,
    internet_message_id text,
    thread_id           text,
    kind                text not null,
    mailbox_address     text not null,
    from_address        text not null,
    raw_sha256          text,
    received_at         timestamptz not null default now(),
    delivery_status     text,
    view                jsonb not null,
    constraint messages_pkey primary key (tenant_id, message_id),
    constraint messages_dedupe_key unique (tenant_id, dedupe_key)
);
create index messages_internet_id_idx on messages (tenant_id, internet_message_id);

create table threads (
    tenant_id        text not null,
    thread_id        text not null,
    mailbox_address  text not null,
    customer_address text not null,
    created_at       timestamptz not null default now(),
    constraint threads_pkey primary key (tenant_id, thread_id)
);

-- Mailbox addresses are unique across tenants (SMTP finds the tenant by address). The IMAP
-- password lives only here (never in an event, a log or an API answer).
create table mailboxes (
    address       text primary key,
    tenant_id     text not null,
    view          jsonb not null,
    imap_password text,
    created_at    timestamptz not null default now()
);
create index mailboxes_tenant_idx on mailboxes (tenant_id, address);

-- Where each mailbox's IMAP poller is: moved in the transaction that stores what it fetched.
create table imap_state (
    address     text primary key,
    uidvalidity bigint not null,
    last_uid    bigint not null,
    updated_at  timestamptz not null default now()
);

create table quarantine (
    quarantine_id   text primary key,
    tenant_id       text not null,
    inbox_id        bigint not null references inbox (id),
    mailbox_address text not null,
    reason          text not null,
    detail          text not null,
    raw_sha256      text not null,
    size_bytes      bigint not null,
    received_at     timestamptz not null,
    status          text not null default 'QUARANTINED'
);
create index quarantine_tenant_idx on quarantine (tenant_id, received_at desc);

-- Outgoing replies: queued -> sent -> recorded (on the interaction), or failed.
create table outbound (
    message_id      text primary key,
    tenant_id       text not null,
    status          text not null,
    attempts        int not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error      text,
    payload         jsonb not null
);
create index outbound_due_idx on outbound (next_attempt_at) where status in ('queued', 'sent');

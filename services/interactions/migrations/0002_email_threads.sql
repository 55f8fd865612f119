-- The process manager's memory of email threads: which interaction a thread's next email
-- goes to. Written in the transaction that records the email-received event as applied.
create table email_threads (
    tenant_id      text not null,
    thread_id      text not null,
    interaction_id text not null,
    updated_at     timestamptz not null default now(),
    constraint email_threads_pkey primary key (tenant_id, thread_id)
);

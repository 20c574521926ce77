-- Idempotency-Key: one row per (user, key) for 24 hours. It holds a hash of the request and a
-- reference to what the first request produced (the resource whose GET rebuilds the answer),
-- never a copy of the answer, so no personal data lives outside the privacy design.
create table idempotency_keys (
    user_id      bigint      not null,
    key          text        not null,
    request_hash bytea       not null,
    -- The claiming request's id: its events carry it in their metadata (`request_id`).
    request_id   text        not null,
    -- Every event the claiming request wrote has a transaction id at or above this.
    since_txid   xid8        not null,
    -- Null while the first request runs.
    status       smallint,
    location     text,
    resource     text,
    consistency  text,
    -- The version the answer named besides the resource (`ticket_version` of a new comment).
    ticket_version bigint,
    created_at   timestamptz not null default now(),
    primary key (user_id, key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);

-- Delivering events outside (DESIGN.md): webhooks, e-mail and the NATS feed share one outbox.
-- A delivery row is a reference (the event's log position, the recipient, the kind), never a
-- rendered copy: the message is rendered when it is sent, so an erasure reaches it.

-- Who this installation is: NATS message ids and e-mail Message-IDs carry it, so two
-- installations (or two test databases) on one NATS server never collide.
create table installation (
    id         uuid primary key default gen_random_uuid(),
    one        boolean not null default true unique check (one),
    created_at timestamptz not null default now()
);
insert into installation default values;

-- Which channels some process of this installation sends on (its configuration says so at
-- start): the notifications projection records e-mails only when e-mail is configured.
create table delivery_channels (
    channel    text primary key check (channel in ('email', 'webhook', 'nats')),
    enabled    boolean not null,
    updated_at timestamptz not null default now()
);

create table webhooks (
    id          bigint generated always as identity primary key,
    url         text not null,
    description text,
    -- Event types delivered; empty = every type.
    events      text[] not null default '{}',
    -- `whsec_<base64>`: the key deliveries are signed with (Standard Webhooks).
    secret      text not null,
    active      boolean not null default true,
    created_by  bigint,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table deliveries (
    id               bigint generated always as identity primary key,
    channel          text not null check (channel in ('email', 'webhook', 'nats')),
    -- The event: its log position (global_position in `events`).
    event_position   bigint not null,
    -- A webhook's id, a user's id (e-mail); none for NATS.
    recipient        bigint,
    -- The webhook event type, the notification kind, or the event type.
    kind             text not null,
    -- Deliveries with the same key go out in log order (webhooks: one ticket's events).
    order_key        text,
    status           text not null default 'pending'
                     check (status in ('pending', 'delivered', 'failed', 'skipped')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    -- A sender's claim: nobody else sends this row before it runs out.
    lease_until      timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz not null default now(),
    delivered_at     timestamptz
);
create unique index deliveries_once on deliveries (channel, event_position, coalesce(recipient, 0), kind);
create index deliveries_due on deliveries (channel, next_attempt_at, id) where status = 'pending';
create index deliveries_order on deliveries (channel, recipient, order_key, id) where status = 'pending';
create index deliveries_of_hook on deliveries (recipient, id) where channel = 'webhook';
create index deliveries_failed on deliveries (channel) where status = 'failed';
create index deliveries_done on deliveries (delivered_at) where status <> 'pending';

-- Live updates (GET /api/v1/live): who is on which ticket, shared by every ticketd process.
-- Unlogged: presence is a few seconds of truth, not history; a crash may forget it.
create unlogged table ticket_presence (
    ticket_id  bigint not null,
    user_id    bigint not null,
    state      text not null check (state in ('viewing', 'typing')),
    internal   boolean not null default false,
    expires_at timestamptz not null,
    primary key (ticket_id, user_id)
);
create index ticket_presence_expiry on ticket_presence (expires_at);

-- The live hubs route the notifications an event caused: find them by that event.
create index rm_notifications_source on rm_notifications (source_position);

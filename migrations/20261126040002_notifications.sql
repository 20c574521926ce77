-- Notifications, written only by the `notifications` projection.
-- Ids come from a sequence that no table owns, so a rebuild's shadow table (created `like`
-- the live one) draws from the same sequence and ids stay increasing across a swap: the
-- SSE stream's `Last-Event-ID` never goes backwards.
create sequence rm_notifications_id_seq as bigint;

create table rm_notifications (
    id              bigint not null default nextval('rm_notifications_id_seq') primary key,
    user_id         bigint not null,
    kind            text not null,
    ticket_id       bigint,
    approval_id     uuid,
    comment_id      uuid,
    actor_id        bigint,
    message         text not null,
    excerpt         text,
    -- About an internal note: never shown to a requester.
    internal        boolean not null default false,
    -- The event that caused it (its `global_position`): stable across rebuilds.
    source_position bigint not null,
    created_at      timestamptz not null,
    unique (user_id, source_position)
);
create index rm_notifications_user on rm_notifications (user_id, id desc);

-- The projection's own memory: who requested, is assigned to and follows each ticket.
create table rm_notification_tickets (
    ticket_id    bigint primary key,
    requester_id bigint not null,
    assignee_id  bigint,
    followers    bigint[] not null default '{}',
    title        text not null
);

-- ... and the steps of each approval (who to tell when a step becomes current).
create table rm_notification_approvals (
    approval_id  uuid primary key,
    ticket_id    bigint not null,
    requested_by bigint not null,
    steps        jsonb not null
);

-- Read marks are the user's own state, written by the API (never by the projection), and
-- keyed by the source event so that they survive a rebuild of `rm_notifications`.
create table notification_reads (
    user_id         bigint not null,
    source_position bigint not null,
    read_at         timestamptz not null default now(),
    primary key (user_id, source_position)
);

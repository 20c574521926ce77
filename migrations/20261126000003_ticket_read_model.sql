create extension if not exists pg_trgm;

-- The ticket list/search read model, written only by the `tickets` projection.
create table rm_tickets (
    id                bigint primary key,
    title             text not null,
    description       text not null,
    status            text not null,
    priority          text not null,
    priority_rank     smallint not null,
    type              text not null,
    requester_id      bigint not null,
    assignee_id       bigint,
    tags              text[] not null default '{}',
    item_ids          bigint[] not null default '{}',
    approval_status   text not null default 'none',
    version           bigint not null,
    deleted           boolean not null default false,
    comment_count     integer not null default 0,
    attachment_count  integer not null default 0,
    public_comments   text not null default '',
    created_at        timestamptz not null,
    updated_at        timestamptz not null,
    resolved_at       timestamptz,
    first_response_at timestamptz,
    search            tsvector generated always as (
        setweight(to_tsvector('english', title), 'A') ||
        setweight(to_tsvector('english', description), 'B') ||
        setweight(to_tsvector('english', public_comments), 'C')
    ) stored
);
create index rm_tickets_created on rm_tickets (created_at desc, id desc) where not deleted;
create index rm_tickets_updated on rm_tickets (updated_at desc, id desc) where not deleted;
create index rm_tickets_priority on rm_tickets (priority_rank desc, created_at desc, id desc) where not deleted;
create index rm_tickets_requester on rm_tickets (requester_id, created_at desc) where not deleted;
create index rm_tickets_assignee on rm_tickets (assignee_id, created_at desc) where not deleted;
create index rm_tickets_status on rm_tickets (status, created_at desc) where not deleted;
create index rm_tickets_tags on rm_tickets using gin (tags) where not deleted;
create index rm_tickets_search on rm_tickets using gin (search);
create index rm_tickets_title_trgm on rm_tickets using gin (title gin_trgm_ops);

-- Exact totals for the common list filters without counting a million rows.
create table rm_ticket_counts (
    status   text not null,
    priority text not null,
    type     text not null,
    n        bigint not null,
    primary key (status, priority, type)
);

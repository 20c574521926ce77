-- Saved views of the ticket queue: settings, not tickets, so a plain table (not event-sourced).
-- `filters` holds the ticket list's query parameters (checked by the list's rules when saved);
-- `owner_id` is null only for the desk's own shared views.
create table saved_views (
    id         bigint generated always as identity primary key,
    name       text not null,
    filters    jsonb not null default '{}',
    sort       text,
    columns    text[] not null,
    shared     boolean not null default false,
    owner_id   bigint references users (id),
    position   integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint saved_views_personal_ones_have_an_owner check (shared or owner_id is not null)
);
create index saved_views_owner on saved_views (owner_id) where not shared;

-- Every desk starts with these four shared views.
insert into saved_views (name, filters, sort, columns, shared, position) values
    ('Unassigned', '{"unassigned": true, "status": "open,in_progress,pending"}', 'sla_due',
     '{id,title,status,priority,requester,sla,created_at}', true, 0),
    ('My open tickets', '{"assignee_id": "me", "status": "open,in_progress,pending"}', 'sla_due',
     '{id,title,status,priority,requester,sla,updated_at}', true, 1),
    ('Due soon', '{"sla": "warning"}', 'sla_due',
     '{id,title,status,priority,requester,assignee,sla}', true, 2),
    ('Breached', '{"sla": "breached", "status": "open,in_progress,pending"}', 'sla_due',
     '{id,title,status,priority,requester,assignee,sla}', true, 3);

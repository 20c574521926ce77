-- Users: search for the assignee picker (`q` over name and email).
create index users_search_trgm on users using gin ((full_name || ' ' || email) gin_trgm_ops);

-- Configuration items and assets. Not event-sourced: an ordinary table with an optimistic
-- `version` checked through `If-Match`.
create table items (
    id          bigint generated always as identity primary key,
    name        text not null,
    kind        text not null,
    description text not null default '',
    attributes  jsonb not null default '{}' check (jsonb_typeof(attributes) = 'object'),
    owner_id    bigint references users (id),
    status      text not null default 'active'
                check (status in ('active', 'maintenance', 'retired')),
    version     bigint not null default 1,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index items_kind on items (kind);
create index items_status on items (status);
create index items_search_trgm on items using gin ((name || ' ' || description) gin_trgm_ops);

-- "Which tickets refer to this item" (the item's page, and the delete guard).
create index rm_tickets_item_ids on rm_tickets using gin (item_ids) where not deleted;

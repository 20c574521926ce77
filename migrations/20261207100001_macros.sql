-- Macros (canned responses with changes), personal or shared with the desk: settings, not
-- tickets, so an ordinary table like saved views.
create table macros (
    id bigserial primary key,
    name text not null check (char_length(name) between 1 and 100),
    content text not null default '',
    is_internal boolean not null default false,
    changes jsonb not null default '{}',
    shared boolean not null default false,
    owner_id bigint references users (id) on delete cascade,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index macros_owner on macros (owner_id) where not shared;

-- What requesters may choose on their own tickets (one row; absent means the defaults:
-- priorities low, medium, high; types issue, incident, service_request, question; reopen
-- within 14 days of resolution).
create table requester_policy (
    singleton boolean primary key default true check (singleton),
    priorities text[] not null,
    types text[] not null,
    reopen_days integer not null check (reopen_days between 0 and 365),
    updated_by bigint references users (id) on delete set null,
    updated_at timestamptz not null default now()
);

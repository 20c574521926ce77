create table users (
    id            bigint generated always as identity primary key,
    email         text not null,
    full_name     text not null,
    password_hash text not null,
    role          text not null default 'requester'
                  check (role in ('requester', 'agent', 'manager', 'admin')),
    is_active     boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create index users_role on users (role);

-- Refresh tokens are opaque random strings; only their sha256 is stored.
-- A family is one login; every refresh rotates within it. Presenting a rotated token
-- again (reuse) revokes the whole family.
create table refresh_tokens (
    id          uuid primary key,
    family_id   uuid not null,
    user_id     bigint not null references users (id),
    token_hash  bytea not null unique,
    expires_at  timestamptz not null,
    created_at  timestamptz not null default now(),
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
create index refresh_tokens_family on refresh_tokens (family_id);
create index refresh_tokens_user on refresh_tokens (user_id);

-- Failed-login throttling, shared by every API process.
create table login_throttle (
    key             text primary key,
    failures        integer not null default 0,
    window_start    timestamptz not null default now(),
    locked_until    timestamptz
);

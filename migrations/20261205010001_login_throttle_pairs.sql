-- Sign-in and registration throttling (OWASP ASVS 6.3), shared by every API process: one row
-- per (account, client address) pair, per address and per registering address. The key is a
-- SHA-256 of what the row counts, so no email or address is kept here. The old per-account
-- rows locked the owner out with the attacker; they only ever held minutes of state.
drop table login_throttle;

create table login_throttle (
    key             bytea primary key,
    failures        integer not null,
    window_start    timestamptz not null default now(),
    locked_until    timestamptz
);
create index login_throttle_window_start on login_throttle (window_start);

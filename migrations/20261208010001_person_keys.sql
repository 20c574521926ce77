-- Data keys per person (DESIGN.md "Personal data and erasure"): AES-256-GCM keys wrapped by the
-- master key (TICKETD_MASTER_KEY), kept outside the event log. Erasure sets `wrapped_key` to
-- null (the key is destroyed); the row stays, so no new key is issued for an erased person.
create table person_keys (
    person_id   bigint primary key,
    wrapped_key bytea,
    created_at  timestamptz not null default now(),
    erased_at   timestamptz,
    check ((wrapped_key is null) = (erased_at is not null))
);

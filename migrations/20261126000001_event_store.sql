-- The event log: postgres-es's `events` table with ticketd's additions (DESIGN.md).
-- postgres-es names its columns in every INSERT/SELECT, so defaulted extra columns are
-- filled by PostgreSQL without any change to the crate.
create table events (
    aggregate_type  text   not null,
    aggregate_id    text   not null,
    sequence        bigint not null check (sequence >= 0),
    event_type      text   not null,
    event_version   text   not null,
    payload         jsonb  not null,
    metadata        jsonb  not null,
    global_position bigint generated always as identity,
    transaction_id  xid8   not null default pg_current_xact_id(),
    recorded_at     timestamptz not null default clock_timestamp(),
    prev_hash       bytea  not null,
    hash            bytea  not null,
    primary key (aggregate_type, aggregate_id, sequence)
);

-- The tailing order of every reader: (transaction_id, global_position).
create unique index events_log_order on events (transaction_id, global_position);
create unique index events_global_position on events (global_position);

-- Only needed if snapshots are ever enabled (they are not: see ENGINE.md).
create table snapshots (
    aggregate_type   text   not null,
    aggregate_id     text   not null,
    last_sequence    bigint not null check (last_sequence >= 0),
    current_snapshot bigint not null check (current_snapshot >= 0),
    payload          jsonb  not null,
    primary key (aggregate_type, aggregate_id, last_sequence)
);

-- Human ticket numbers.
create sequence ticket_id_seq as bigint start 1000;

-- The hash chain. Every field that carries meaning is length-prefixed (so no two different
-- rows can produce the same input) and hashed in its stored form; `ticketd audit verify`
-- recomputes the same digest in Rust.
create function event_hash_input(
    p_type text, p_id text, p_seq bigint, p_event_type text, p_event_version text,
    p_payload jsonb, p_metadata jsonb, p_recorded_at timestamptz
) returns bytea language sql immutable as $$
    select convert_to(
        octet_length(p_type)::text || ':' || p_type || '|' ||
        octet_length(p_id)::text || ':' || p_id || '|' ||
        p_seq::text || '|' ||
        octet_length(p_event_type)::text || ':' || p_event_type || '|' ||
        octet_length(p_event_version)::text || ':' || p_event_version || '|' ||
        octet_length(p_payload::text)::text || ':' || p_payload::text || '|' ||
        octet_length(p_metadata::text)::text || ':' || p_metadata::text || '|' ||
        (extract(epoch from p_recorded_at) * 1000000)::bigint::text,
        'UTF8')
$$;

create function events_chain() returns trigger language plpgsql as $$
declare
    previous bytea;
begin
    if new.sequence <= 1 then
        previous := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    else
        select hash into previous from events
         where aggregate_type = new.aggregate_type
           and aggregate_id = new.aggregate_id
           and sequence = new.sequence - 1;
        if previous is null then
            raise exception 'event % of %/% has no predecessor',
                new.sequence, new.aggregate_type, new.aggregate_id
                using errcode = '23503';
        end if;
    end if;
    new.prev_hash := previous;
    new.hash := sha256(previous || event_hash_input(
        new.aggregate_type, new.aggregate_id, new.sequence, new.event_type,
        new.event_version, new.payload, new.metadata, new.recorded_at));
    return new;
end
$$;

create trigger events_chain before insert on events
    for each row execute function events_chain();

-- The log is append-only.
create function events_refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'the event log is append-only (% refused)', tg_op
        using errcode = '42501';
end
$$;

create trigger events_no_update before update or delete on events
    for each row execute function events_refuse_change();
create trigger events_no_truncate before truncate on events
    for each statement execute function events_refuse_change();

-- Projection checkpoints: (transaction_id, global_position) pairs, never the position alone.
create table projection_checkpoints (
    projection    text primary key,
    last_txid     xid8   not null default '0',
    last_position bigint not null default 0,
    status        text   not null default 'running',
    error         text,
    updated_at    timestamptz not null default now()
);

-- Seals: digests over every stream head up to a log position (`ticketd audit seal`).
create table audit_seals (
    id            bigint generated always as identity primary key,
    upto_txid     xid8   not null,
    upto_position bigint not null,
    streams       bigint not null,
    events        bigint not null,
    root          bytea  not null,
    sealed_at     timestamptz not null default now()
);

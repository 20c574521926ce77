-- Seals (`ticketd audit seal`): each seal covers the events at or below a log position
-- `(upto_txid, upto_position)` and records, per stream, the head (highest sequence) of the
-- stream as of that position. Only heads that changed since the previous seal are stored: a
-- stream's head for seal N is its row with the highest `seal_id <= N`.
create table audit_seal_heads (
    seal_id        bigint not null references audit_seals (id),
    aggregate_type text   not null,
    aggregate_id   text   not null,
    head_sequence  bigint not null check (head_sequence >= 1),
    head_hash      bytea  not null,
    primary key (aggregate_type, aggregate_id, seal_id)
);

-- How `root` was computed (see src/audit.rs), so the format can evolve.
alter table audit_seals add column algorithm text not null default 'ticketd-seal-v1';
-- Transactions below `upto_txid` still running when the seal was taken (xids are shared by
-- the whole cluster, so there may be some): their events are not covered by the seal.
alter table audit_seals add column excluded_txids xid8[] not null default '{}';

-- Seals are evidence: append-only like the log itself.
create trigger audit_seals_no_update before update or delete on audit_seals
    for each row execute function events_refuse_change();
create trigger audit_seals_no_truncate before truncate on audit_seals
    for each statement execute function events_refuse_change();
create trigger audit_seal_heads_no_update before update or delete on audit_seal_heads
    for each row execute function events_refuse_change();
create trigger audit_seal_heads_no_truncate before truncate on audit_seal_heads
    for each statement execute function events_refuse_change();

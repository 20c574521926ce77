-- SLA at a glance: every ticket list row carries its SLA clock (the same clock the reports
-- run, `projections/src/sla/clock.rs`) and the marks lists sort and filter by; the counts
-- table gains the assignee, so that the queue's views count without scanning.
-- The rows are replayed: the `tickets` tables are emptied and its checkpoint goes back to the
-- start of the log, so the projection rebuilds them (with their clocks) when the server next
-- runs.
truncate rm_tickets, rm_ticket_counts, rm_ticket_search, rm_search_words;

alter table rm_tickets
    add column sla_running_since          timestamptz,
    add column sla_elapsed_us             bigint not null default 0,
    add column first_response_due_at      timestamptz,
    add column resolution_due_at          timestamptz,
    add column first_response_breached_at timestamptz,
    add column resolution_breached_at     timestamptz,
    add column policy_version             bigint not null default 0,
    -- When each running target enters its last 20 %.
    add column first_response_warn_at     timestamptz,
    add column resolution_warn_at         timestamptz,
    -- The top-level target: its due time (open tickets only), when it warns, and from when
    -- the ticket reads `breached` (a stopped ticket: its first missed target).
    add column sla_due_at                 timestamptz,
    add column sla_warn_at                timestamptz,
    add column sla_breach_at              timestamptz;

-- `sort=sla_due`: earliest due first, tickets without one last (the index's order), also
-- within one assignee ("my open tickets"); `sla=warning` is the range not yet due.
create index rm_tickets_sla_due on rm_tickets (sla_due_at, id) where not deleted;
create index rm_tickets_assignee_sla_due on rm_tickets (assignee_id, sla_due_at, id) where not deleted;
-- `sla=breached` is `sla_breach_at < now`; counts subtract the small range not yet breached.
create index rm_tickets_sla_breach on rm_tickets (sla_breach_at) where not deleted and sla_breach_at is not null;

-- Live tickets by status, priority, type and assignee (0 = unassigned), and how many of them
-- have an `sla_breach_at` (they read `breached` once it has passed).
drop table rm_ticket_counts;
create table rm_ticket_counts (
    status       text not null,
    priority     text not null,
    type         text not null,
    assignee_key bigint not null,
    n            bigint not null,
    breachable   bigint not null default 0,
    primary key (status, priority, type, assignee_key)
);

update projection_checkpoints
   set last_txid = '0', last_position = 0, status = 'running', error = null, updated_at = now()
 where projection = 'tickets';

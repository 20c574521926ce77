-- Live tickets by tag, status, priority, type and assignee (0 = unassigned), with how many of
-- them have an `sla_breach_at`: a list or view filtered by one tag counts from here instead of
-- visiting every ticket with that tag. Written only by the `tickets` projection, which replays
-- the log to fill it (its tables are emptied and its checkpoint goes back to the start).
create table rm_ticket_tag_counts (
    tag          text not null,
    status       text not null,
    priority     text not null,
    type         text not null,
    assignee_key bigint not null,
    n            bigint not null,
    breachable   bigint not null default 0,
    primary key (tag, status, priority, type, assignee_key)
);

truncate rm_tickets, rm_ticket_counts, rm_ticket_search, rm_search_words;
update projection_checkpoints
   set last_txid = '0', last_position = 0, status = 'running', error = null, updated_at = now()
 where projection = 'tickets';

-- Reports: the SLA policy (configuration, written by admins) and the `reports` read model
-- (written only by the `reports` projection; see docs/reports.md).

-- Every version of the SLA policy ever saved; the newest row is in force. Versions are kept
-- so that a report can say which policy computed it.
create table sla_policies (
    id         bigint generated always as identity primary key,
    policy     jsonb not null,
    created_by bigint,
    created_at timestamptz not null default now()
);

-- One row per ticket: the facts every report is computed from. Durations are whole seconds
-- (wall-clock `*_seconds`, SLA-clock `*_business_seconds`); the SLA clock's running state
-- (`sla_running_since`, `sla_elapsed_us`) lets the projection continue it event by event.
create table rm_report_tickets (
    id                              bigint primary key,
    title                           text not null,
    status                          text not null,
    priority                        text not null,
    type                            text not null,
    requester_id                    bigint not null,
    assignee_id                     bigint,
    deleted                         boolean not null default false,
    created_at                      timestamptz not null,
    updated_at                      timestamptz not null,
    first_response_at               timestamptz,
    resolved_at                     timestamptz,
    closed_at                       timestamptz,
    first_response_seconds          bigint,
    resolution_seconds              bigint,
    paused_us                       bigint not null default 0,
    paused_seconds                  bigint not null default 0,
    pending_since                   timestamptz,
    sla_running_since               timestamptz,
    sla_elapsed_us                  bigint not null default 0,
    first_response_business_seconds bigint,
    resolution_business_seconds     bigint,
    first_response_due_at           timestamptz,
    resolution_due_at               timestamptz,
    sla_due_at                      timestamptz,
    first_response_breached_at      timestamptz,
    resolution_breached_at          timestamptz,
    reopened                        integer not null default 0,
    policy_version                  bigint not null default 0
);
-- Export and analytics by creation time.
create index rm_report_tickets_created on rm_report_tickets (created_at, id) where not deleted;
-- Percentiles of the last days, answered by index-only scans.
create index rm_report_tickets_first_response on rm_report_tickets (first_response_at) include (first_response_seconds)
    where not deleted and first_response_at is not null;
create index rm_report_tickets_resolved on rm_report_tickets (resolved_at) include (resolution_seconds)
    where not deleted and resolved_at is not null;
-- Running SLA clocks: "not yet due" and "due soon" are small ranges of these.
create index rm_report_tickets_fr_due on rm_report_tickets (first_response_due_at) where first_response_due_at is not null;
create index rm_report_tickets_res_due on rm_report_tickets (resolution_due_at) where resolution_due_at is not null;
create index rm_report_tickets_sla_due on rm_report_tickets (sla_due_at) where sla_due_at is not null;
-- Open backlog by exact age at the bucket boundaries.
create index rm_report_tickets_open_created on rm_report_tickets (created_at)
    where not deleted and status in ('open', 'in_progress', 'pending');

-- Live (not deleted) tickets by status, priority, type and assignee (0 = unassigned), with the
-- SLA state of the open ones (status open, in_progress or pending): running clocks (`*_due`)
-- and clocks already past their target (`*_breached`).
create table rm_report_counts (
    status       text not null,
    priority     text not null,
    type         text not null,
    assignee_key bigint not null,
    n            bigint not null default 0,
    fr_due       bigint not null default 0,
    fr_breached  bigint not null default 0,
    res_due      bigint not null default 0,
    res_breached bigint not null default 0,
    sla_due      bigint not null default 0,
    sla_breached bigint not null default 0,
    primary key (status, priority, type, assignee_key)
);

-- Live tickets by UTC day: created, resolved (current resolution), first responses, and the
-- targets missed by those responses and resolutions.
create table rm_report_daily (
    day             date primary key,
    created         bigint not null default 0,
    resolved        bigint not null default 0,
    first_responses bigint not null default 0,
    fr_missed       bigint not null default 0,
    res_missed      bigint not null default 0
);

-- The open backlog by UTC day of creation.
create table rm_report_backlog (
    day date primary key,
    n   bigint not null default 0
);

-- Approvals by status, with when they were requested and decided.
create table rm_report_approvals (
    id           uuid primary key,
    ticket_id    bigint not null,
    status       text not null,
    requested_at timestamptz not null,
    decided_at   timestamptz
);
create index rm_report_approvals_pending on rm_report_approvals (requested_at) where status = 'pending';

-- Which SLA policy versions computed the rows: oldest < the current version means the past
-- was computed with an older policy and `ticketd projections rebuild reports` would change it.
create table rm_report_meta (
    id                    smallint primary key,
    oldest_policy_version bigint not null,
    newest_policy_version bigint not null
);

-- Approvals: the read model of the `approvals` projection, the approvers' inbox, the
-- approval policy for new change requests, and the index the approval process manager
-- uses to find a ticket's latest approval in the log.

-- One row per approval, written only by the `approvals` projection. `state` is the
-- Approval aggregate as folded from its events (rendered by the API); the other columns
-- are there to filter and sort.
create table rm_approvals (
    id                  uuid primary key,
    ticket_id           bigint not null,
    ticket_requester_id bigint not null,
    requested_by        bigint not null,
    status              text   not null,
    current_step        integer not null,
    -- Everyone who may see the approval besides staff: its requester, the ticket's
    -- requester, and every approver of every step (delegators included).
    participant_ids     bigint[] not null default '{}',
    state               jsonb  not null,
    version             bigint not null,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    finished_at         timestamptz
);
create index rm_approvals_created on rm_approvals (created_at desc, id desc);
create index rm_approvals_ticket on rm_approvals (ticket_id, created_at desc);
create index rm_approvals_status on rm_approvals (status, created_at desc);
create index rm_approvals_participants on rm_approvals using gin (participant_ids);

-- The approver's inbox: one row per user and pending approval whose current step waits
-- on that user's decision (a delegate holds the row of the approver who delegated).
-- `mine=true` is one index range scan on the primary key / `rm_approval_inbox_user`.
create table rm_approval_inbox (
    user_id        bigint not null,
    approval_id    uuid   not null,
    ticket_id      bigint not null,
    step           integer not null,
    step_name      text   not null,
    delegated_from bigint,
    -- When the step started waiting on this user (step start, or the delegation).
    since          timestamptz not null,
    primary key (user_id, approval_id)
);
create index rm_approval_inbox_user on rm_approval_inbox (user_id, since desc, approval_id);
create index rm_approval_inbox_approval on rm_approval_inbox (approval_id);

-- Which approval a ticket of a given type gets automatically when it is opened.
-- Configuration, not event-sourced (like users). `steps` is a JSON array of
-- `{name, rule, min_approvals?, approvers: [{user_id} | {role}]}`.
create table approval_policies (
    ticket_type text primary key check (ticket_type in ('change_request')),
    steps       jsonb  not null,
    updated_by  bigint references users (id),
    updated_at  timestamptz not null default now()
);

-- The process manager asks "which approval of this ticket was requested last?".
create index events_approval_requested_ticket on events (
    ((payload -> 'ApprovalRequested' ->> 'ticket_id')::bigint), transaction_id, global_position
) where aggregate_type = 'approval' and event_type = 'ApprovalRequested';

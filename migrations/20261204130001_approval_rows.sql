-- `rm_approvals` keeps the approval as the read model's own columns instead of the
-- Approval aggregate's serialised state: `steps` as responses show them, `reason` and
-- `waiting_on`. The projection folds an approval from its events in the log.
-- The rows are replayed: both tables are emptied and the `approvals` checkpoint goes back
-- to the start of the log, so the projection rebuilds them when the server next runs.
truncate rm_approvals, rm_approval_inbox;
alter table rm_approvals drop column state;
alter table rm_approvals add column reason text;
alter table rm_approvals add column steps jsonb not null default '[]';
alter table rm_approvals add column waiting_on bigint[] not null default '{}';
update projection_checkpoints
   set last_txid = '0', last_position = 0, status = 'running', error = null, updated_at = now()
 where projection = 'approvals';

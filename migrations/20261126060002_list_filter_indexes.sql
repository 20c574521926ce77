-- Newest-first pages of the common list filters, read in index order: one priority, and a
-- status with a priority (a desk's "my critical work in progress" view). Without them a filter
-- on values absent from the newest tickets walks past all of those first.
create index rm_tickets_priority_created on rm_tickets (priority, created_at desc, id desc) where not deleted;
create index rm_tickets_status_priority on rm_tickets (status, priority, created_at desc, id desc) where not deleted;

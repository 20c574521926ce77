-- Comments and attachments (issue 4).

-- The `tickets` projection keeps each public comment's text, in thread order, so that an
-- edit or a delete changes exactly that comment's part of the search document.
-- (Existing rows start empty; `ticketd projections rebuild tickets` fills them exactly.)
alter table rm_tickets add column public_comment_texts jsonb not null default '[]';

-- The comments read model, written only by the `comments` projection.
create table rm_comments (
    id           uuid primary key,
    ticket_id    bigint not null,
    author_id    bigint not null,
    content      text not null,
    is_internal  boolean not null,
    parent_id    uuid,
    mentions     bigint[] not null default '{}',
    edit_count   integer not null default 0,
    deleted      boolean not null default false,
    deleted_by   bigint,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    -- The ticket's event sequence that last changed this row.
    version      bigint not null
);
create index rm_comments_ticket on rm_comments (ticket_id, created_at, id) where not deleted;

-- The attachments read model and the live-reference count of each blob, written only by
-- the `attachments` projection.
create table rm_attachments (
    id           uuid primary key,
    ticket_id    bigint not null,
    filename     text not null,
    content_type text not null,
    size         bigint not null,
    sha256       text not null,
    uploaded_by  bigint not null,
    created_at   timestamptz not null,
    removed      boolean not null default false,
    removed_by   bigint,
    removed_at   timestamptz
);
create index rm_attachments_ticket on rm_attachments (ticket_id, created_at, id) where not removed;

create table rm_attachment_refs (
    sha256 text primary key,
    refs   integer not null
);

-- Storage bookkeeping (not read models; written by the upload and collection code).
-- Every blob put in the object store, and when it was collected.
create table attachment_blobs (
    sha256       text primary key,
    size         bigint not null,
    stored_at    timestamptz not null default now(),
    collected_at timestamptz
);
-- A pin per upload in flight: it keeps the blob alive from the moment it is placed until
-- the `attachments` projection counts the upload's reference (or the command fails).
create table attachment_pins (
    attachment_id uuid primary key,
    sha256        text not null,
    created_at    timestamptz not null default now()
);
create index attachment_pins_sha on attachment_pins (sha256);

-- Each live ticket's search document, apart from its list row. A row changes only when the
-- ticket's words do (title, description, public comments), not on every status change or
-- assignment, so the table stays compact and in the order tickets were opened: the
-- newest-first walk that search-as-you-type does over common words touches few pages.
-- Written only by the `tickets` projection; deleted tickets have no row. Pages are packed full
-- (no fillfactor): a reserve would leave each page a little room, and new tickets would be
-- scattered one per old page instead of landing together at the end.
create table rm_ticket_search (
    ticket_id bigint primary key,
    opened_at timestamptz not null,
    document  tsvector not null
);

insert into rm_ticket_search (ticket_id, opened_at, document)
select id, created_at, search from rm_tickets where not deleted order by id;

create index rm_ticket_search_opened on rm_ticket_search (opened_at desc, ticket_id desc);
create index rm_ticket_search_document on rm_ticket_search using gin (document);

drop index rm_tickets_search;
alter table rm_tickets drop column search;

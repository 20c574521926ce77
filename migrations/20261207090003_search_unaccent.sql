-- Search that works for German text too (issue 17): accents and umlauts are folded
-- (unaccent: "Überweisung" is found by "uberweisung" and "überweisung"), on top of the English
-- stemmer; a word is found in any inflection the prefix of the last query word covers. One
-- configuration for every document keeps the planner's estimates (the search's totals) sound,
-- which a document holding both English and German stems would not (prefix matches counted
-- twice). Documents indexed before this are rewritten by `ticketd projections rebuild tickets`;
-- until then English words still find them.
create extension if not exists unaccent;

create text search configuration ticketd_text (copy = pg_catalog.english);
alter text search configuration ticketd_text
    alter mapping for hword, hword_part, word with unaccent, english_stem;

create function ticketd_tsvector(body text) returns tsvector
    language sql immutable parallel safe
    as $$ select to_tsvector('ticketd_text'::regconfig, body) $$;

create function ticketd_tsquery(words text) returns tsquery
    language sql immutable parallel safe
    as $$ select to_tsquery('ticketd_text'::regconfig, words) $$;

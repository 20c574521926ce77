-- The vocabulary of ticket titles, for typo-tolerant search: a query word that matches
-- nothing is replaced by the most similar known words (trigram similarity), as the
-- PostgreSQL documentation suggests for spelling correction. Written by the `tickets` projection.
create table rm_search_words (
    word text primary key
);
create index rm_search_words_trgm on rm_search_words using gin (word gin_trgm_ops);

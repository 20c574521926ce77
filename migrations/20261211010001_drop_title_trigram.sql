-- The trigram index on ticket titles served one kind of search only: text without a single
-- letter or digit ("!!!"), compared by `<%` with the titles. `pg_trgm` makes trigrams of
-- letters and digits only, so that text has none and could never match: the index matched
-- nothing, yet every ticket write kept it up to date, and a rebuild spent its longest single
-- step (about 11 s of one core at a million tickets) building it again. Misspelled words are
-- corrected through the title vocabulary's own trigram index (`rm_search_words_trgm`), which
-- stays. Such a search now answers an empty page without reading a row.
drop index if exists rm_tickets_title_trgm;

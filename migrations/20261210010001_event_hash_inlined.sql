-- The hash chain's input function is `stable`, not `immutable`: its body calls `extract(epoch
-- from timestamptz)` and `convert_to`, which are stable, and PostgreSQL inlines an SQL function
-- into its caller only when the body is no more volatile than the declaration. Declared
-- immutable, it was not inlined: the `events_chain` trigger called it through the SQL-function
-- executor, which parsed and planned its body again in every transaction (a fifth of
-- PostgreSQL's CPU under ticket creation). Inlined, the trigger's expression is planned once
-- per session. The digest is the same expression, so every stored hash still verifies.
alter function event_hash_input(text, text, bigint, text, text, jsonb, jsonb, timestamptz) stable;

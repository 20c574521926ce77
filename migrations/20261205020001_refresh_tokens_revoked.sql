-- Every process reloads the sessions revoked in the last minutes (the safety net behind the
-- bus): a partial index keeps that a small range scan however many tokens there are.
create index refresh_tokens_revoked on refresh_tokens (revoked_at) where revoked_at is not null;

-- A token minted with another token is its child: revoking a token revokes every token minted
-- through it, down the line, so that no copy a script made outlives the access it came from.
-- Tokens minted through a login session or on the command line have no parent (a session's
-- children end with the session's absolute end instead; see svc_users_token_lifetime).
ALTER TABLE api_tokens
    ADD COLUMN parent_id uuid REFERENCES api_tokens (id) ON DELETE CASCADE;
CREATE INDEX api_tokens_parent_idx ON api_tokens (parent_id) WHERE parent_id IS NOT NULL;

-- Login tokens (spec v1.7 "POST /login/get_token", MSC3882): a logged-in
-- client mints a short-lived token; another client logs in once with it
-- (m.login.token at POST /login). Same SQL for SQLite and PostgreSQL.
--
-- Account locking and suspension (spec v1.12/v1.13, the admin endpoints of
-- v1.18) need no new columns: users.locked and users.suspended exist since
-- 001_core.sql.

CREATE TABLE login_tokens (
    token TEXT PRIMARY KEY,            -- the secret the new client presents
    user_id TEXT NOT NULL,             -- who it logs in
    expiry_ts BIGINT NOT NULL          -- not accepted from this time on
);
-- Expired tokens are deleted by expiry time whenever a new token is minted.
CREATE INDEX login_tokens_expiry ON login_tokens (expiry_ts);

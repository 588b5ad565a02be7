-- Users (custody.User as JSON, password hash included) and their API
-- tokens, stored hashed, with when each was issued and last used (Unix
-- nanoseconds; NULL: not known, or never).
CREATE TABLE users (
    id   text  PRIMARY KEY,
    body bytea NOT NULL
);

CREATE TABLE user_tokens (
    hash    bytea       PRIMARY KEY,
    user_id text        NOT NULL REFERENCES users (id),
    created   bigint,
    last_used bigint
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);

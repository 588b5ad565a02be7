-- Users (custody.User as JSON, password hash included) and their API
-- tokens, stored hashed.
CREATE TABLE users (
    id   text  PRIMARY KEY,
    body bytea NOT NULL
);

CREATE TABLE user_tokens (
    hash    bytea       PRIMARY KEY,
    user_id text        NOT NULL REFERENCES users (id),
    created timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);

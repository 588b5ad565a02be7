-- What the instances sharing the database keep together outside the
-- ledger: web sessions and the sign-in throttle's counts (SharedState).
-- Expired rows are deleted by later updates.
CREATE TABLE shared_state (
    key     text PRIMARY KEY,
    subject text NOT NULL,
    value   bytea NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX shared_state_subject ON shared_state (subject, key) WHERE subject <> '';
CREATE INDEX shared_state_expires ON shared_state (expires);

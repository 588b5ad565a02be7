-- The log's checkpoint verifier key: recorded when the first checkpoint is
-- signed after this version, so that every instance signs the one log with
-- the one key. An instance whose key differs refuses to sign (log_key.go).
CREATE TABLE log_key (
    id       smallint PRIMARY KEY CHECK (id = 1),
    origin   text        NOT NULL,
    verifier text        NOT NULL,
    recorded timestamptz NOT NULL DEFAULT now()
);

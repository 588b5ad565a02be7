-- The one administrative audit trail and the registries whose changes it
-- records.

-- audit_head's single row holds the trail's last sequence number: a change
-- locks it (FOR UPDATE) to seal its entry as the next one, linked to the
-- last, so instances keep one trail.
CREATE TABLE audit_head (
    id  boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint  NOT NULL
);
INSERT INTO audit_head (seq) VALUES (0);

-- audit holds each sealed custody.AuditEntry as JSON, with the fields the
-- trail is filtered by.
CREATE TABLE audit (
    seq   bigint PRIMARY KEY,
    kind  text   NOT NULL,
    code  text   NOT NULL,
    actor text   NOT NULL,
    time  bigint NOT NULL, -- Unix nanoseconds
    body  bytea  NOT NULL
);
CREATE INDEX audit_kind_code ON audit (kind, code, seq);
CREATE INDEX audit_actor ON audit (actor, seq);

-- registry_entries holds every registry's entries, as custody encodes
-- them, by registry and code; codes sort byte by byte (collation "C"), so
-- a registry lists in code order through the primary key.
CREATE TABLE registry_entries (
    kind  text  NOT NULL,
    code  text  COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (kind, code)
);

-- Telemetry readings, each stored once under its identity
-- (custody.Reading.Key), and the quarantine of refused payloads.

-- readings_meta's single row holds the ingest watermark: the number of
-- committed batches that stored at least one reading. Ingest locks it
-- (FOR UPDATE), so every instance sees the readings stored before it.
CREATE TABLE readings_meta (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    watermark bigint  NOT NULL
);
INSERT INTO readings_meta (watermark) VALUES (0);

-- readings: body is the reading as custody encodes it in JSON (receive
-- time included); content its canonical form, which a redelivery must
-- match byte for byte to be a duplicate.
CREATE TABLE readings (
    key         bytea  PRIMARY KEY,
    shipper     text   NOT NULL,
    device_time bigint NOT NULL, -- Unix nanoseconds
    watermark   bigint NOT NULL,
    content     bytea  NOT NULL,
    body        bytea  NOT NULL
);
CREATE INDEX readings_shipper_time ON readings (shipper, device_time);

CREATE TABLE quarantine (
    id       bigserial PRIMARY KEY,
    topic    text      NOT NULL,
    received text      NOT NULL, -- RFC 3339 with nanoseconds
    reason   text      NOT NULL,
    size     integer   NOT NULL,
    payload  bytea     NOT NULL
);

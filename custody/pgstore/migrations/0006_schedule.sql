-- Scheduling, quotas and the waiting list: the sites' capacity, the claims
-- appends take and the holds of open waiting-list offers, counted per
-- site, day and product; the quotas, the bookings counted against them per
-- month and the waiting list. Codes, days and COIs sort byte by byte
-- (collation "C"), as the reads list them.

-- schedule_lock's single row serializes what reads and changes the counts:
-- an append with claims or a quota use locks it after the log head, and a
-- change of a capacity, a quota or an offer's hold locks it too, so every
-- check sees the counts the others committed.
CREATE TABLE schedule_lock (
    id boolean PRIMARY KEY DEFAULT true CHECK (id)
);
INSERT INTO schedule_lock DEFAULT VALUES;

-- capacity holds each site's capacity, as custody encodes it.
CREATE TABLE capacity (
    site  text  COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- slot_used counts the claims and holds of each site, day and product
-- (empty: apheresis chairs); a count of zero is no row.
CREATE TABLE slot_used (
    site    text    COLLATE "C" NOT NULL,
    day     text    COLLATE "C" NOT NULL,
    product text    COLLATE "C" NOT NULL,
    used    integer NOT NULL,
    PRIMARY KEY (site, day, product)
);

-- slot_claims holds each claim a chain holds, with the record that took it.
CREATE TABLE slot_claims (
    site    text   COLLATE "C" NOT NULL,
    day     text   COLLATE "C" NOT NULL,
    product text   COLLATE "C" NOT NULL,
    coi     text   COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (site, day, product, coi)
);
CREATE INDEX slot_claims_coi ON slot_claims (coi);

-- slot_holds holds the slot each chain's open offer holds.
CREATE TABLE slot_holds (
    coi     text COLLATE "C" PRIMARY KEY,
    site    text COLLATE "C" NOT NULL,
    day     text COLLATE "C" NOT NULL,
    product text COLLATE "C" NOT NULL
);

-- quotas holds each quota, as custody encodes it, by key.
CREATE TABLE quotas (
    key   text  COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- quota_used counts the bookings against each quota key per month
-- (YYYY-MM); a count of zero is no row.
CREATE TABLE quota_used (
    period text    COLLATE "C" NOT NULL,
    key    text    COLLATE "C" NOT NULL,
    used   integer NOT NULL,
    PRIMARY KEY (period, key)
);

-- quota_chain holds the quota use each chain's booking counts against.
CREATE TABLE quota_chain (
    coi    text COLLATE "C" PRIMARY KEY,
    period text COLLATE "C" NOT NULL,
    key    text COLLATE "C" NOT NULL
);

-- waitlist holds each chain's waiting-list entry, as custody encodes it.
CREATE TABLE waitlist (
    coi   text  COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

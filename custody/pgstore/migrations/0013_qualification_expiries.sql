-- qualification_expiries is the index of registry expiry dates
-- (custody.QualificationExpiryIndex): one row per date an unsuspended
-- site's accreditation or qualification, or an unsuspended shipper's
-- requalification, runs out on, with the site's time zone ('' for a
-- shipper). CreateEntry and UpdateEntry keep it in the registry write's
-- transaction; the rows of the entries written before it was kept are
-- made when the store is opened (the entries are JSON custody decodes),
-- and its name in index_builds says they were.
CREATE TABLE qualification_expiries (
    date      text COLLATE "C" NOT NULL,
    kind      text COLLATE "C" NOT NULL,
    code      text COLLATE "C" NOT NULL,
    what      text COLLATE "C" NOT NULL,
    time_zone text NOT NULL,
    PRIMARY KEY (date, kind, code, what)
);
CREATE INDEX qualification_expiries_entry ON qualification_expiries (kind, code);

-- The chains by site names and state (custody.ChainSiteIndex), so that a
-- user bound to some sites counts and pages their chains at a cost that
-- follows them, not the store. Site names are bytea: a name may hold any
-- byte, NUL too, which text cannot.
--
-- chain_sites holds each chain's site names and state: appends write a
-- chain's row when they enroll it or change its state, in the
-- transaction that writes its records. It is a table of its own, not
-- columns of chains, because every append rewrites the summary rows of
-- the chains it extends: one more index on chains costs each rewrite that
-- is not a heap-only update, and with it the append's throughput.
-- The chains written before this version get their rows when the store is
-- opened, a chunk per transaction (the summaries are JSON custody
-- decodes); then the counts are made from the rows and the index's name
-- in index_builds says they were.
CREATE TABLE chain_sites (
    coi           text  PRIMARY KEY,
    collection    bytea NOT NULL,
    manufacturing bytea NOT NULL,
    treatment     bytea NOT NULL,
    state         text  NOT NULL
);
-- A page of one pair's chains is a range of this index, in COI order
-- (bytewise, as custody orders COIs).
CREATE INDEX chain_sites_page ON chain_sites (collection, manufacturing, treatment, state, coi COLLATE "C");

-- chain_site_counts holds, for each pair of site names and state that
-- some chain has, how many chains have it (a row that reaches 0 is
-- deleted). The append's transaction changes the counts of the pairs its
-- chains leave and enter, in one statement, each row found by key: the
-- state and the three names, each after its length (4 bytes, big-endian),
-- so that no two pairs share a key.
CREATE TABLE chain_site_counts (
    key           bytea  PRIMARY KEY,
    state         text   NOT NULL,
    collection    bytea  NOT NULL,
    manufacturing bytea  NOT NULL,
    treatment     bytea  NOT NULL,
    n             bigint NOT NULL
);
CREATE INDEX chain_site_counts_state ON chain_site_counts (state);

-- The chains by site names and state (custody.ChainSiteIndex): each
-- chain's three site names beside its state, and how many chains each
-- pair of site names and state has, so that a user bound to some sites
-- counts and pages their chains at a cost that follows them, not the
-- store. Site names are bytea: a name may hold any byte, NUL too, which
-- text cannot.
--
-- The columns are NULL until the chain's summary is decoded: appends set
-- them when they enroll a chain (a chain's sites never change after), and
-- the chains written before this version get them when the store is
-- opened, a chunk per transaction; then the counts are made from the
-- columns and the index's name in index_builds says they were.
ALTER TABLE chains ADD COLUMN collection bytea, ADD COLUMN manufacturing bytea, ADD COLUMN treatment bytea;

-- A page of one pair's chains is a range of this index, in COI order
-- (bytewise, as custody orders COIs); the build finds the chains still
-- without their sites through it too (collection IS NULL).
CREATE INDEX chains_sites ON chains (collection, manufacturing, treatment, state, coi COLLATE "C");

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

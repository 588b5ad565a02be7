-- The verifiable log: the Merkle tree's stored hashes over the records,
-- written in the transaction that writes the records, the signed
-- checkpoints and the witnesses' cosignatures of them.

-- The log head also says how many records the tree holds (tree_size; the
-- log's head once the tree is built, see Open) and keeps the hashes of
-- the complete subtrees to the tree's left edge (frontier: 32 bytes each,
-- largest subtree first), which are all an append needs to add its
-- records' hashes without reading the tree.
ALTER TABLE log_head
    ADD COLUMN tree_size bigint NOT NULL DEFAULT 0,
    ADD COLUMN frontier  bytea  NOT NULL DEFAULT ''::bytea;

-- tree_hashes holds each stored hash by its index (the tlog stored-hash
-- numbering: a record's leaf hash, then the interior nodes it completes).
CREATE TABLE tree_hashes (
    idx  bigint PRIMARY KEY,
    hash bytea  NOT NULL
);

-- checkpoints holds the signed checkpoints, in the order they were kept.
CREATE TABLE checkpoints (
    id     bigserial PRIMARY KEY,
    size   bigint    NOT NULL,
    signed bytea     NOT NULL
);

-- cosignatures holds each witness's cosignature of a checkpoint size: when
-- the witness says it cosigned (Unix seconds) and its signature line.
CREATE TABLE cosignatures (
    size    bigint NOT NULL,
    witness text   COLLATE "C" NOT NULL,
    time    bigint NOT NULL,
    line    text   NOT NULL,
    PRIMARY KEY (size, witness)
);

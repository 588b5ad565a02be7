-- The ledger: one global log with its head, the chain summaries beside it,
-- the patient identifiers kept outside it and the COI sequence numbers.

-- log_head is the log's single head row: appends lock it (FOR UPDATE)
-- inside their transaction, so every instance appends in one global order
-- to one hash chain.
CREATE TABLE log_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO log_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

-- records holds each record's canonical bytes and stored hash at its log
-- position; (chain, chain_seq) is unique, so a chain never forks.
CREATE TABLE records (
    seq       bigint PRIMARY KEY,
    chain     text   NOT NULL,
    chain_seq bigint NOT NULL,
    hash      bytea  NOT NULL,
    body      bytea  NOT NULL,
    UNIQUE (chain, chain_seq)
);

-- chains holds each chain's summary (custody.ChainInfo as JSON); state is
-- kept apart so chains can be listed by state through an index.
CREATE TABLE chains (
    coi   text  PRIMARY KEY,
    state text  NOT NULL,
    info  bytea NOT NULL
);
CREATE INDEX chains_state ON chains (state, coi);

-- phi holds the patient identifiers written with an enroll record.
CREATE TABLE phi (
    coi  text  PRIMARY KEY,
    body bytea NOT NULL
);

-- coi_sequences holds the last COI sequence number handed out per
-- facility and year.
CREATE TABLE coi_sequences (
    prefix text   PRIMARY KEY,
    last   bigint NOT NULL
);

-- witness_states keeps what coid last saw of each witness it submits
-- checkpoints to (custody.WitnessState as JSON), so that a restart, or
-- another instance, reports it as before.
CREATE TABLE witness_states (
    witness text  COLLATE "C" PRIMARY KEY,
    state   jsonb NOT NULL
);

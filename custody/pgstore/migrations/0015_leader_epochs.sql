-- Fencing of the jobs led on one instance at a time (leader.go): each
-- leadership taken increments its job's epoch, and an append made under a
-- leadership (custody.Draft.Fence) is refused, in its transaction, when
-- the epoch has grown past its own.
CREATE TABLE leader_epochs (
    job   text   PRIMARY KEY,
    epoch bigint NOT NULL
);

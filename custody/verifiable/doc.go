// Package verifiable makes the ledger checkable from outside: an RFC 6962
// Merkle tree over the records' canonical encodings, signed checkpoints in
// the C2SP tlog-checkpoint format (a C2SP signed note, Ed25519), the
// checkpoint signing keys, inclusion and consistency proofs, and the log
// served as C2SP tlog-tiles.
//
// It wraps golang.org/x/mod/sumdb/tlog (hashing, stored hashes, tiles,
// proofs) and golang.org/x/mod/sumdb/note (signed notes): the libraries
// Go's checksum database uses, so that no proof code is written here. The
// leaf of record seq N is leaf index N-1, and its hash is
// tlog.RecordHash of the exact bytes the store keeps (custody's canonical
// encoding), so an inclusion proof proves the record itself.
package verifiable

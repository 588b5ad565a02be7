// Package custody is the domain core of coid: chain-of-identity identifiers
// (ISBT 128 COI, DIN and bag IDs), ledger records and their canonical
// encoding and hashing, the vein-to-vein journey table and the rules that
// enforce it, users and electronic signatures, verification of the hash
// chains, and the Store interface that persistence packages implement.
//
// It imports only the standard library. Storage engines live in
// subpackages (custody/boltstore) and depend on this package, never the
// other way round.
package custody

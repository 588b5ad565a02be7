package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// CheckTreeFrom checks, for coid verify --since, that the stored tree
// hashes of records from to the last are those of the records the log
// holds: each record's leaf hash and the interior nodes it completes,
// recomputed from its bytes and from the hashes before it, as CheckFile
// checks the whole tree. Together with a consistency proof from a
// checkpoint of from records, and the log's links, it ties every record to
// that checkpoint without hashing the tree below it again. It returns a
// *FileDamage naming the first record that does not match.
func (s *Store) CheckTreeFrom(ctx context.Context, from uint64) error {
	return s.viewLong(func(tx *bolt.Tx) error { return checkTree(ctx, tx, from) })
}

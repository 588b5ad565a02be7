package pgstore_test

import (
	"testing"

	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkAppend64 measures durable appends with 64 writers on PostgreSQL
// (synchronous_commit and fsync as the server has them, on by default) and
// on bbolt in the same run, so the two figures compare on one machine
// under one load.
func BenchmarkAppend64(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		storetest.BenchAppend(b, open(b, pgtest.Schema(b)), 64)
	})
	b.Run("bbolt", func(b *testing.B) {
		s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		storetest.BenchAppend(b, s, 64)
	})
}

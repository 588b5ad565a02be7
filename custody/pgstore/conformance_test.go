package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// lacks are the parts of the contract this backend does not implement
// yet: the suite skips their tests by name. It implements them all.
var lacks []storetest.Part

// TestConformance runs the store conformance suite against PostgreSQL, a
// fresh schema per test.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	urls := map[storetest.Store]string{}
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) storetest.Store {
			url := pgtest.Schema(t)
			s := open(t, url)
			mu.Lock()
			urls[s] = url
			mu.Unlock()
			return s
		},
		Crash: func(t *testing.T, s storetest.Store) storetest.Store {
			mu.Lock()
			url := urls[s]
			mu.Unlock()
			return open(t, url)
		},
		Lacks: lacks,
	})
}

// The crash of a coid process on PostgreSQL, as the conformance suite's
// Crash: what a restarted process finds is what the server committed, so
// the "crashed" store is a second store opened on the same database while
// the first one's writers are still appending. Nothing the process held
// in memory is trusted across the restart: the new store reads the head
// and the chains from the database. (The server's own durability, fsync
// and the WAL, is PostgreSQL's.)

// open opens the store at url and closes it when the test ends.
func open(t testing.TB, url string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

package pgstore_test

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// lacks are the parts of the contract this backend does not implement
// yet: the suite skips their tests by name.
var lacks = []storetest.Part{storetest.PartAccounts, storetest.PartAudit, storetest.PartTelemetry,
	storetest.PartRegistry, storetest.PartSchedule, storetest.PartQuota}

// TestConformance runs the store conformance suite against PostgreSQL, a
// fresh schema per test.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{Open: func(t *testing.T) storetest.Store { return open(t, pgtest.Schema(t)) }, Lacks: lacks})
}

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

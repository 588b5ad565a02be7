package boltstore_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/storetest"
)

// TestConformance runs the store conformance suite against bbolt files in
// fresh temporary directories.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) custody.Store {
		s, err := boltstore.Open(t.TempDir(), boltstore.Options{LockTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	})
}

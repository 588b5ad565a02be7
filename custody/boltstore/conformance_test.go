package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/storetest"
)

// TestConformance runs the store conformance suite against bbolt files in
// fresh temporary directories.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{Open: func(t *testing.T) storetest.Store { return openConformance(t, t.TempDir()) },
		Crash: crashCopy})
}

func openConformance(t *testing.T, dir string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, boltstore.Options{LockTimeout: 100 * time.Millisecond})
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

// crashCopy simulates a crash of s: bbolt writes a transaction's meta page
// only after its data pages are durable, so after a crash it opens at the
// last transaction that committed. A copy of the file taken in one read
// transaction while the writers go on (Backup) is that file; the torn
// writes of a real crash are left to cmd/coid's TestCrashRecovery, which
// kills the process.
func crashCopy(t *testing.T, s storetest.Store) storetest.Store {
	t.Helper()
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, boltstore.FileName), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return openConformance(t, dir)
}

// TestCosignatureConformance runs the cosignature store's checks against
// a bbolt file, reopened for the restart.
func TestCosignatureConformance(t *testing.T) {
	dir := t.TempDir()
	open := func() *boltstore.Store {
		s, err := boltstore.Open(dir, boltstore.Options{LockTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var last *boltstore.Store
	t.Cleanup(func() {
		if err := last.Close(); err != nil {
			t.Error(err)
		}
	})
	storetest.RunCosignatures(t, storetest.CosignatureBackend{
		Open: func(t *testing.T) custody.CosignatureStore { last = open(); return last },
		Reopen: func(t *testing.T, s custody.CosignatureStore) custody.CosignatureStore {
			if err := s.(*boltstore.Store).Close(); err != nil {
				t.Fatal(err)
			}
			last = open()
			return last
		},
	})
}

package pgstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is a tree's stored hashes computed apart, in memory.
type memHashes []verifiable.Hash

func (m memHashes) ReadHashes(idx []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d: %w", x, custody.ErrNotFound)
		}
		out[i] = m[x]
	}
	return out, nil
}

// checkTree checks that s's tree holds every record of its log and that
// each stored hash is the one computed apart from the records' bytes.
func checkTree(t *testing.T, s *pgstore.Store) {
	t.Helper()
	ctx := context.Background()
	seq, _, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size, err := s.TreeSize(ctx)
	if err != nil || size != int64(seq) {
		t.Fatalf("TreeSize = %d, %v; want the log's %d records", size, err, seq)
	}
	entries, err := s.ReadEntries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var want memHashes
	for n, e := range entries {
		hs, err := tlog.StoredHashes(int64(n), e, want)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, hs...)
	}
	idx := make([]int64, len(want))
	for i := range idx {
		idx[i] = int64(i)
	}
	got, err := s.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatalf("ReadHashes of all %d stored hashes: %v", len(idx), err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stored hash %d differs from the one computed from the records", i)
		}
	}
	if _, err := s.ReadHashes(ctx, []int64{int64(len(want))}); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("hash past the tree: %v, want ErrNotFound", err)
	}
	// A proof from the stored tree checks against its root.
	if size > 1 {
		root, err := verifiable.TreeHash(size, want)
		if err != nil {
			t.Fatal(err)
		}
		r := readerOf(ctx, s)
		stored, err := verifiable.TreeHash(size, r)
		if err != nil || stored != root {
			t.Fatalf("root from the stored tree %x, %v; want %x", stored, err, root)
		}
		if _, err := verifiable.InclusionProof(size/2, size, r); err != nil {
			t.Fatalf("inclusion proof: %v", err)
		}
	}
}

// storeReader reads a store's stored hashes as a verifiable.HashReader.
type storeReader struct {
	ctx context.Context
	s   *pgstore.Store
}

func (r storeReader) ReadHashes(idx []int64) ([]verifiable.Hash, error) {
	return r.s.ReadHashes(r.ctx, idx)
}

func readerOf(ctx context.Context, s *pgstore.Store) storeReader { return storeReader{ctx, s} }

// appendChains appends, from writers goroutines on the stores in turn,
// chains chains of records records each; it returns how many it
// appended.
func appendChains(t *testing.T, stores []*pgstore.Store, first, chains, records int) int {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, chains)
	for c := range chains {
		s := stores[c%len(stores)]
		wg.Go(func() {
			coi := storetest.COI(first + c)
			for i := range records {
				if _, err := s.Append(ctx, storetest.Draft(coi, i, i == 0, uint64(i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return chains * records
}

// TestTreeWithAppends: the tree's hashes are written by the transactions
// that write the records, also when two instances append to one database
// at once, and are those computed from the records apart.
func TestTreeWithAppends(t *testing.T) {
	url := pgtest.Schema(t)
	a, b := open(t, url), open(t, url)
	checkTree(t, a)
	appendChains(t, []*pgstore.Store{a, b}, 1, 16, 9)
	checkTree(t, a)
	appendChains(t, []*pgstore.Store{b}, 100, 3, 5)
	checkTree(t, b)
}

// TestTreeBuiltAtOpen: a database whose records were written before the
// tree was kept (the tree emptied, as migration 0007 leaves an older
// ledger) has its tree built at open, and appends continue it.
func TestTreeBuiltAtOpen(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendChains(t, []*pgstore.Store{s}, 1, 5, 7)
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM tree_hashes; UPDATE log_head SET tree_size = 0, frontier = ''::bytea`); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	checkTree(t, again)
	appendChains(t, []*pgstore.Store{again}, 50, 2, 3)
	checkTree(t, again)
}

// TestCheckpointsKept: signed checkpoints are kept in order, the latest
// returned, none at first.
func TestCheckpointsKept(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Schema(t))
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("LatestCheckpoint of a new store: %v, want ErrNotFound", err)
	}
	for i, c := range []string{"first", "second"} {
		if err := s.AddCheckpoint(ctx, int64(i+1), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.LatestCheckpoint(ctx); err != nil || string(got) != "second" {
		t.Fatalf("LatestCheckpoint = %q, %v", got, err)
	}
	var sizes []int64
	if err := s.Checkpoints(ctx, func(size int64, _ []byte) error { sizes = append(sizes, size); return nil }); err != nil || len(sizes) != 2 || sizes[0] != 1 {
		t.Fatalf("Checkpoints = %v, %v", sizes, err)
	}
}

// TestCosignatureConformance runs the cosignature store's checks on
// PostgreSQL, reopened for the restart.
func TestCosignatureConformance(t *testing.T) {
	url := pgtest.Schema(t)
	storetest.RunCosignatures(t, storetest.CosignatureBackend{
		Open: func(t *testing.T) custody.CosignatureStore { return open(t, url) },
		Reopen: func(t *testing.T, s custody.CosignatureStore) custody.CosignatureStore {
			if err := s.(*pgstore.Store).Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, url)
		},
	})
}

// TestSignedCheckpointOnPostgres: the verifiable log signs a checkpoint of
// the tree kept in PostgreSQL and keeps it there.
func TestSignedCheckpointOnPostgres(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Schema(t))
	n := appendChains(t, []*pgstore.Store{s}, 1, 4, 3)
	keys, err := verifiable.CreateKeys(t.TempDir(), "coid.test/log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := verifiable.NewLog(s, keys, nil, nil)
	signed, c, err := l.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != int64(n) {
		t.Fatalf("checkpoint of %d records, want %d", c.Size, n)
	}
	if got, err := s.LatestCheckpoint(ctx); err != nil || string(got) != string(signed) {
		t.Fatalf("LatestCheckpoint = %q, %v; want the one signed", got, err)
	}
}

// TestCheckFindsTampering: Check passes a store as written and names a
// changed tree hash, a tree that lost a hash and a count that does not
// add up; a hash below keptLevel, as an earlier version wrote them, passes
// when it is the tree's and fails when it is not.
func TestCheckFindsTampering(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	appendChains(t, []*pgstore.Store{s}, 1, 10, 4) // 40 records: the nodes of records 1-16, 17-32 and 1-32 kept
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check of a store as written: %v", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	kept := verifiable.StoredHashIndex(4, 1) // records 17-32
	leaf := verifiable.StoredHashIndex(0, 2) // record 3
	if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO tree_hashes SELECT %d, sha256('\x00'::bytea || body) FROM records WHERE seq = 3`, leaf)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check with a leaf hash an earlier version wrote: %v", err)
	}
	tests := []struct{ name, tamper, undo string }{
		{"changed hash", fmt.Sprintf(`UPDATE tree_hashes SET hash = sha256(hash) WHERE idx = %d`, kept), fmt.Sprintf(`UPDATE tree_hashes SET hash = (SELECT hash FROM saved) WHERE idx = %d`, kept)},
		{"lost hash", fmt.Sprintf(`DELETE FROM tree_hashes WHERE idx = %d`, kept), fmt.Sprintf(`INSERT INTO tree_hashes SELECT %d, hash FROM saved`, kept)},
		{"changed leaf hash of an earlier version", fmt.Sprintf(`UPDATE tree_hashes SET hash = sha256(hash) WHERE idx = %d`, leaf), fmt.Sprintf(`UPDATE tree_hashes SET hash = sha256('\x00'::bytea || (SELECT body FROM records WHERE seq = 3)) WHERE idx = %d`, leaf)},
		{"count", `INSERT INTO slot_used VALUES ('S1', '2026-12-01', '', 1)`, `DELETE FROM slot_used`},
		{"quota count", `INSERT INTO quota_used VALUES ('2026-12', 'P/C', 2)`, `DELETE FROM quota_used`},
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE saved AS SELECT hash FROM tree_hashes WHERE idx = %d`, kept)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if _, err := conn.Exec(ctx, tt.tamper); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) {
			t.Errorf("%s: Check = %v, want ErrChainBroken", tt.name, err)
		}
		if _, err := conn.Exec(ctx, tt.undo); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("%s undone: Check = %v", tt.name, err)
		}
	}
}

// TestLatestWitnessed runs the witnessed checkpoint lookup's checks on
// PostgreSQL.
func TestLatestWitnessed(t *testing.T) {
	url := pgtest.Schema(t)
	storetest.RunLatestWitnessed(t, func(t *testing.T) storetest.WitnessedStore { return open(t, url) })
}

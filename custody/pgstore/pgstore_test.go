package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/jackc/pgx/v5"
)

// TestSchemaNewerRefused: a database migrated by a newer binary is refused
// with *SchemaNewerError, and opening it changes nothing; a database at
// this binary's version opens again without migrating.
func TestSchemaNewerRefused(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 1, true, 0)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again := open(t, url) // same version: opens, keeps the record
	if seq, _, err := again.Head(ctx); err != nil || seq != 1 {
		t.Fatalf("reopened head %d, %v; want 1", seq, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	newer := pgstore.SchemaVersion() + 1
	if _, err := conn.Exec(ctx, `INSERT INTO coid_schema (version, name) VALUES ($1, 'from a newer coid')`, newer); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(ctx, url, pgstore.Options{})
	var sn *pgstore.SchemaNewerError
	if !errors.As(err, &sn) || sn.Database != newer || sn.Binary != pgstore.SchemaVersion() {
		t.Fatalf("open of a newer schema: %v, want *SchemaNewerError{%d, %d}", err, newer, pgstore.SchemaVersion())
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM coid_schema`).Scan(&n); err != nil || n != newer {
		t.Fatalf("schema rows after the refusal: %d, %v; want %d", n, err, newer)
	}
}

// TestOpenBadURL: a malformed connection string is refused as invalid
// input before anything is reached.
func TestOpenBadURL(t *testing.T) {
	if _, err := pgstore.Open(context.Background(), "postgres://%zz", pgstore.Options{}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("bad URL: %v, want ErrInvalid", err)
	}
}

// TestTwoInstancesOneLedger: two stores on one database (two coid
// instances) appending to the same chains at once keep one global order
// and one hash chain; racing drafts against one head still see exactly one
// win.
func TestTwoInstancesOneLedger(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	a, b := open(t, url), open(t, url)
	const chains, each = 8, 10
	for c := 1; c <= chains; c++ {
		if _, err := a.Append(ctx, storetest.Draft(storetest.COI(c), c*1000, true, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Each chain is appended to by one writer that alternates instances,
	// drafting against the count it saw.
	var wg sync.WaitGroup
	for c := 1; c <= chains; c++ {
		wg.Go(func() {
			for k := 1; k <= each; k++ {
				s := a
				if k%2 == 0 {
					s = b
				}
				if _, err := s.Append(ctx, storetest.Draft(storetest.COI(c), c*1000+k, false, uint64(k))); err != nil {
					t.Errorf("chain %d append %d: %v", c, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Racing drafts from both instances against one chain head.
	var mu sync.Mutex
	wins, retries := 0, 0
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 90000+i, false, each+1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, custody.ErrRetry):
				retries++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || retries != 7 {
		t.Fatalf("%d won, %d told to retry; want 1 and 7", wins, retries)
	}
	for _, s := range []*pgstore.Store{a, b} {
		rep, err := custody.VerifyLog(ctx, s)
		if err != nil || !rep.OK || rep.Records != chains*(each+1)+1 {
			t.Fatalf("VerifyLog: %+v %v; want %d records", rep, err, chains*(each+1)+1)
		}
	}
}

// TestEnrollOfChainAnotherInstanceMade: an instance that has not seen a
// chain (enrolled by another instance before its last commit) refuses a
// second enroll of it with ErrConflict, writing nothing, and goes on.
func TestEnrollOfChainAnotherInstanceMade(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	a := open(t, url)
	if _, err := a.Append(ctx, storetest.Draft(storetest.COI(1), 1, true, 0)); err != nil {
		t.Fatal(err)
	}
	b := open(t, url)
	if _, err := b.Append(ctx, storetest.Draft(storetest.COI(2), 2, true, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, storetest.Draft(storetest.COI(1), 3, true, 0)); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("second enroll: %v, want ErrConflict", err)
	}
	r, err := b.Append(ctx, storetest.Draft(storetest.COI(1), 4, false, 1))
	if err != nil || r.Seq != 3 || r.ChainSeq != 2 {
		t.Fatalf("append after the refusal: %+v %v; want log position 3, chain position 2", r, err)
	}
	if rep, err := custody.VerifyLog(ctx, a); err != nil || !rep.OK || rep.Records != 3 {
		t.Fatalf("VerifyLog: %+v %v", rep, err)
	}
}

package pgstore_test

import (
	"context"
	"errors"
	neturl "net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/jackc/pgx/v5"
)

// TestImportRefusesBadRecords: an export whose records do not check (a
// record changed after it was hashed, a record missing, a head that is not
// the last record's) is refused whole, leaving the target empty.
func TestImportRefusesBadRecords(t *testing.T) {
	ctx := context.Background()
	src, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var recs []custody.LogEntry
	for i := 1; i <= 3; i++ {
		r, err := src.Append(ctx, storetest.Draft(storetest.COI(1), i, i == 1, uint64(i-1)))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, custody.LogEntry{Key: r.Seq, Hash: r.Hash, Body: r.Seal(nil)})
	}
	ci, err := src.Chain(ctx, storetest.COI(1))
	if err != nil {
		t.Fatal(err)
	}
	export := func(entries []custody.LogEntry, head custody.Hash) *custody.Export {
		return &custody.Export{HeadSeq: 3, HeadHash: head, Chains: []custody.ChainInfo{ci},
			Records: func(fn func(custody.LogEntry) error) error {
				for _, e := range entries {
					if err := fn(e); err != nil {
						return err
					}
				}
				return nil
			}}
	}
	tampered := append([]custody.LogEntry{}, recs...)
	tampered[1].Body = append([]byte{}, recs[1].Body...)
	tampered[1].Body[len(tampered[1].Body)-3] ^= 1
	tests := []struct {
		name string
		e    *custody.Export
	}{
		{"a record changed", export(tampered, recs[2].Hash)},
		{"a record missing", export([]custody.LogEntry{recs[0], recs[2]}, recs[2].Hash)},
		{"the head not the last record's", export(recs, recs[1].Hash)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := dst.Import(ctx, tt.e, 0, nil); !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("import: %v; want ErrChainBroken", err)
			}
			if err := dst.Empty(ctx); err != nil {
				t.Errorf("the refused import wrote: %v", err)
			}
		})
	}
	dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.Import(ctx, export(recs, recs[2].Hash), 0, nil); err != nil {
		t.Fatalf("the sound export: %v", err)
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(ctx, export(recs, recs[2].Hash), 0, nil); !errors.Is(err, pgstore.ErrNotEmpty) {
		t.Fatalf("again: %v; want ErrNotEmpty", err)
	}
}

// loadIndexes lists the definitions of the indexes on the tables Import
// loads without them, in the schema of url.
func loadIndexes(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT replace(indexdef, current_schema() || '.', '') FROM pg_indexes WHERE schemaname = current_schema()
		AND tablename IN ('records', 'tree_hashes') ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestImportIndexes: Import loads the records and the tree's hashes
// without their indexes and builds them after; whether it succeeds or is
// refused half-way through the records, the store has the indexes a
// fresh store has, and reads use them.
func TestImportIndexes(t *testing.T) {
	ctx := context.Background()
	src, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const chains, perChain = 5, 40
	var recs []custody.LogEntry
	var infos []custody.ChainInfo
	for i := range chains * perChain { // the chains interleaved, as appends leave them
		c, k := i%chains, i/chains
		r, err := src.Append(ctx, storetest.Draft(storetest.COI(c+1), i, k == 0, uint64(k)))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, custody.LogEntry{Key: r.Seq, Hash: r.Hash, Body: r.Seal(nil)})
	}
	for c := range chains {
		ci, err := src.Chain(ctx, storetest.COI(c+1))
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, ci)
	}
	export := func(entries []custody.LogEntry) *custody.Export {
		return &custody.Export{HeadSeq: uint64(len(recs)), HeadHash: recs[len(recs)-1].Hash, Chains: infos,
			Records: func(fn func(custody.LogEntry) error) error {
				for _, e := range entries {
					if err := fn(e); err != nil {
						return err
					}
				}
				return nil
			}}
	}
	fresh := pgtest.Schema(t)
	open(t, fresh)
	want := loadIndexes(t, fresh)
	if len(want) != 3 {
		t.Fatalf("a fresh store's indexes on records and tree_hashes: %q; want 3", want)
	}

	url := pgtest.Schema(t)
	dst := open(t, url)
	tampered := append([]custody.LogEntry{}, recs...)
	last := &tampered[len(tampered)-2]
	last.Body = append([]byte{}, last.Body...)
	last.Body[len(last.Body)-3] ^= 1
	if _, err := dst.Import(ctx, export(tampered), 0, nil); !errors.Is(err, custody.ErrChainBroken) {
		t.Fatalf("import of a record changed near the end: %v; want ErrChainBroken", err)
	}
	if err := dst.Empty(ctx); err != nil {
		t.Errorf("the refused import wrote: %v", err)
	}
	if got := loadIndexes(t, url); !slices.Equal(got, want) {
		t.Errorf("after a refused import the indexes are %q; want %q", got, want)
	}

	if _, err := dst.Import(ctx, export(recs), 0, nil); err != nil {
		t.Fatal(err)
	}
	if got := loadIndexes(t, url); !slices.Equal(got, want) {
		t.Errorf("after the import the indexes are %q; want %q", got, want)
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Records(ctx, storetest.COI(3))
	if err != nil || len(got) != perChain {
		t.Fatalf("chain 3 after the import: %d records, %v", len(got), err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The tables are small enough for the planner to prefer reading them
	// whole: forbid that, and each read must find its index.
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ sql, index string }{
		{`SELECT body FROM records WHERE chain = 'X' ORDER BY chain_seq`, "records_chain_chain_seq_key"},
		{`SELECT body FROM records WHERE seq = 7`, "records_pkey"},
		{`SELECT hash FROM tree_hashes WHERE idx = 7`, "tree_hashes_pkey"},
	} {
		var plan string
		if err := conn.QueryRow(ctx, `EXPLAIN (FORMAT TEXT) `+q.sql).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "using "+q.index) {
			t.Errorf("%s: plan %q does not use %s", q.sql, plan, q.index)
		}
	}
	// The indexes hold what they must: a record stored twice is refused.
	if _, err := conn.Exec(ctx, `INSERT INTO records (seq, chain, chain_seq, hash, body) SELECT seq + 1000, chain, chain_seq, hash, body FROM records WHERE seq = 1`); err == nil {
		t.Error("a second record at a chain's position was stored")
	}
}

// TestImportAsNonOwner: a role that may write coid's tables but does not
// own them (it may not drop their indexes) imports all the same, the
// indexes kept up to date as the rows go in.
func TestImportAsNonOwner(t *testing.T) {
	ctx := context.Background()
	src, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var recs []custody.LogEntry
	for i := range 30 {
		r, err := src.Append(ctx, storetest.Draft(storetest.COI(i%3+1), i, i < 3, uint64(i/3)))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, custody.LogEntry{Key: r.Seq, Hash: r.Hash, Body: r.Seal(nil)})
	}
	chains, err := src.Chains(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &custody.Export{HeadSeq: 30, HeadHash: recs[29].Hash, Chains: chains,
		Records: func(fn func(custody.LogEntry) error) error {
			for _, le := range recs {
				if err := fn(le); err != nil {
					return err
				}
			}
			return nil
		}}

	owned := pgtest.Schema(t)
	open(t, owned)
	want := loadIndexes(t, owned)
	conn, err := pgx.Connect(ctx, owned)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	role := schema + "_writer"
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE, CREATE ON SCHEMA ` + schema + ` TO ` + role, // migrate creates its table if missing
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + role,
		`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ` + schema + ` TO ` + role,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, owned)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(ctx)
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	u, err := neturl.Parse(owned)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.User(role)
	dst, err := pgstore.Open(ctx, u.String(), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.Import(ctx, e, 0, nil); err != nil {
		t.Fatalf("import as a role that does not own the tables: %v", err)
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.Records(ctx, storetest.COI(2)); err != nil || len(got) != 10 {
		t.Fatalf("chain 2 after the import: %d records, %v", len(got), err)
	}
	if got := loadIndexes(t, owned); !slices.Equal(got, want) {
		t.Errorf("after the import the indexes are %q; want %q", got, want)
	}
}

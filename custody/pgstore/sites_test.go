package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// siteRoutes are the site names the tests enroll chains with, NUL and
// the empty names too.
var siteRoutes = []custody.Sites{
	{Collection: "Hospital A", Manufacturing: "Plant 1", Treatment: "Hospital A"},
	{Collection: "Hospital B", Manufacturing: "Plant 1", Treatment: "Hospital B"},
	{},
	{Collection: "Hospital A\x00Plant 1", Treatment: "Hospital A"},
}

// sitesLedger enrolls n chains, chain i on route i%len(siteRoutes), and
// collects every third one.
func sitesLedger(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		d := storetest.Draft(storetest.COI(i), i, true, 0)
		d.Sites = siteRoutes[i%len(siteRoutes)]
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i += 3 {
		d := storetest.Draft(storetest.COI(i), n+i, false, 1)
		d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// sameSiteIndex fails the test unless the index of s counts and pages
// what the summaries say.
func sameSiteIndex(t *testing.T, what string, s *Store) {
	t.Helper()
	ctx := context.Background()
	all, err := s.Chains(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[sitePair][]custody.COI{}
	for _, ci := range all {
		p := sitePair{ci.Sites, ci.State}
		want[p] = append(want[p], ci.COI)
	}
	counts, err := s.SiteStateCounts(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got := map[sitePair]int{}
	for _, c := range counts {
		got[sitePair{c.Sites, c.State}] = c.N
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d pairs counted, %d have chains: %v", what, len(got), len(want), got)
	}
	for p, cois := range want {
		if got[p] != len(cois) {
			t.Fatalf("%s: %d chains counted for %+v, %d there", what, got[p], p, len(cois))
		}
		page, err := s.ChainsOfSitesAfter(ctx, p.sites, p.state, "", 1000)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var listed []custody.COI
		for _, ci := range page {
			listed = append(listed, ci.COI)
		}
		if !slices.Equal(listed, cois) {
			t.Fatalf("%s: the chains of %+v are %v, want %v", what, p, listed, cois)
		}
	}
	for _, st := range []custody.State{custody.StateEnrolled, custody.StateCollected} {
		k := 0
		for _, ci := range all {
			if ci.State == st {
				k++
			}
		}
		if n, err := s.CountChainsInState(ctx, st); err != nil || n != k {
			t.Fatalf("%s: CountChainsInState(%s) = %d, %v; want %d", what, st, n, err, k)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("%s: check: %v", what, err)
	}
}

// TestSiteIndexBuiltAtOpen opens a database a binary before the index
// wrote (its chains without rows of chain_sites, no counts): the store
// builds the index at open, a chunk of chains per transaction, also when
// an earlier build was interrupted after some chunks, and when several
// instances open the database at once.
func TestSiteIndexBuiltAtOpen(t *testing.T) {
	ctx := context.Background()
	defer func(n int) { siteBuildChunk = n }(siteBuildChunk)
	siteBuildChunk = 3
	url := pgtest.Schema(t)
	s := openT(t, url)
	sitesLedger(t, s, 11)
	sameSiteIndex(t, "written with the index", s)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// The schema as migration 15 left it, with the chains written then.
	v15 := fmt.Sprintf(`DROP TABLE chain_sites, chain_site_counts; DELETE FROM index_builds WHERE name = '%s';
		ALTER TABLE chains DROP COLUMN waiting; DELETE FROM coid_schema WHERE version >= 16`, builtSites)

	exec(v15)
	sameSiteIndex(t, "built at open", openT(t, url))

	// A build interrupted after its first chunks: some chains have their
	// rows, the counts are stale.
	exec(v15)
	openT(t, url).Close() // migrates and builds
	exec(fmt.Sprintf(`DELETE FROM chain_sites WHERE coi > '%s';
		UPDATE chain_site_counts SET n = n + 5; DELETE FROM index_builds WHERE name = '%s'`, storetest.COI(5), builtSites))
	sameSiteIndex(t, "build resumed", openT(t, url))

	// Several instances open the database at once.
	exec(v15)
	var wg sync.WaitGroup
	stores := make([]*Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url, Options{}) })
	}
	wg.Wait()
	for i, st := range stores {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer st.Close()
	}
	sameSiteIndex(t, "built by three instances at once", stores[0])

	// Appends keep the rebuilt index.
	d := storetest.Draft(storetest.COI(2), 40, false, 1)
	d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
	if _, err := stores[1].Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	sameSiteIndex(t, "after an append", stores[2])
}

// TestSiteIndexCheck: the store's check finds a count or a chain's row
// that disagrees with the summaries.
func TestSiteIndexCheck(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := openT(t, url)
	sitesLedger(t, s, 8)
	sameSiteIndex(t, "sound", s)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(t *testing.T, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	// Chain 2 is enrolled on route 2 (no site names); 4 on route 0.
	two, four := string(storetest.COI(2)), string(storetest.COI(4))
	nowhere := sitePair{custody.Sites{Collection: "Nowhere"}, custody.StateEnrolled}
	first := `(SELECT key FROM chain_site_counts ORDER BY key LIMIT 1)`
	for _, tc := range []struct {
		name, sql string
		args      []any
	}{
		{"count one too many", `UPDATE chain_site_counts SET n = n + 1 WHERE key = ` + first, nil},
		{"count missing", `DELETE FROM chain_site_counts WHERE key = ` + first, nil},
		{"count of a pair without chains", `INSERT INTO chain_site_counts VALUES ($1, 'enrolled', 'Nowhere', '', '', 1)`, []any{nowhere.key()}},
		{"count under another key", `UPDATE chain_site_counts SET key = key || '\x00'::bytea WHERE key = ` + first, nil},
		{"chain under other sites", `UPDATE chain_sites SET treatment = 'Hospital B' WHERE coi = $1`, []any{four}},
		{"chain names run together", `UPDATE chain_sites SET collection = 'Hospital A' || manufacturing, manufacturing = '' WHERE coi = $1`, []any{four}},
		{"chain without a row", `DELETE FROM chain_sites WHERE coi = $1`, []any{two}},
		{"chain under another state", `UPDATE chain_sites SET state = 'collected' WHERE coi = $1`, []any{two}},
		{"row of no chain", `INSERT INTO chain_sites SELECT 'X' || coi, collection, manufacturing, treatment, state FROM chain_sites WHERE coi = $1`, []any{two}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec(t, `BEGIN`)
			exec(t, tc.sql, tc.args...)
			exec(t, `COMMIT`)
			if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) {
				t.Errorf("check: %v, want ErrChainBroken", err)
			}
			// Back to the sound index: rebuilt at open.
			exec(t, `DELETE FROM chain_sites WHERE coi = ANY($1)`, []string{two, four, "X" + two})
			exec(t, `DELETE FROM index_builds WHERE name = $1`, builtSites)
			sameSiteIndex(t, "rebuilt", openT(t, url))
		})
	}
}

// openT opens the store at url and closes it when the test ends.
func openT(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

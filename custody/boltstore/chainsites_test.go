package boltstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// siteRoutes are the site names chainSitesStore enrolls chains with.
var siteRoutes = []custody.Sites{
	{Collection: "Hospital A", Manufacturing: "Plant 1", Treatment: "Hospital A"},
	{Collection: "Hospital B", Manufacturing: "Plant 1", Treatment: "Hospital B"},
	{},
}

// chainSitesStore makes a file of n chains, chain i enrolled with
// siteRoutes[i%3], every fourth collected, and returns its directory,
// closed.
func chainSitesStore(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		d := storetest.Draft(storetest.COI(i), i, true, 0)
		d.Sites = siteRoutes[i%len(siteRoutes)]
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			d := storetest.Draft(storetest.COI(i), 1000+i, false, 1)
			d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
			if _, err := s.Append(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// siteIndex lists the chain-site index's entries and counts as text.
func siteIndex(t *testing.T, dir string) (entries, counts []string) {
	t.Helper()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketChainSites); b != nil {
			if err := b.ForEach(func(k, _ []byte) error {
				entries = append(entries, fmt.Sprintf("%q", k))
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketChainSiteCounts); b != nil {
			return b.ForEach(func(k, v []byte) error {
				counts = append(counts, fmt.Sprintf("%q=%x", k, v))
				return nil
			})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return entries, counts
}

// dropChainSites makes the file look like one written before the index
// was kept.
func dropChainSites(t *testing.T, dir string) {
	t.Helper()
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChainSites, bucketChainSiteCounts} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyChainSitesBuilt)
	})
}

func TestChainSiteIndexBuild(t *testing.T) {
	ctx := context.Background()
	dir := chainSitesStore(t, 20)
	wantEntries, wantCounts := siteIndex(t, dir)
	if len(wantEntries) != 20 || len(wantCounts) != 6 {
		t.Fatalf("index after appends: %d entries, %d counts, want 20 and 6 (3 routes, 2 states):\n%v\n%v",
			len(wantEntries), len(wantCounts), wantEntries, wantCounts)
	}
	dropChainSites(t, dir)

	// Read-only before a writer built it: no answer, no damage.
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.SiteStateCounts(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SiteStateCounts without the index: %v, want ErrUnsupported", err)
	}
	if _, err := ro.ChainsOfSitesAfter(ctx, siteRoutes[0], custody.StateEnrolled, "", 5); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ChainsOfSitesAfter without the index: %v, want ErrUnsupported", err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile of a file without the index: %v", err)
	}
	ro.Close()

	// Built whole at the first open for writing.
	s := openT(t, dir)
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile after the build: %v", err)
	}
	s.Close()
	if e, c := siteIndex(t, dir); !slices.Equal(e, wantEntries) || !slices.Equal(c, wantCounts) {
		t.Fatalf("built index:\n%v\n%v\nwant\n%v\n%v", e, c, wantEntries, wantCounts)
	}

	// A build cut short after 7 chains (their entries and counts
	// committed, the last COI kept) resumes after them.
	dropChainSites(t, dir)
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		idx, err := tx.CreateBucket(bucketChainSites)
		if err != nil {
			return err
		}
		counts, err := tx.CreateBucket(bucketChainSiteCounts)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketChains).Cursor()
		var last []byte
		k, v := c.First()
		for n := 0; n < 7; n++ {
			var ci custody.ChainInfo
			if _, err := decodeChainInto(v, &ci, nil, false); err != nil {
				return err
			}
			if err := idx.Put(chainSiteKey(ci.Sites, ci.State, ci.COI), nil); err != nil {
				return err
			}
			if err := addChainSiteCount(counts, chainSitesKey(nil, ci.Sites, ci.State), 1); err != nil {
				return err
			}
			last = slices.Clone(k)
			k, v = c.Next()
		}
		return tx.Bucket(bucketMeta).Put(keyChainSitesFrom, last)
	})
	s = openT(t, dir)
	if err := s.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile after the resumed build: %v", err)
	}
	s.Close()
	if e, c := siteIndex(t, dir); !slices.Equal(e, wantEntries) || !slices.Equal(c, wantCounts) {
		t.Fatalf("resumed index:\n%v\n%v\nwant\n%v\n%v", e, c, wantEntries, wantCounts)
	}
}

func TestChainSiteIndexTamper(t *testing.T) {
	ctx := context.Background()
	coi4, coi5 := storetest.COI(4), storetest.COI(5)
	// Chain 4 is route 1, collected; chain 5 is route 2 (no sites), enrolled.
	count1 := func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0, 0, 0, 1) }
	for _, tc := range []struct {
		name   string
		bucket []byte
		change func(tx *bolt.Tx) error
	}{
		{"missing entry", bucketChainSites, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSites).Delete(chainSiteKey(siteRoutes[1], custody.StateCollected, coi4))
		}},
		{"entry in another state", bucketChainSites, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSites).Put(chainSiteKey(siteRoutes[1], custody.StateEnrolled, coi4), nil)
		}},
		{"entry with other sites", bucketChainSites, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketChainSites)
			if err := b.Delete(chainSiteKey(siteRoutes[2], custody.StateEnrolled, coi5)); err != nil {
				return err
			}
			return b.Put(chainSiteKey(siteRoutes[0], custody.StateEnrolled, coi5), nil)
		}},
		{"malformed entry", bucketChainSites, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSites).Put([]byte{0xff, 0xff, 'x'}, nil)
		}},
		{"entry with a value", bucketChainSites, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSites).Put(chainSiteKey(siteRoutes[1], custody.StateCollected, coi4), []byte{1})
		}},
		{"wrong count", bucketChainSiteCounts, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSiteCounts).Put(chainSitesKey(nil, siteRoutes[0], custody.StateEnrolled), count1(nil))
		}},
		{"missing count", bucketChainSiteCounts, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSiteCounts).Delete(chainSitesKey(nil, siteRoutes[1], custody.StateCollected))
		}},
		{"extra count", bucketChainSiteCounts, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSiteCounts).Put(chainSitesKey(nil, siteRoutes[0], custody.StateReleased), count1(nil))
		}},
		{"zero count", bucketChainSiteCounts, func(tx *bolt.Tx) error {
			return tx.Bucket(bucketChainSiteCounts).Put(chainSitesKey(nil, siteRoutes[0], custody.StateReleased), make([]byte, 8))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := chainSitesStore(t, 12)
			tamperDB(t, dir, tc.change)
			s, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.CheckFile(ctx)
			var d *FileDamage
			if !errors.As(err, &d) || d.Bucket != string(tc.bucket) {
				t.Fatalf("CheckFile = %v, want damage to %s", err, tc.bucket)
			}
		})
	}
}

// terminalIssueStore makes a file of six chains: 2 and 4 cancelled with an
// issue open, 3 cancelled with none, the rest enrolled with one open; and
// returns its directory, closed.
func terminalIssueStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	open := custody.IssueCounts{Kept: true, SealsBroken: 1}
	for i := 1; i <= 6; i++ {
		d := storetest.Draft(storetest.COI(i), i, true, 0)
		d.OpenIssues = open
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{2, 3, 4} {
		d := storetest.Draft(storetest.COI(i), 10+i, false, 1)
		d.Record.Step, d.State, d.OpenIssues = custody.StepCancel, custody.StateCancelled, open
		if i == 3 {
			d.OpenIssues = custody.IssueCounts{Kept: true}
		}
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// terminalIssues lists the terminal-issue index's chains by number.
func terminalIssues(t *testing.T, s *Store) []int {
	t.Helper()
	page, err := s.TerminalIssueChainsAfter(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, ci := range page {
		for n := 1; n <= 6; n++ {
			if storetest.COI(n) == ci.COI {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestTerminalIssueIndex: the index follows a cancelled chain's issues as
// later records decide them or find new ones, is built at the first open
// for writing of a file written before it was kept, and CheckFile finds an
// entry too many or too few.
func TestTerminalIssueIndex(t *testing.T) {
	ctx := context.Background()
	dir := terminalIssueStore(t)
	s := openT(t, dir)
	if got := terminalIssues(t, s); !slices.Equal(got, []int{2, 4}) {
		t.Fatalf("index after the cancellations: %v, want [2 4]", got)
	}
	// Records after the end (the store does not judge the journey): 2's
	// issue decided, 3's found.
	for _, c := range []struct {
		n      int
		issues custody.IssueCounts
	}{{2, custody.IssueCounts{Kept: true}}, {3, custody.IssueCounts{Kept: true, Excursions: 1}}} {
		d := storetest.Draft(storetest.COI(c.n), 20+c.n, false, 2)
		d.State, d.OpenIssues = custody.StateCancelled, c.issues
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := terminalIssues(t, s); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("index after the later records: %v, want [3 4]", got)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A file written before the index: read-only, no answer and no
	// damage; built at the first open for writing.
	tamperDB(t, dir, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketTerminalIssues); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyTerminalIssuesBuilt)
	})
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.TerminalIssueChainsAfter(ctx, "", 5); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("TerminalIssueChainsAfter without the index: %v, want ErrUnsupported", err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile without the index: %v", err)
	}
	ro.Close()
	s = openT(t, dir)
	if got := terminalIssues(t, s); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("built index: %v, want [3 4]", got)
	}
	s.Close()

	for _, tc := range []struct {
		name   string
		change func(b *bolt.Bucket) error
	}{
		{"missing", func(b *bolt.Bucket) error { return b.Delete([]byte(storetest.COI(4))) }},
		{"extra: cancelled with none open", func(b *bolt.Bucket) error { return b.Put([]byte(storetest.COI(3)), nil) }},
		{"extra: in flight", func(b *bolt.Bucket) error { return b.Put([]byte(storetest.COI(5)), nil) }},
		{"extra: no chain", func(b *bolt.Bucket) error { return b.Put([]byte(storetest.COI(9)), nil) }},
		{"a value", func(b *bolt.Bucket) error { return b.Put([]byte(storetest.COI(4)), []byte{1}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := terminalIssueStore(t)
			tamperDB(t, dir, func(tx *bolt.Tx) error { return tc.change(tx.Bucket(bucketTerminalIssues)) })
			s, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.CheckFile(ctx)
			var d *FileDamage
			if !errors.As(err, &d) || d.Bucket != string(bucketTerminalIssues) {
				t.Fatalf("CheckFile = %v, want damage to the index", err)
			}
		})
	}
}

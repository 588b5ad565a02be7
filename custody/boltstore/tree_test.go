package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// The tree's proofs are checked with github.com/transparency-dev/merkle,
// a library independent of the one that builds them (x/mod's tlog), and
// every leaf is re-hashed from the record read back, not taken from the
// tree.

var hasher = rfc6962.DefaultHasher

// independentRoots returns the root of every prefix of the ledger, roots[n]
// for the first n records, computed by the independent library from the
// records' canonical encodings.
func independentRoots(t *testing.T, s *Store) [][]byte {
	t.Helper()
	ctx := context.Background()
	head, _, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rf := compact.RangeFactory{Hash: hasher.HashChildren}
	r := rf.NewEmptyRange(0)
	roots := [][]byte{hasher.EmptyRoot()}
	for seq := uint64(1); seq <= head; seq++ {
		rec, err := s.Record(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Append(hasher.HashLeaf(rec.Canonical(nil)), nil); err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
	}
	return roots
}

func newLog(t *testing.T, s *Store, dir string) *verifiable.Log {
	t.Helper()
	keys, err := verifiable.OpenKeys(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return verifiable.NewLog(s, keys, func() time.Time { return t0 }, nil)
}

func hashes(p []verifiable.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// TestInclusionProofsVerifyAtEverySize proves every record of a ledger
// against every tree size that holds it; the independent verifier accepts
// each, and refuses it for the neighbouring record or a wrong size.
func TestInclusionProofsVerifyAtEverySize(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	// Several batches of uneven sizes, so the tree grows across commits.
	fill(t, s, 7, 10)
	fill2(t, s, 8, 40, 11)
	roots := independentRoots(t, s)
	n := int64(len(roots) - 1)
	if size, _ := s.TreeSize(ctx); size != n {
		t.Fatalf("tree size %d, ledger %d", size, n)
	}
	l := newLog(t, s, dir)
	for size := int64(1); size <= n; size++ {
		for seq := uint64(1); seq <= uint64(size); seq++ {
			inc, err := l.Inclusion(ctx, seq, size)
			if err != nil {
				t.Fatalf("seq %d size %d: %v", seq, size, err)
			}
			if !bytes.Equal(inc.Root[:], roots[size]) {
				t.Fatalf("size %d: root %x, independently %x", size, inc.Root, roots[size])
			}
			rec, _ := s.Record(ctx, seq)
			leaf := hasher.HashLeaf(rec.Canonical(nil))
			if err := proof.VerifyInclusion(hasher, seq-1, uint64(size), leaf, hashes(inc.Proof), roots[size]); err != nil {
				t.Fatalf("seq %d size %d: %v", seq, size, err)
			}
			if seq > 1 && size%7 == 0 {
				if proof.VerifyInclusion(hasher, seq-2, uint64(size), leaf, hashes(inc.Proof), roots[size]) == nil {
					t.Fatalf("seq %d size %d: the proof also verified for the record before", seq, size)
				}
			}
		}
	}
	for _, bad := range []struct {
		seq  uint64
		size int64
	}{{0, n}, {uint64(n) + 1, 0}, {5, n + 1}, {5, 4}} {
		if _, err := l.Inclusion(ctx, bad.seq, bad.size); !errors.Is(err, custody.ErrNotFound) {
			t.Errorf("inclusion of %d at %d: %v, want ErrNotFound", bad.seq, bad.size, err)
		}
	}
}

// fill2 is fill with batches of batch records, chains numbered from first.
func fill2(tb testing.TB, s *Store, chains, perChain, batch int) {
	tb.Helper()
	var reqs []*appendReq
	i := 0
	for k := 0; k < perChain; k++ {
		for c := 0; c < chains; c++ {
			i++
			reqs = append(reqs, newAppendReq(storetest.Draft(storetest.COI(1000+c), i, k == 0, uint64(k))))
			if len(reqs) == batch {
				for _, res := range s.commit(reqs) {
					if res.Err != nil {
						tb.Fatal(res.Err)
					}
				}
				reqs = reqs[:0]
			}
		}
	}
	for _, res := range s.commit(reqs) {
		if res.Err != nil {
			tb.Fatal(res.Err)
		}
	}
}

// TestConsistencyProofsVerify proves every pair of sizes consistent.
func TestConsistencyProofsVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	fill2(t, s, 5, 30, 13)
	roots := independentRoots(t, s)
	l := newLog(t, s, dir)
	n := int64(len(roots) - 1)
	for from := int64(1); from <= n; from++ {
		for to := from; to <= n; to++ {
			c, err := l.Consistency(ctx, from, to)
			if err != nil {
				t.Fatalf("%d..%d: %v", from, to, err)
			}
			if err := proof.VerifyConsistency(hasher, uint64(from), uint64(to), hashes(c.Proof), roots[from], roots[to]); err != nil {
				t.Fatalf("%d..%d: %v", from, to, err)
			}
			if from < to && proof.VerifyConsistency(hasher, uint64(from), uint64(to), hashes(c.Proof), roots[from-1], roots[to]) == nil {
				t.Fatalf("%d..%d: verified against the wrong old root", from, to)
			}
		}
	}
	for _, bad := range [][2]int64{{0, 5}, {6, 5}} {
		if _, err := l.Consistency(ctx, bad[0], bad[1]); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("consistency %v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := l.Consistency(ctx, 1, n+1); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("consistency to beyond the tree: %v, want ErrNotFound", err)
	}
}

// TestCheckpointSignedKeptAndVerified signs checkpoints as the ledger
// grows: each is a C2SP checkpoint of the tree at its size, verifies with
// the verifier key, and is kept.
func TestCheckpointSignedKeptAndVerified(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	l := newLog(t, s, dir)
	if signed, _ := l.SignIfGrown(ctx); !signed {
		t.Fatal("no checkpoint of the empty ledger")
	}
	fill(t, s, 3, 5)
	if signed, err := l.SignIfGrown(ctx); err != nil || !signed {
		t.Fatalf("grown: signed %v, %v", signed, err)
	}
	if signed, err := l.SignIfGrown(ctx); err != nil || signed {
		t.Fatalf("not grown: signed %v, %v", signed, err)
	}
	roots := independentRoots(t, s)
	latest, c, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := verifiable.Open(latest, l.Keys().Verifier())
	if err != nil || got != c || got.Size != 15 || !bytes.Equal(got.Root[:], roots[15]) || got.Origin != l.Keys().Origin() {
		t.Fatalf("latest %+v (%v), want size 15 root %x", got, err, roots[15])
	}
	var sizes []int64
	if err := s.Checkpoints(ctx, func(size int64, signed []byte) error {
		c, err := verifiable.Open(signed, l.Keys().Verifier())
		if err != nil || c.Size != size || !bytes.Equal(c.Root[:], roots[size]) {
			return fmt.Errorf("kept checkpoint %d: %+v %v", size, c, err)
		}
		sizes = append(sizes, size)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[0 15]" {
		t.Fatalf("kept checkpoints of sizes %v, want [0 15]", sizes)
	}
}

// TestTilesMatchTheTree reads the tree back through its C2SP tiles only,
// as a mirror would, with x/mod's tile reader, at sizes around tile
// boundaries; the proofs built from the tiles verify with the independent
// library and the entry bundles hold the records' bytes.
func TestTilesMatchTheTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	fill(t, s, 60, 10) // 600 records: two full level-0 tiles and a partial one
	roots := independentRoots(t, s)
	l := newLog(t, s, dir)
	for _, size := range []int64{1, 255, 256, 257, 512, 513, 600} {
		tr := &tileReader{t: t, l: l}
		var root tlog.Hash
		copy(root[:], roots[size])
		hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tr)
		for _, seq := range []int64{1, size / 2, size} {
			if seq < 1 {
				continue
			}
			p, err := tlog.ProveRecord(size, seq-1, hr)
			if err != nil {
				t.Fatalf("size %d seq %d from tiles: %v", size, seq, err)
			}
			rec, _ := s.Record(ctx, uint64(seq))
			if err := proof.VerifyInclusion(hasher, uint64(seq-1), uint64(size), hasher.HashLeaf(rec.Canonical(nil)), hashes(p), roots[size]); err != nil {
				t.Fatalf("size %d seq %d from tiles: %v", size, seq, err)
			}
		}
	}
	// Entry bundles: a full one and the partial one at the end.
	for _, c := range []struct {
		path  string
		first int
		count int
		full  bool
	}{{"tile/entries/000", 1, 256, true}, {"tile/entries/001", 257, 256, true}, {"tile/entries/002.p/88", 513, 88, false}} {
		data, full, err := l.Tile(ctx, c.path)
		if err != nil || full != c.full {
			t.Fatalf("%s: full %v %v", c.path, full, err)
		}
		for i := 0; i < c.count; i++ {
			n := int(binary.BigEndian.Uint16(data))
			rec, _ := s.Record(ctx, uint64(c.first+i))
			if !bytes.Equal(data[2:2+n], rec.Canonical(nil)) {
				t.Fatalf("%s entry %d is not record %d", c.path, i, c.first+i)
			}
			data = data[2+n:]
		}
		if len(data) != 0 {
			t.Fatalf("%s: %d bytes after the last entry", c.path, len(data))
		}
	}
	for _, p := range []string{"tile/0/003", "tile/0/002", "tile/0/002.p/89", "tile/1/000", "tile/entries/002.p/89",
		"tile/0/x001", "tile/0/2", "tile/-1/000", "checkpoint", "tile/0/000.p/0", "tile/0/000.p/256", "tile/9/000.p/1"} {
		if _, _, err := l.Tile(ctx, p); !errors.Is(err, custody.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", p, err)
		}
	}
	if _, full, err := l.Tile(ctx, "tile/1/000.p/2"); err != nil || full {
		t.Errorf("tile/1/000.p/2: full %v, %v", full, err)
	}
}

// tileReader reads tiles through Log.Tile by their C2SP paths.
type tileReader struct {
	t *testing.T
	l *verifiable.Log
}

func (r *tileReader) Height() int { return verifiable.TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tl := range tiles {
		p := "tile/" + strings.TrimPrefix(tl.Path(), "tile/8/")
		data, full, err := r.l.Tile(context.Background(), p)
		if err != nil {
			return nil, err
		}
		if full != (tl.W == 256) {
			r.t.Errorf("%s: full %v", p, full)
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// TestRolledBackLedgerFailsConsistency: a checkpoint signed before the
// ledger was put back to a backup, which then took other records, is not
// consistent with the ledger's tree afterwards, although the hash chain
// verifies.
func TestRolledBackLedgerFailsConsistency(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, 4, 15) // 60
	var backup bytes.Buffer
	if _, err := s.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	fill2(t, s, 4, 5, 7) // 80
	l := newLog(t, s, dir)
	old, _, err := l.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Put the backup back and write other records from there on.
	if err := os.WriteFile(dir+"/"+FileName, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	fill2(t, s, 5, 8, 9) // 100
	if rep := verify(t, s); !rep.OK {
		t.Fatalf("the rewritten ledger's chain should verify on its own: %+v", rep)
	}
	l = newLog(t, s, dir)
	oc, err := verifiable.Open(old, l.Keys().Verifier())
	if err != nil {
		t.Fatal(err)
	}
	roots := independentRoots(t, s)
	c, err := l.Consistency(ctx, oc.Size, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(hasher, uint64(oc.Size), 100, hashes(c.Proof), oc.Root[:], roots[100]); err == nil {
		t.Fatal("a rolled-back and rewritten ledger passed the consistency check against the old checkpoint")
	}
	// The ledger's own earlier tree is consistent, as it should be.
	if err := proof.VerifyConsistency(hasher, uint64(oc.Size), 100, hashes(c.Proof), roots[oc.Size], roots[100]); err != nil {
		t.Fatal(err)
	}
}

// TestTreeBuiltForALedgerWithoutOne opens a ledger written before the
// tree existed (no tree bucket entries), and one whose build stopped
// halfway: the tree is built, or finished, at open and matches.
func TestTreeBuiltForALedgerWithoutOne(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		chains int
		keep   int64
	}{{9, 0}, {9, 1}, {9, 77}, {300, 0}, {300, 5001}} { // 180 or 6,000 records: two blocks of leaves
		keep, records := c.keep, int64(c.chains*20)
		t.Run(fmt.Sprint(records, " records, kept ", keep), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			fill(t, s, c.chains, 20)
			s.Close()
			db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				// Cut the stored hashes back to those of the first keep
				// leaves: drop them all, then store the first keep again.
				meta := tx.Bucket(bucketMeta)
				if err := tx.DeleteBucket(bucketTree); err != nil {
					return err
				}
				treeB, err := tx.CreateBucket(bucketTree)
				if err != nil {
					return err
				}
				for _, k := range [][]byte{keyTreeSize, keyTreeTail} {
					if err := meta.Delete(k); err != nil {
						return err
					}
				}
				tree := newTreeHashes(treeB, meta)
				edge, err := verifiable.LoadEdge(0, &keptTree{})
				if err != nil {
					return err
				}
				var hs []verifiable.Hash
				for i := range keep {
					hs = addKept(edge, verifiable.LeafHash(tx.Bucket(bucketLog).Get(u64(uint64(i + 1)))[32:]), hs)
				}
				if err := tree.add(0, hs); err != nil {
					return err
				}
				if err := tree.flush(); err != nil {
					return err
				}
				if keep == 0 {
					return nil
				}
				return meta.Put(keyTreeSize, u64(uint64(keep)))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s = openT(t, dir)
			defer s.Close()
			if n, _ := s.TreeSize(ctx); n != records {
				t.Fatalf("tree size %d after open, want %d", n, records)
			}
			checkTreeMatches(t, s)
		})
	}
}

// TestTreeOfAnOlderLayoutIsRebuilt opens a ledger whose stored hashes
// have the layout of an older version (no layout mark, groups of another
// size): a read-only open sees no tree (and its check passes), the next
// writer's open builds it again in this layout.
func TestTreeOfAnOlderLayoutIsRebuilt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, 7, 20) // 140
	s.Close()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		meta, tree := tx.Bucket(bucketMeta), tx.Bucket(bucketTree)
		for _, k := range [][]byte{keyTreeLayout, keyTreeTail} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return tree.Put(u64(0), bytes.Repeat([]byte{7}, 64*32))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ro.TreeSize(ctx); n != 0 || err != nil {
		t.Fatalf("read-only tree size of an older layout: %d (%v), want 0", n, err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("check of an older layout: %v", err)
	}
	ro.Close()
	s = openT(t, dir)
	defer s.Close()
	checkTreeMatches(t, s)
}

// checkTreeMatches checks that the tree holds every record of the ledger
// and its root is the independent library's.
func checkTreeMatches(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	roots := independentRoots(t, s)
	n, err := s.TreeSize(ctx)
	if err != nil || n != int64(len(roots)-1) {
		t.Fatalf("tree size %d (%v), ledger %d", n, err, len(roots)-1)
	}
	root, err := verifiable.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.ReadHashes(ctx, idx) }))
	if err != nil || !bytes.Equal(root[:], roots[n]) {
		t.Fatalf("root %x (%v), independently %x", root, err, roots[n])
	}
	cnt := 0
	if err := s.view(func(tx *bolt.Tx) error {
		_, tail := readTreeTail(tx.Bucket(bucketMeta))
		cnt += len(tail) / 32
		return tx.Bucket(bucketTree).ForEach(func(_, v []byte) error { cnt += len(v) / 32; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if int64(cnt) != keptCount(n) {
		t.Fatalf("%d kept hashes, want %d", cnt, keptCount(n))
	}
	// Every stored hash is the independent library's (the file check).
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointsSignedAfterCommitsAtMostEveryInterval drives Log.Run with
// a fake clock: it signs at start, then at each interval only if the
// ledger grew.
func TestCheckpointsSignedAfterCommitsAtMostEveryInterval(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	l := newLog(t, s, dir)
	waiting := make(chan time.Duration)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, 3*time.Second, func(d time.Duration) <-chan time.Time { waiting <- d; return tick })
	}()
	kept := func() []int64 {
		var sizes []int64
		if err := s.Checkpoints(context.Background(), func(size int64, _ []byte) error { sizes = append(sizes, size); return nil }); err != nil {
			t.Fatal(err)
		}
		return sizes
	}
	wait := func() {
		t.Helper()
		select {
		case d := <-waiting:
			if d != 3*time.Second {
				t.Fatalf("waited %v, want the interval", d)
			}
		case <-time.After(10 * time.Second): // catches a hang only
			t.Fatal("Run did not wait for the next interval")
		}
	}
	wait()
	if got := fmt.Sprint(kept()); got != "[0]" {
		t.Fatalf("at start: %s", got)
	}
	fill(t, s, 3, 5)
	fill2(t, s, 2, 2, 4)
	if got := fmt.Sprint(kept()); got != "[0]" {
		t.Fatalf("signed before the interval ended: %s", got)
	}
	tick <- t0
	wait()
	if got := fmt.Sprint(kept()); got != "[0 19]" {
		t.Fatalf("after the interval: %s", got)
	}
	tick <- t0
	wait()
	if got := fmt.Sprint(kept()); got != "[0 19]" {
		t.Fatalf("signed again without a commit: %s", got)
	}
	cancel()
	<-done
}

// TestCheckFileFindsATamperedTree: the file check (coid verify) names the
// record whose tree hashes were changed, and a tree cut short or grown.
func TestCheckFileFindsATamperedTree(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		edit  func(tree, meta *bolt.Bucket) error
		want  string
		wantK string
	}{
		{"node of records 65 to 80", func(tree, _ *bolt.Bucket) error {
			idx := keptIndex(4, 4)
			k := u64(uint64(idx / hashGroup))
			v := clone(tree.Get(k))
			v[(idx%hashGroup)*32+5] ^= 1
			return tree.Put(k, v)
		}, "do not match", "80"},
		{"node completed by record 256", func(tree, _ *bolt.Bucket) error {
			idx := keptIndex(8, 0) // the root of the first 256 leaves
			k := u64(uint64(idx / hashGroup))
			v := clone(tree.Get(k))
			v[(idx%hashGroup)*32] ^= 0x80
			return tree.Put(k, v)
		}, "do not match", "256"},
		{"a hash too many", func(tree, _ *bolt.Bucket) error {
			k, v := tree.Cursor().Last()
			return tree.Put(clone(k), append(clone(v), make([]byte, 32)...))
		}, "beyond", ""},
		{"a hash too many in meta", func(_, meta *bolt.Bucket) error {
			return meta.Put(keyTreeTail, append(clone(meta.Get(keyTreeTail)), make([]byte, 32)...))
		}, "beyond", ""},
		{"a group not full before the last", func(tree, _ *bolt.Bucket) error {
			k, v := tree.Cursor().Last()
			return tree.Put(clone(k), clone(v[:len(v)-32]))
		}, "missing", fmt.Sprint(keptBy(2*hashGroup - 1))}, // the last kept hash of group 1
		{"tree longer than the log", func(_, meta *bolt.Bucket) error { return meta.Put(keyTreeSize, u64(301)) }, "the log 300", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			fill(t, s, 30, 10) // 300 records: 34 kept hashes, groups 0 and 1 and two in meta
			if err := s.CheckFile(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return c.edit(tx.Bucket(bucketTree), tx.Bucket(bucketMeta)) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s, err = Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var fd *FileDamage
			if err := s.CheckFile(ctx); !errors.As(err, &fd) || fd.Bucket != "tree" || fd.Key != c.wantK || !strings.Contains(fd.Problem, c.want) {
				t.Fatalf("check: %v, want damage to the tree at %q (%s)", err, c.wantK, c.want)
			}
		})
	}
}

// TestLatestWitnessed runs the conformance checks of the witnessed
// checkpoint lookup on a real bbolt file.
func TestLatestWitnessed(t *testing.T) {
	storetest.RunLatestWitnessed(t, func(t *testing.T) storetest.WitnessedStore {
		s := openT(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// keptBy returns the record whose leaf completes the kept hash at idx
// (keptIndex): the first tree size that keeps more than idx hashes.
func keptBy(idx int64) int64 {
	size := int64(1)
	for keptCount(size) <= idx {
		size++
	}
	return size
}

// TestEveryTreeHashIsTheTrees reads every node of the tree through the
// store, the kept ones and those below treeLow recomputed from their
// records, and compares each with the root of its leaves as the
// independent library computes it; a node the tree does not hold whole
// yet is not found.
func TestEveryTreeHashIsTheTrees(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	defer s.Close()
	fill(t, s, 9, 30)
	size, err := s.TreeSize(ctx)
	if err != nil || size != 270 {
		t.Fatalf("tree size %d (%v), want 270", size, err)
	}
	leaves := make([][]byte, size)
	for i := range leaves {
		rec, err := s.Record(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		leaves[i] = hasher.HashLeaf(rec.Canonical(nil))
	}
	rf := compact.RangeFactory{Hash: hasher.HashChildren}
	for level := 0; int64(1)<<level <= size; level++ {
		var idx []int64
		var want [][]byte
		for n := int64(0); (n+1)<<level <= size; n++ {
			r := rf.NewEmptyRange(0) // a whole subtree: the root of its leaves alone
			for _, l := range leaves[n<<level : (n+1)<<level] {
				if err := r.Append(l, nil); err != nil {
					t.Fatal(err)
				}
			}
			root, err := r.GetRootHash(nil)
			if err != nil {
				t.Fatal(err)
			}
			idx, want = append(idx, verifiable.StoredHashIndex(level, n)), append(want, root)
		}
		got, err := s.ReadHashes(ctx, idx)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		for i := range want {
			if !bytes.Equal(got[i][:], want[i]) {
				t.Fatalf("level %d node %d: %x, independently %x", level, i, got[i], want[i])
			}
		}
		if _, err := s.ReadHashes(ctx, []int64{verifiable.StoredHashIndex(level, size>>level)}); !errors.Is(err, custody.ErrNotFound) {
			t.Fatalf("level %d: the incomplete node %d: %v, want not found", level, size>>level, err)
		}
	}
}

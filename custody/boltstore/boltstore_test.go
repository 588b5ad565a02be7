package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// fill appends records chains x perChain through the writer, interleaving
// chains, in big batches (the group commit path, without waiting per call).
func fill(tb testing.TB, s *Store, chains, perChain int) {
	tb.Helper()
	i := 0
	var batch []*appendReq
	flush := func() {
		for _, res := range s.commit(batch) {
			if res.Err != nil {
				tb.Fatal(res.Err)
			}
		}
		batch = batch[:0]
	}
	for k := 0; k < perChain; k++ {
		for c := 1; c <= chains; c++ {
			i++
			batch = append(batch, newAppendReq(storetest.Draft(storetest.COI(c), i, k == 0, uint64(k))))
			if len(batch) == 10000 {
				flush()
			}
		}
	}
	flush()
}

func verify(tb testing.TB, s *Store) custody.Report {
	tb.Helper()
	rep, err := custody.VerifyLog(context.Background(), s)
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper reopens the file with bbolt directly and lets fn change it.
func tamper(t *testing.T, dir string, fn func(log *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketLog)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestAppendAndVerify(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	fill(t, s, 3, 5)
	rep := verify(t, s)
	if !rep.OK || rep.Records != 15 {
		t.Fatalf("%+v", rep)
	}
	recs, err := s.Records(context.Background(), storetest.COI(2))
	if err != nil || len(recs) != 5 {
		t.Fatalf("records: %d %v", len(recs), err)
	}
	for i, r := range recs {
		if r.ChainSeq != uint64(i+1) || r.Chain != storetest.COI(2) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && r.ChainPrev != recs[i-1].Hash {
			t.Fatalf("chain link %d broken", i)
		}
	}
	ci, _ := s.Chain(context.Background(), storetest.COI(2))
	if ci.Records != 5 || ci.HeadHash != recs[4].Hash {
		t.Fatalf("summary %+v", ci)
	}
	crep, err := custody.VerifyChain(context.Background(), s, ci)
	if err != nil || !crep.OK || crep.Records != 5 {
		t.Fatalf("chain verify %+v %v", crep, err)
	}
}

func TestTamperDetected(t *testing.T) {
	const chains, per = 3, 4 // 12 records; record k belongs to chain (k-1)%3+1
	tests := []struct {
		name    string
		change  func(log *bolt.Bucket) error
		wantBad uint64
	}{
		{"delete middle record", func(b *bolt.Bucket) error { return b.Delete(u64(5)) }, 5},
		{"delete first record", func(b *bolt.Bucket) error { return b.Delete(u64(1)) }, 1},
		{"swap two records", func(b *bolt.Bucket) error {
			x, y := clone(b.Get(u64(4))), clone(b.Get(u64(7)))
			if err := b.Put(u64(4), y); err != nil {
				return err
			}
			return b.Put(u64(7), x)
		}, 4},
		{"truncate the log", func(b *bolt.Bucket) error {
			for k := 10; k <= 12; k++ {
				if err := b.Delete(u64(uint64(k))); err != nil {
					return err
				}
			}
			return nil
		}, 10},
		{"replace record with a resealed forgery", func(b *bolt.Bucket) error {
			v := b.Get(u64(6))
			var r custody.Record
			if err := json.Unmarshal(v[custody.HashSize:], &r); err != nil {
				return err
			}
			r.Site = "Forged Site"
			body := r.Seal(nil)
			return b.Put(u64(6), append(r.Hash[:], body...))
		}, 7},
		{"append a record without the head", func(b *bolt.Bucket) error {
			return b.Put(u64(13), clone(b.Get(u64(12))))
		}, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			fill(t, s, chains, per)
			s.Close()
			tamper(t, dir, tt.change)
			s = openT(t, dir)
			defer s.Close()
			rep := verify(t, s)
			if rep.OK || rep.FirstBad != tt.wantBad {
				t.Fatalf("report %+v, want record %d named", rep, tt.wantBad)
			}
			if !errors.Is(rep.Err(), custody.ErrChainBroken) {
				t.Fatalf("Err() = %v", rep.Err())
			}
		})
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// TestEveryByteFlipDetected changes each byte of stored records one at a
// time: verification must fail and name exactly that record, and the
// chain's own verification must fail too.
func TestEveryByteFlipDetected(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, 2, 3)
	s.Close()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := &Store{db: db, readOnly: true}
	for _, seq := range []uint64{1, 4, 6} {
		var orig []byte
		db.View(func(tx *bolt.Tx) error { orig = clone(tx.Bucket(bucketLog).Get(u64(seq))); return nil })
		for i := range orig {
			for _, x := range []byte{0x01, 0x80} {
				mod := clone(orig)
				mod[i] ^= x
				db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLog).Put(u64(seq), mod) })
				rep := verify(t, src)
				if rep.OK || rep.FirstBad != seq {
					t.Fatalf("record %d byte %d ^%#x: report %+v", seq, i, x, rep)
				}
				coi := storetest.COI(int((seq-1)%2 + 1))
				ci, _ := src.Chain(context.Background(), coi)
				if crep, _ := custody.VerifyChain(context.Background(), src, ci); crep.OK {
					t.Fatalf("chain verify missed byte %d of record %d", i, seq)
				}
			}
		}
		db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLog).Put(u64(seq), orig) })
	}
	if rep := verify(t, src); !rep.OK {
		t.Fatalf("restored ledger does not verify: %+v", rep)
	}
}

func TestSecondProcessGetsInUse(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, custody.ErrInUse) {
		t.Fatalf("second open: %v", err)
	}
}

func TestDraftFailsAloneInItsBatch(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	fill(t, s, 1, 1)
	batch := []*appendReq{
		newAppendReq(storetest.Draft(storetest.COI(1), 10, false, 1)),
		newAppendReq(storetest.Draft(storetest.COI(1), 11, true, 0)),  // enroll of an existing chain
		newAppendReq(storetest.Draft(storetest.COI(9), 12, false, 0)), // unknown chain
		newAppendReq(storetest.Draft(storetest.COI(1), 13, false, 1)), // stale: chain grew in this batch
		newAppendReq(storetest.Draft(storetest.COI(1), 14, false, 2)),
	}
	want := []error{nil, custody.ErrConflict, custody.ErrNotFound, custody.ErrRetry, nil}
	for i, res := range s.commit(batch) {
		if want[i] == nil && res.Err != nil || want[i] != nil && !errors.Is(res.Err, want[i]) {
			t.Fatalf("draft %d: %v, want %v", i, res.Err, want[i])
		}
	}
	if rep := verify(t, s); !rep.OK || rep.Records != 3 {
		t.Fatalf("%+v", rep)
	}
}

func TestConcurrentAppendsAreDurableAndLinked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	const writers, each = 64, 20
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for k := range each {
				if _, err := s.Append(context.Background(), storetest.Draft(storetest.COI(w), w*1000+k, k == 0, uint64(k))); err != nil {
					t.Error(err)
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	s.Close()
	s = openT(t, dir) // what was acknowledged survives reopening
	defer s.Close()
	if rep := verify(t, s); !rep.OK || rep.Records != writers*each || failed.Load() != 0 {
		t.Fatalf("%+v failed=%d", rep, failed.Load())
	}
}

func TestClosedStoreRefusesAppends(t *testing.T) {
	s := openT(t, t.TempDir())
	s.Close()
	if _, err := s.Append(context.Background(), storetest.Draft(storetest.COI(1), 1, true, 0)); !errors.Is(err, custody.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

// BenchmarkAppend64Writers measures durable appends through the store with
// 64 concurrent writers, each waiting for its record's commit
// (storetest.BenchAppend).
func BenchmarkAppend64Writers(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.dbmu.RLock()
	st := s.db.Stats()
	s.dbmu.RUnlock()
	w0, c0 := st.TxStats.GetWrite(), cpuSeconds()
	storetest.BenchAppend(b, s, 64)
	// The page writes (what the commits' fsyncs wait for) and the CPU of
	// the whole process (writers and committer) per record: with the
	// machine shared, they tell more than the wall time.
	s.dbmu.RLock()
	st, refreshes := s.db.Stats(), s.refreshes
	s.dbmu.RUnlock()
	if refreshes == 0 {
		b.ReportMetric(float64(st.TxStats.GetWrite()-w0)/float64(b.N), "writes/op")
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N)*1e6, "cpu-µs/op")
}

// BenchmarkAppend1Writer is the disk's floor for the figure above: one
// writer, so each commit holds one record and pays bbolt's two fdatasyncs
// alone (the "one fsync per record", about 3,000/s on the machine
// it was written on). Reported beside BenchmarkAppend64Writers, it tells a
// slow disk from a slow store.
func BenchmarkAppend1Writer(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perChain = 30
	n := 0
	s.dbmu.RLock()
	st := s.db.Stats()
	s.dbmu.RUnlock()
	w0 := st.TxStats.GetWrite()
	c0 := cpuSeconds()
	for b.Loop() {
		coi, k := storetest.COI(1+n/perChain), n%perChain
		if _, err := s.Append(context.Background(), storetest.Draft(coi, n, k == 0, uint64(k))); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	// The page writes of a commit (bbolt's count, the meta page apart):
	// what the fsync waits for. A reopen (Store.refresh) starts the
	// count again: none is reported then.
	s.dbmu.RLock()
	st, refreshes := s.db.Stats(), s.refreshes
	s.dbmu.RUnlock()
	if refreshes == 0 {
		b.ReportMetric(float64(st.TxStats.GetWrite()-w0)/float64(n), "writes/op")
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(n)*1e6, "cpu-µs/op")
}

// BenchmarkVerify1M verifies a ledger of 1,000,000 records (30 per chain).
func BenchmarkVerify1M(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const chains = 33334
	fill(b, s, chains, 30)
	var rep custody.Report
	n := 0
	start := time.Now()
	for b.Loop() {
		rep = verify(b, s)
		n++
	}
	if !rep.OK || rep.Records != chains*30 {
		b.Fatalf("%+v", rep)
	}
	b.ReportMetric(float64(rep.Records)*float64(n)/time.Since(start).Seconds(), "records/s")
}

// TestWriterChainCacheStaysTrue appends through the writer, whose chain
// cache then answers for the chain: a stale draft must still be refused,
// a fresh one linked to the true head, across batches and a reopen.
func TestWriterChainCacheStaysTrue(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	var last custody.Record
	for k := range 5 {
		r, err := s.Append(ctx, storetest.Draft(storetest.COI(1), k, k == 0, uint64(k)))
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 99, false, 3)); !errors.Is(err, custody.ErrRetry) || errors.Is(err, custody.ErrConflict) {
		t.Fatalf("stale draft: %v, want ErrRetry (not a refusal)", err)
	}
	if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 98, true, 0)); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("second enroll: %v, want conflict", err)
	}
	r, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 5, false, 5))
	if err != nil {
		t.Fatal(err)
	}
	if r.ChainSeq != 6 || r.ChainPrev != last.Hash || r.Prev != last.Hash {
		t.Fatalf("linked to chain_seq %d, chain_prev %s; want 6, %s", r.ChainSeq, r.ChainPrev, last.Hash)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), 6, false, 6)); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, s); !rep.OK || rep.Records != 7 {
		t.Fatalf("%+v", rep)
	}
}

// BenchmarkRecords30 reads a chain of 30 records with Records, which
// checks each record's hash and its links to the chain (the service folds
// chains from it whenever its cache is behind).
func BenchmarkRecords30(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill(b, s, 64, 30)
	ctx := context.Background()
	for b.Loop() {
		if recs, err := s.Records(ctx, storetest.COI(7)); err != nil || len(recs) != 30 {
			b.Fatal(len(recs), err)
		}
	}
}

// BenchmarkCheckFile1M checks the whole file (CheckFile: every bucket's
// entries, then bbolt's tx.Check) of a ledger of 1,000,000 records, what
// coid verify runs after verifying the ledger.
func BenchmarkCheckFile1M(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill(b, s, 33334, 30)
	for b.Loop() {
		if err := s.CheckFile(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// TestRefreshUnderLoad reopens the file every few pages while records are
// appended, readings ingested, chains read, the ledger verified and
// backed up, all at once: nothing acknowledged may be lost or doubled,
// every read must succeed, and the backups must verify.
func TestRefreshUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond, RefreshPages: 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers, perChain, shippers, perShipper = 8, 20, 4, 600
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for k := range perChain {
				if _, err := s.Append(ctx, storetest.Draft(storetest.COI(w), w*1000+k, k == 0, uint64(k))); err != nil {
					fail(fmt.Errorf("append: %w", err))
					return
				}
			}
		})
	}
	for sh := range shippers {
		wg.Go(func() {
			id := fmt.Sprintf("SHP-R%d", sh)
			for i := 0; i < perShipper; i += 20 {
				batch := make([]custody.Reading, 0, 20)
				for j := i; j < i+20; j++ {
					batch = append(batch, reading(id, j, true))
				}
				// Every batch twice: the second must be all duplicates.
				for rep := range 2 {
					res, err := s.AddReadings(ctx, batch)
					if err != nil {
						fail(fmt.Errorf("readings: %w", err))
						return
					}
					if want := []int{20, 0}[rep]; res.Stored != want {
						fail(fmt.Errorf("readings %s %d: stored %d, want %d", id, i, res.Stored, want))
						return
					}
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() { // readers and verifiers, until the writers are done
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Chains(ctx, ""); err != nil {
				fail(fmt.Errorf("chains: %w", err))
			}
			if _, err := s.ReadingsCount(ctx); err != nil {
				fail(fmt.Errorf("readings count: %w", err))
			}
			if rep := verify(t, s); !rep.OK {
				fail(fmt.Errorf("verify during load: %+v", rep))
			}
			time.Sleep(time.Millisecond) // a reopen waits for no scan in flight
		}
	})
	var backups [][]byte
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var buf bytes.Buffer
			if _, err := s.Backup(ctx, &buf); err != nil {
				fail(fmt.Errorf("backup: %w", err))
				return
			}
			backups = append(backups, buf.Bytes())
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.dbmu.RLock()
	refreshes := s.refreshes
	s.dbmu.RUnlock()
	if refreshes == 0 {
		t.Fatal("the store never reopened its file")
	}
	if rep := verify(t, s); !rep.OK || rep.Records != writers*perChain {
		t.Fatalf("after load: %+v", rep)
	}
	if n, err := s.ReadingsCount(ctx); err != nil || n != shippers*perShipper {
		t.Fatalf("readings: %d, %v; want %d", n, err, shippers*perShipper)
	}
	s.Close()
	t.Logf("%d reopens, %d backups", refreshes, len(backups))
	for i, b := range backups {
		bdir := t.TempDir()
		if err := os.WriteFile(filepath.Join(bdir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		bs, err := Open(bdir, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		if rep := verify(t, bs); !rep.OK {
			t.Fatalf("backup %d: %+v", i, rep)
		}
		bs.Close()
	}
	s = openT(t, dir)
	defer s.Close()
	if rep := verify(t, s); !rep.OK || rep.Records != writers*perChain {
		t.Fatalf("after reopen: %+v", rep)
	}
}

// TestLockHeldAcrossRefresh: while a store is open, and across its
// reopens, neither a read-write nor a read-only open of the same
// directory gets in.
func TestLockHeldAcrossRefresh(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{RefreshPages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if _, err := s.Append(context.Background(), storetest.Draft(storetest.COI(1), i, i == 0, uint64(i))); err != nil {
			t.Fatal(err)
		}
		for _, ro := range []bool{false, true} {
			if _, err := Open(dir, Options{ReadOnly: ro, LockTimeout: 30 * time.Millisecond}); !errors.Is(err, custody.ErrInUse) {
				t.Fatalf("open (read-only %v) while the store is open: %v", ro, err)
			}
		}
	}
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	if s.refreshes == 0 {
		t.Fatal("the store never reopened its file")
	}
}

// BenchmarkReopen measures one reopen of a store holding 1,000,000
// readings and 30,000 records: the pause every transaction waits out
// when the store reopens its file (see DefaultRefreshPages).
func BenchmarkReopen(b *testing.B) {
	s, err := Open(b.TempDir(), Options{RefreshPages: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	fill(b, s, 1000, 30)
	for i := 0; i < 1_000_000; i += 10_000 {
		batch := make([]custody.Reading, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			batch = append(batch, reading(fmt.Sprintf("SHP-%d", j%50), j, true))
		}
		if _, err := s.AddReadings(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		s.dbmu.Lock()
		s.refresh()
		s.dbmu.Unlock()
	}
	if s.dbErr != nil {
		b.Fatal(s.dbErr)
	}
	st, _ := os.Stat(s.Path())
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
}

// TestNoReopenOfAMovedFile: when the data file is moved away while the
// store runs, a reopen would open (or create) whatever is at the path now.
// The store keeps the file it has open, stops reopening, says so, and
// loses nothing.
func TestNoReopenOfAMovedFile(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuf
	s, err := Open(dir, Options{RefreshPages: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for k := range 3 {
		if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), k, k == 0, uint64(k))); err != nil {
			t.Fatal(err)
		}
	}
	s.appends.Settle() // the reopen after the last append has run
	before := s.Reopens()
	if before == 0 {
		t.Fatal("no reopen before the move")
	}
	path := filepath.Join(dir, FileName)
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	for k := 3; k < 6; k++ {
		if _, err := s.Append(ctx, storetest.Draft(storetest.COI(1), k, false, uint64(k))); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Reopens(); got != before {
		t.Fatalf("reopened %d times after the move", got-before)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file appeared at the old path: %v", err)
	}
	if !strings.Contains(logs.String(), "moved, replaced or removed") {
		t.Fatalf("nothing logged: %q", logs.String())
	}
	s.Close()
	if err := os.Rename(path+".moved", path); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	if rep := verify(t, s); !rep.OK || rep.Records != 6 {
		t.Fatalf("%+v", rep)
	}
}

// syncBuf is a slog handler's destination safe for concurrent use.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestOpenMakesTheFilePrivate: a backup copied back into place with a
// loose umask holds patient identifiers and password hashes readable by
// others; opening it for writing makes it 0600 again.
func TestOpenMakesTheFilePrivate(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode %v after opening, want 0600", fi.Mode().Perm())
	}
}

// TestDamagedFileIsReportedNotPanicked: a file cut short (an interrupted
// copy) or with bytes overwritten makes bbolt panic on the pages it cannot
// read; opening and verifying it must give an error that says the file is
// damaged, never crash the command.
func TestDamagedFileIsReportedNotPanicked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	for w := 1; w <= 40; w++ {
		for k := range 30 {
			if _, err := s.Append(context.Background(), storetest.Draft(storetest.COI(w), w*100+k, k == 0, uint64(k))); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"cut in half":      good[:len(good)/2],
		"cut at 55%":       good[:len(good)*55/100],
		"cut at 80%":       good[:len(good)*80/100],
		"cut at 95%":       good[:len(good)*95/100],
		"one page missing": good[:len(good)-4096],
		"pages overwritten": func() []byte {
			b := slices.Clone(good)
			for i := 4 * 4096; i < len(b); i += 4096 {
				copy(b[i:], bytes.Repeat([]byte{0xA5}, 64))
			}
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panicked: %v", r)
				}
			}()
			st, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				return // refused at open: fine, as long as it said why
			}
			defer st.Close()
			// bbolt grows its file ahead of its data: a cut that only
			// takes unused space off the end loses nothing and verifies
			// whole; any other must fail.
			rep, err := custody.VerifyLog(context.Background(), st)
			if err == nil && rep.OK && rep.Records != 40*30 {
				t.Fatalf("a damaged file verified with records missing: %+v", rep)
			}
			// bbolt may have panicked holding its locks: later reads must
			// fail at once, not wait for ever.
			done := make(chan error, 1)
			go func() { _, err := custody.VerifyLog(context.Background(), st); done <- err }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("a second read of the damaged store hangs")
			}
		})
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlyOpenChecksTheFormat: a file of another format is refused for
// reading too, not verified as if it were this one.
func TestReadOnlyOpenChecksTheFormat(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("coid-bolt-99")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err := Open(dir, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "file format") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("read-only open of another format: %v", err)
	}
}

// TestFormatStampedByTheFirstWriter: a file of the earlier format is read
// as it is by a read-only open (its stamp unchanged) and stamped with this
// format by the first writable open, so that a coid of the earlier format
// refuses it; the ledger reads and checks the same throughout.
func TestFormatStampedByTheFirstWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, 3, 5)
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatV1)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stamp := func() string {
		t.Helper()
		db, err := bolt.Open(dir+"/"+FileName, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var f string
		if err := db.View(func(tx *bolt.Tx) error { f = string(tx.Bucket(bucketMeta).Get(keyFormat)); return nil }); err != nil {
			t.Fatal(err)
		}
		return f
	}
	ro, err := Open(dir, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("read-only open of the earlier format: %v", err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("check of the earlier format: %v", err)
	}
	if head, _, _ := ro.Head(ctx); head != 15 {
		t.Fatalf("head %d, want 15", head)
	}
	ro.Close()
	if f := stamp(); f != formatV1 {
		t.Fatalf("a read-only open stamped %q", f)
	}
	s = openT(t, dir)
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if f := stamp(); f != formatVersion {
		t.Fatalf("after a writable open the stamp is %q, want %q", f, formatVersion)
	}
}

// TestABugIsNotDamage: a panic of coid's own code inside a transaction is
// not taken for a damaged file: it is raised again, and the store stays
// usable.
func TestABugIsNotDamage(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("a bug's panic was swallowed")
			}
		}()
		_ = s.view(func(*bolt.Tx) error {
			var m map[string]int
			m["x"] = 1 // a bug: assignment to a nil map
			return nil
		})
	}()
	if err := s.view(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatalf("the store after a bug's panic: %v", err)
	}
}

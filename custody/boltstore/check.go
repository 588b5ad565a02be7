package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"unsafe"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// FileDamage says where a store file is damaged, as CheckFile found it.
// It wraps custody.ErrDamaged.
type FileDamage struct {
	// Bucket names the part of the file at fault: "log", "chains",
	// "users", "quarantine"... (the bucket names of this package's file
	// layout), or "" for the file's own structure (its free-page list, its
	// pages' extents, pages no bucket uses).
	Bucket string
	// Key names the entry at fault, when one is: a record's position, a
	// COI, a user ID, a quarantine ID. Token hashes are not named.
	Key string
	// Problem says what is wrong.
	Problem string
}

// Error implements error.
func (d *FileDamage) Error() string {
	where := "the file's structure"
	if d.Bucket != "" {
		where = "bucket " + strconv.Quote(d.Bucket)
		if d.Key != "" {
			where += ", entry " + d.Key
		}
	}
	return fmt.Sprintf("%s: %s: %v", where, d.Problem, custody.ErrDamaged)
}

// Unwrap returns custody.ErrDamaged.
func (d *FileDamage) Unwrap() error { return custody.ErrDamaged }

// CheckFile checks the whole file, not only the ledger that
// custody.VerifyLog checks: that every entry of every bucket can be read
// and decodes as what the bucket holds (chain entries, patient identity,
// users, tokens, readings, quarantined payloads), and then bbolt's own
// consistency check of its pages (tx.Check). The first pass reads every
// byte range the second will, in a goroutine that turns a memory fault
// into an error, so that bbolt's check, which runs in a goroutine of its
// own, cannot fault. It returns nil for a sound file and a *FileDamage
// naming the part at fault otherwise; another error when the file could
// not be read at all. A store opened read-only checks the indexes folded
// from the chains' records, and the tree's hashes, in reads of their own,
// on the other cores.
func (s *Store) CheckFile(ctx context.Context) error {
	return s.checkFile(ctx, true)
}

// CheckFileBesideLedger is CheckFile for a caller that also verifies the
// ledger of this store opened read-only (custody.VerifyLogJourney: every
// record against its stored hash) and reports that verification's failure
// before this check's, as coid verify does. The follow-up index's check
// then reads each infused chain's records without hashing them again;
// everything else is checked as CheckFile checks it. On a store opened for
// writing it is CheckFile: a record could be appended between the two.
func (s *Store) CheckFileBesideLedger(ctx context.Context) error {
	return s.checkFile(ctx, !s.readOnly)
}

// checkFile is CheckFile; hashes says whether the follow-up index's check
// hashes the records it reads.
func (s *Store) checkFile(ctx context.Context, hashes bool) error {
	return s.viewLong(func(tx *bolt.Tx) error {
		if !s.readOnly {
			// A writer of this process may grow the map, which waits for
			// the open reads: a second read opened now could wait behind
			// it, and this one for the second.
			if err := checkEntries(ctx, tx); err != nil {
				return err
			}
			if err := checkFolded(ctx, tx, hashes); err != nil {
				return err
			}
			return checkRest(ctx, tx)
		}
		// Opened read-only, the store has no writer: the checks that fold
		// the ledger's records, and the tree's hashes, run in reads of
		// their own, on the other cores, and a problem is reported as
		// the sequence above would.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		folded := beside(s.db, func(tx *bolt.Tx) error { return checkFolded(fctx, tx, hashes) })
		tree := beside(s.db, func(tx *bolt.Tx) error { return checkTree(fctx, tx, 1) })
		// Whatever is returned, both have ended: their reads are over.
		defer func() {
			cancel()
			_, _ = folded(), tree()
		}()
		if err := checkEntries(ctx, tx); err != nil {
			cancel()
			return err
		}
		if err := folded(); err != nil {
			cancel()
			return err
		}
		return checkRestWith(ctx, tx, tree)
	})
}

// beside runs check in a read of its own, in a goroutine that turns a
// memory fault or bbolt's panic on a damaged page into an error, and
// returns a function that waits for it and returns its outcome (any
// number of times).
func beside(db *bolt.DB, check func(tx *bolt.Tx) error) (wait func() error) {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer damaged(&err)
		tx, berr := db.Begin(false)
		if berr != nil {
			err = berr
			return
		}
		defer func() { _ = tx.Rollback() }()
		err = check(tx)
	}()
	return func() error {
		<-done
		return err
	}
}

// foldedBuckets are the indexes whose entries are checked against the
// chains' records, by checkFolded, not checkEntries.
var foldedBuckets = [][]byte{bucketAccess, bucketFollowUp}

// checkFolded checks the indexes kept from the chains' summaries and
// records, entry by entry and for completeness: the costly part of
// CheckFile, which may run in a read of its own. hashes says whether the
// records read are checked against their hashes (checkFile).
func checkFolded(ctx context.Context, tx *bolt.Tx, hashes bool) error {
	checks := bucketChecks()
	if !hashes {
		checks[string(bucketFollowUp)] = followUpCheck(false)
	}
	for _, name := range foldedBuckets {
		if b := tx.Bucket(name); b != nil {
			if err := checkBucket(ctx, tx, string(name), b, checks[string(name)]); err != nil {
				return err
			}
		}
	}
	return checkChainStatesComplete(ctx, tx)
}

// checkRest runs the checks after the entries': the expiry index's
// completeness, the pages and the tree.
func checkRest(ctx context.Context, tx *bolt.Tx) error {
	return checkRestWith(ctx, tx, func() error { return checkTree(ctx, tx, 1) })
}

// checkRestWith is checkRest with the tree's check given: tree runs it,
// or waits for its outcome in a read of its own.
func checkRestWith(ctx context.Context, tx *bolt.Tx, tree func() error) error {
	if err := checkExpiriesComplete(tx); err != nil {
		return err
	}
	if err := checkBranches(tx); err != nil {
		return err
	}
	if err := tree(); err != nil {
		return err
	}
	return checkStructure(ctx, tx)
}

// bucketCheck decodes one entry of a bucket; v is nil for a nested
// bucket. name gives the entry's name for a report, "" to name none.
type bucketCheck struct {
	entry func(tx *bolt.Tx, k, v []byte) error
	name  func(k []byte) string
}

func seqName(k []byte) string {
	if len(k) != 8 {
		return fmt.Sprintf("%x", k)
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
}

func strName(k []byte) string { return strconv.Quote(string(k)) }

// bucketChecks returns the check of each bucket of the layout, by name.
func bucketChecks() map[string]bucketCheck {
	checks := coreBucketChecks()
	maps.Copy(checks, readingBlockChecks())
	maps.Copy(checks, registryBucketChecks())
	maps.Copy(checks, accountChecks())
	maps.Copy(checks, scheduleBucketChecks())
	maps.Copy(checks, quotaBucketChecks())
	maps.Copy(checks, accessBucketChecks())
	maps.Copy(checks, followUpBucketChecks())
	maps.Copy(checks, chainStateBucketChecks())
	maps.Copy(checks, chainSiteBucketChecks())
	maps.Copy(checks, terminalIssueBucketChecks())
	maps.Copy(checks, expiryBucketChecks())
	return checks
}

// coreBucketChecks returns the checks of the ledger's, users' and
// readings' buckets.
func coreBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketLog): {name: seqName, entry: func(_ *bolt.Tx, k, v []byte) error {
			switch {
			case len(k) != 8:
				return errors.New("the key is not a record position")
			case len(v) < custody.HashSize:
				return fmt.Errorf("the record is %d bytes, shorter than its hash", len(v))
			}
			return nil // the records themselves are verified with the ledger
		}},
		string(bucketChains): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			ce, err := decodeChain(v)
			if err != nil {
				return err
			}
			if string(ce.COI) != string(k) {
				return fmt.Errorf("the entry is chain %s's", ce.COI)
			}
			return nil
		}},
		string(bucketMeta): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			switch {
			case bytes.Equal(k, keyHead) && len(v) != 8+custody.HashSize:
				return fmt.Errorf("the ledger's head is %d bytes, not %d", len(v), 8+custody.HashSize)
			case bytes.Equal(k, keyFormat) && !knownFormat(v):
				return fmt.Errorf("the format is %q, not %q or %q", v, formatV1, formatVersion)
			}
			return nil
		}},
		string(bucketPHI): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var p custody.PHI
			if json.Unmarshal(v, &p) != nil {
				return errors.New("the patient identity does not decode") // its text is not repeated
			}
			return nil
		}},
		string(bucketCOISeq): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if v != nil {
				return errors.New("a value where a COI counter belongs")
			}
			return nil
		}},
		string(bucketUsers): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var u custody.User
			if json.Unmarshal(v, &u) != nil {
				return errors.New("the user does not decode") // its text (a password hash) is not repeated
			}
			if u.ID != string(k) {
				return fmt.Errorf("the entry names user %q", u.ID)
			}
			return nil
		}},
		string(bucketTokens): {name: func([]byte) string { return "" }, entry: func(tx *bolt.Tx, k, v []byte) error {
			switch {
			case len(k) != custody.HashSize:
				return errors.New("a token's key is not a token hash")
			case tx.Bucket(bucketUsers).Get(v) == nil:
				return fmt.Errorf("a token belongs to user %q, who does not exist", v)
			}
			return nil
		}},
		string(bucketReadings): {name: func(k []byte) string { return fmt.Sprintf("%x", k) }, entry: func(_ *bolt.Tx, k, v []byte) error {
			_, _, err := decodeStoredReading(k, v)
			return err
		}},
		string(bucketReadingBatch): {name: func(k []byte) string { return fmt.Sprintf("%x", k) }, entry: func(_ *bolt.Tx, k, v []byte) error {
			if len(k) < 8+2 || bytes.IndexByte(k[8:], 0) < 1 || len(v) != 0 {
				return errors.New("the entry is not a reading batch's")
			}
			return nil
		}},
		string(bucketReadingsMeta): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			if (bytes.Equal(k, keyWatermark) || bytes.Equal(k, keyBatchesFrom) || bytes.Equal(k, keyBlockReadings)) && len(v) != 8 {
				return fmt.Errorf("%s is %d bytes, not 8", k, len(v))
			}
			return nil
		}},
		string(bucketQuarantine): {name: seqName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var q custody.QuarantineEntry
			if len(k) != 8 {
				return errors.New("the key is not a quarantine ID")
			}
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("the entry does not decode: %v", err)
			}
			if q.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("the entry says it is %d", q.ID)
			}
			return nil
		}},
	}
}

// checkEntries reads every entry of every bucket, as checkFile's first
// pass. The caller's goroutine turns memory faults into panics (view).
func checkEntries(ctx context.Context, tx *bolt.Tx) error {
	// Users before tokens: a token's check reads the users bucket, whose
	// damage is to be named as its own.
	known := append([][]byte{bucketMeta, bucketLog, bucketChains, bucketPHI, bucketCOISeq, bucketUsers, bucketTokens}, readingBuckets...)
	checks := bucketChecks()
	for _, name := range known {
		b := tx.Bucket(name)
		if b == nil {
			return &FileDamage{Bucket: string(name), Problem: "the bucket is missing"}
		}
		if err := checkBucket(ctx, tx, string(name), b, checks[string(name)]); err != nil {
			return err
		}
	}
	// The accounts', the registries' and the access index's buckets
	// (accounts.go, registry.go, access.go) are missing from a file no writer of this version has
	// opened yet; that is no damage.
	for _, name := range append(append(append(append(append([][]byte{}, accountBuckets...), registryBuckets...), scheduleBuckets...), treeBuckets...), append(append(append([][]byte{}, quotaBuckets...), readingLogBuckets...), append(append([][]byte{bucketChainStates, bucketChainSites, bucketChainSiteCounts, bucketTerminalIssues, bucketExpiries}, accessBuckets...), followUpBuckets...)...)...) {
		if slices.ContainsFunc(foldedBuckets, func(f []byte) bool { return bytes.Equal(f, name) }) {
			continue // checkFolded's
		}
		if b := tx.Bucket(name); b != nil {
			if err := checkBucket(ctx, tx, string(name), b, checks[string(name)]); err != nil {
				return err
			}
		}
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if _, ok := checks[string(name)]; ok {
			return nil
		}
		return checkBucket(ctx, tx, string(name), b, bucketCheck{})
	})
}

// checkBucket reads every entry of b, nested buckets too, and decodes it
// with c. A page that cannot be read is reported as the bucket's damage.
func checkBucket(ctx context.Context, tx *bolt.Tx, name string, b *bolt.Bucket, c bucketCheck) (err error) {
	// cur is the entry being checked, named only when a problem is
	// reported: naming each entry would cost more than checking it.
	var cur []byte
	key := func() (n string) {
		if c.name == nil || cur == nil {
			return ""
		}
		defer func() {
			if r := recover(); r != nil && !isDamage(r) {
				panic(r)
			} // a key that cannot be read is not named
		}()
		return c.name(cur)
	}
	defer func() {
		if r := recover(); r != nil {
			if !isDamage(r) {
				panic(r)
			}
			err = &FileDamage{Bucket: name, Key: key(), Problem: fmt.Sprintf("a page cannot be read (%v)", r)}
		}
	}()
	var sink [1]byte // written, so that the reads below are not left out
	inFile := fileExtent(tx, b)
	n := 0
	err = b.ForEach(func(k, v []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if len(k) == 0 {
			return &FileDamage{Bucket: name, Problem: "an entry has an empty key"}
		}
		if p := inFile(k); p != "" {
			return &FileDamage{Bucket: name, Problem: "an entry's key " + p}
		}
		// The first and the last byte of each: a length that points past
		// the file faults here, not later, when what lies past the map
		// is not mapped; inFile finds it when it is.
		sink[0] ^= k[0] ^ k[len(k)-1]
		cur = k
		if p := inFile(v); p != "" {
			return &FileDamage{Bucket: name, Key: key(), Problem: "the entry's value " + p}
		}
		if len(v) > 0 {
			sink[0] ^= v[0] ^ v[len(v)-1]
		}
		if v == nil {
			nb := b.Bucket(k)
			if nb == nil {
				return &FileDamage{Bucket: name, Key: key(), Problem: "an entry without a value is not a bucket"}
			}
			if err := checkBucket(ctx, tx, name, nb, bucketCheck{}); err != nil {
				return err
			}
		}
		if c.entry != nil {
			if err := c.entry(tx, k, v); err != nil {
				return &FileDamage{Bucket: name, Key: key(), Problem: err.Error()}
			}
		}
		return nil
	})
	runtime.KeepAlive(&sink)
	return err
}

// fileExtent returns a check that a key or value of bucket b, read in
// the read-only transaction tx, lies within the file's pages in use, in
// bbolt's memory map of it. A damaged length on a leaf page points past
// them; reading there faults only when nothing else is mapped at that
// address, and the process's own memory often is (the Go runtime's, the
// race detector's): such a read succeeds, on bytes that are not the
// file's, so the bounds are checked, not left to a fault. The check
// returns "" when the slice lies within, and the problem otherwise.
//
// The entries of a bucket with pages of its own (root page not 0) lie on
// pages of the map. Those of an inline bucket lie in its parent's value:
// in the map, or, when that value is not 8-byte aligned, in a copy bbolt
// made of it in the heap; the copy's length is not known here, so an
// entry that starts outside the map is left to the other checks.
func fileExtent(tx *bolt.Tx, b *bolt.Bucket) func(s []byte) string {
	lo := tx.DB().Info().Data
	hi := lo + uintptr(tx.Size())
	onPages := b.RootPage() != 0
	return func(s []byte) string {
		if len(s) == 0 {
			return ""
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		inside := start >= lo && start < hi
		switch {
		case !inside && onPages:
			return fmt.Sprintf("(%d bytes) lies outside the file's %d bytes", len(s), hi-lo)
		case inside && uint64(len(s)) > uint64(hi-start):
			return fmt.Sprintf("(%d bytes) runs %d bytes past the end of the file", len(s), uint64(len(s))-uint64(hi-start))
		}
		return ""
	}
}

// checkStructure runs bbolt's consistency check of the file's pages, and
// names the bucket whose pages are at fault when it can.
func checkStructure(ctx context.Context, tx *bolt.Tx) error {
	first, n := drainCheck(tx.Check())
	if first == nil {
		return ctx.Err()
	}
	d := &FileDamage{Problem: first.Error()}
	if n > 1 {
		d.Problem += fmt.Sprintf(" (and %d more problems)", n-1)
	}
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if root := b.RootPage(); root != 0 {
			if e, _ := drainCheck(tx.Check(bolt.WithPageId(uint64(root)))); e != nil {
				d.Bucket = string(name)
				return errStop
			}
		}
		return nil
	})
	return d
}

// drainCheck reads every error of a check (its goroutine ends only then)
// and returns the first and how many there were.
func drainCheck(ch <-chan error) (first error, n int) {
	for err := range ch {
		if first == nil {
			first = err
		}
		n++
	}
	return first, n
}

// checkBranches checks that every page in use ends within the file, and,
// reading the file, that the keys on every bucket's branch pages lie
// within their page: checkEntries's cursors read every
// leaf element and each branch element's child, but not the branch keys,
// which tx.Check compares (in its own goroutine, where a fault could not
// be caught). A bucket's tree is balanced: below a branch page whose first
// child is a leaf there are only leaves.
func checkBranches(tx *bolt.Tx) error {
	f, err := os.Open(tx.DB().Path())
	if err != nil {
		return err
	}
	defer f.Close()
	ps := uint64(tx.DB().Info().PageSize)
	hwm := uint64(tx.Size()) / ps
	hdr := make([]byte, 16)
	// header reads page id's header: its flags and its length in pages.
	header := func(id uint64) (flags uint16, pages uint64, err error) {
		if id < 2 || id >= hwm {
			return 0, 0, fmt.Errorf("page %d is beyond the file's %d pages", id, hwm)
		}
		if _, err := f.ReadAt(hdr, int64(id*ps)); err != nil {
			return 0, 0, err
		}
		pages = 1 + uint64(binary.LittleEndian.Uint32(hdr[12:]))
		if id+pages > hwm {
			return 0, 0, fmt.Errorf("page %d runs past the file's %d pages", id, hwm)
		}
		return binary.LittleEndian.Uint16(hdr[8:]), pages, nil
	}
	// Every page in use must end within the file: tx.Check marks each of
	// a page's overflow pages reachable, one by one, and a damaged count
	// of 2^31 would keep it busy for ever. (tx.Page reads the header in
	// this goroutine, where a fault is caught.)
	for id := uint64(2); id < hwm; id++ {
		info, err := tx.Page(int(id))
		if err != nil || info == nil {
			return fmt.Errorf("page %d: %v", id, err)
		}
		if info.Type == "free" {
			continue
		}
		if id+1+uint64(info.OverflowCount) > hwm {
			return &FileDamage{Problem: fmt.Sprintf("page %d (%s) runs %d pages past the file's %d", id, info.Type, id+1+uint64(info.OverflowCount)-hwm, hwm)}
		}
		id += uint64(info.OverflowCount)
	}
	const branch = 0x01
	var walk func(id uint64) error
	walk = func(id uint64) error {
		flags, pages, err := header(id)
		if err != nil || flags != branch {
			return err
		}
		p := make([]byte, pages*ps)
		if _, err := f.ReadAt(p, int64(id*ps)); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint16(p[10:]))
		if 16+n*16 > len(p) {
			return fmt.Errorf("branch page %d lists %d elements, more than it holds", id, n)
		}
		for i := range n {
			e := 16 + i*16
			pos, ks := uint64(binary.LittleEndian.Uint32(p[e:])), uint64(binary.LittleEndian.Uint32(p[e+4:]))
			if uint64(e)+pos+ks > uint64(len(p)) {
				return fmt.Errorf("branch page %d: key %d lies past the page's end", id, i)
			}
		}
		for i := range n {
			child := binary.LittleEndian.Uint64(p[16+i*16+8:])
			if i == 0 {
				if cf, _, err := header(child); err != nil || cf != branch {
					return err // leaves below: their elements were read by checkEntries
				}
			}
			if err := walk(child); err != nil {
				return err
			}
		}
		return nil
	}
	flat := map[string]bool{}
	for name := range bucketChecks() {
		flat[name] = name != string(bucketCOISeq)
	}
	var walkBucket func(name string, b *bolt.Bucket) error
	walkBucket = func(name string, b *bolt.Bucket) error {
		if root := b.RootPage(); root != 0 {
			if err := walk(uint64(root)); err != nil {
				return &FileDamage{Bucket: name, Problem: err.Error()}
			}
		}
		if flat[name] {
			return nil // no nested buckets: not worth a walk of its entries
		}
		return b.ForEachBucket(func(k []byte) error { return walkBucket(name, b.Bucket(k)) })
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walkBucket(string(name), b) })
}
